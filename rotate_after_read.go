package salesforce

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Rotation after a read (rotate_after_read, cooldown): check-out semantics
// for break-glass and short-lived human use. The first creds/<name> read
// since the last rotation arms a rotation cooldown later (ReadRotationAt,
// and NextVaultRotation if that is earlier); the scheduler runs it like any
// due rotation, and the rotation disarms it (adoptPassword). Later reads
// find it armed and write nothing, so only one read per rotation costs a
// storage write, made through the account's one writer.
//
// A self-service change (rotation_method=self) is bound by the org's
// minimum password lifetime (min_password_lifetime in config/rotation): the
// rotation is then never sooner than a day after the last change. Password
// history never stands in the way: every rotation's password is new, and
// one Salesforce rejects is replaced by a fresh one.

// armReadRotation arms the rotation of acct's password after this read,
// when it is the first read since the last rotation, and returns the
// account as stored then. On a node that cannot write (a performance
// standby) the read is forwarded to the active node, which arms it.
func (b *backend) armReadRotation(ctx context.Context, s logical.Storage, name string, acct *account) (*account, error) {
	if !readArmable(acct) {
		return acct, nil
	}
	txn := b.lockAccount(s, name)
	defer txn.unlock()
	cur, err := txn.get(ctx)
	if err != nil || cur == nil || !readArmable(cur) {
		return cur, err
	}
	rcfg, err := readRotationConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	at := earliestReadRotation(cur, rcfg, b.now())
	cur.ReadRotationAt = at
	if cur.NextVaultRotation.IsZero() || at.Before(cur.NextVaultRotation) {
		cur.NextVaultRotation = at
	}
	if err := txn.put(ctx, cur); err != nil {
		if errors.Is(err, logical.ErrReadOnly) {
			return nil, logical.ErrPerfStandbyPleaseForward
		}
		return nil, err
	}
	b.scheduleAccount(name, cur)
	b.logger.Info("password read: rotation armed", "account", name, "rotates_at", at)
	return cur, nil
}

// readArmable reports whether a read of acct arms a rotation.
func readArmable(a *account) bool {
	return a.RotateAfterRead && !a.DisableAutomatedRotation && a.ReadRotationAt.IsZero() && a.Cooldown > 0
}

// earliestReadRotation is when a password read at now is rotated: cooldown
// later, in whole seconds, and not before the org's minimum password
// lifetime allows a self-service change.
func earliestReadRotation(a *account, rcfg *rotationConfig, now time.Time) time.Time {
	at := now.Add(a.Cooldown)
	if a.method() == rotationMethodSelf && rcfg.MinPasswordLifetime && !a.PasswordChangedAt.IsZero() {
		if floor := a.PasswordChangedAt.Add(24 * time.Hour); at.Before(floor) {
			at = floor
		}
	}
	if t := at.Truncate(time.Second); !t.Equal(at) {
		at = t.Add(time.Second)
	}
	return at.UTC()
}
