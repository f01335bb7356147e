package salesforce

import (
	"context"
	"fmt"
)

// webhookGateHook asks the account's pre_rotation_webhook whether now is a
// good time; any answer other than 2xx (or no answer) postpones.
type webhookGateHook struct{}

func (webhookGateHook) name() string     { return "pre_rotation_webhook" }
func (webhookGateHook) phase() hookPhase { return beforeRotation }
func (webhookGateHook) applies(r *rotationRun) bool {
	return r.acct.PreRotationWebhook != ""
}

func (webhookGateHook) run(ctx context.Context, r *rotationRun) error {
	ev := r.b.newEvent("pre-rotation", r.name, r.acct, "")
	status, err := r.b.postEvent(ctx, r.acct.PreRotationWebhook, r.rcfg.WebhookSecret, r.rcfg.AllowInsecureWebhooks, ev)
	if err != nil {
		return &rotationError{code: "postponed", postponed: true, msg: fmt.Sprintf("pre_rotation_webhook did not answer, postponing: %v", err)}
	}
	if status < 200 || status > 299 {
		return &rotationError{code: "postponed", postponed: true, msg: fmt.Sprintf("pre_rotation_webhook answered HTTP %d, postponing", status)}
	}
	return nil
}
