package salesforce

import (
	"context"
	"fmt"
)

// validationWebhookHook tells the account's validation_webhook that the
// password changed and expects a 2xx answer that the integration still works.
type validationWebhookHook struct{}

func (validationWebhookHook) name() string     { return "validation_webhook" }
func (validationWebhookHook) phase() hookPhase { return afterRotation }
func (validationWebhookHook) applies(r *rotationRun) bool {
	return r.acct.ValidationWebhook != ""
}

func (validationWebhookHook) run(ctx context.Context, r *rotationRun) error {
	ev := r.b.newEvent("validate", r.name, r.acct, outcomeRotated)
	status, err := r.b.postEvent(ctx, r.acct.ValidationWebhook, r.rcfg.WebhookSecret, r.rcfg.AllowInsecureWebhooks, ev)
	if err != nil {
		return fmt.Errorf("no answer: %v", err)
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("answered HTTP %d", status)
	}
	return nil
}
