package salesforce

import (
	"context"
	"fmt"
)

// unlockHook unlocks the user's login after a rotation when integrations
// still holding the old password locked it out (unlock_after_rotation).
type unlockHook struct{}

func (unlockHook) name() string                { return "unlock" }
func (unlockHook) phase() hookPhase            { return afterRotation }
func (unlockHook) applies(r *rotationRun) bool { return r.acct.UnlockAfterRotation }

func (unlockHook) run(ctx context.Context, r *rotationRun) error {
	admin, err := r.admin(ctx)
	if err != nil {
		return err
	}
	userID, err := r.userID(ctx)
	if err != nil {
		return err
	}
	locked, loginID, err := r.client.LoginLocked(ctx, admin, userID)
	if err != nil {
		return fmt.Errorf("reading the lock state: %w", err)
	}
	if !locked {
		return nil
	}
	if err := r.client.UnlockLogin(ctx, admin, loginID); err != nil {
		return fmt.Errorf("unlocking: %w", err)
	}
	r.b.logger.Info("unlocked the user after rotation", "account", r.name)
	return nil
}
