package salesforce

import (
	"context"
	"fmt"
)

// newLoginHook logs in with the new password once it is stored. For an
// account whose token is now stale, Salesforce's "security token needed"
// answer proves the password without a session.
type newLoginHook struct{}

func (newLoginHook) name() string                  { return "new_login" }
func (newLoginHook) phase() hookPhase              { return afterRotation }
func (newLoginHook) applies(run *rotationRun) bool { return true }

func (newLoginHook) run(ctx context.Context, r *rotationRun) error {
	r.ownSession = nil
	res, err := r.b.probeLogin(ctx, r.storage, r.client, r.name, r.acct, r.acct.Password, r.acct.tokenUsable(), r.rcfg)
	if err != nil {
		return fmt.Errorf("could not log in with the new password: %w", err)
	}
	switch res.verdict {
	case loginOK:
		r.ownSession = res.session
		return nil
	case loginPasswordOnly:
		if r.acct.needsToken() {
			return nil
		}
		return fmt.Errorf("the new password is accepted but Salesforce asks for a security token; check the trusted IP ranges")
	case loginExpired:
		return fmt.Errorf("the new password logs in but is reported expired")
	default:
		return fmt.Errorf("the new password does not log in: %v", res.cause)
	}
}
