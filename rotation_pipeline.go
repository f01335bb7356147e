package salesforce

// One rotation of an account's password, top to bottom:
//
//	settle   unfinished earlier rotations of the account (their WAL entries)
//	plan     refuse early what would fail anyway; before-hooks (login check,
//	         pre-rotation webhook); admin session and user id
//	WAL      the candidate is written to the write-ahead log
//	change   Salesforce is asked to set it (a rejected candidate is dropped
//	         for good and a fresh one tried)
//	store    the account gets it, then the WAL entry goes
//	verify   after-hooks (unlock, new login, validation query and webhook)
//	notify   token caches dropped, Vault event and webhook
//
// A failure is recorded on the account (recordFailure). Nothing here touches
// the rotation queue: the callers (path_rotate.go, rotation_schedule.go,
// rotation_wal.go) requeue the account from storage.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

const (
	triggerManual    = "manual"
	triggerScheduled = "scheduled"

	outcomeRotated   = "rotated"
	outcomeFailed    = "failed"
	outcomePostponed = "postponed"
)

// Steps of a rotation, named for the crash-safety tests.
const (
	stepWALWritten      = "wal-written"
	stepPasswordChanged = "password-changed"
	stepStored          = "stored"
	stepWALDeleted      = "wal-deleted"
	// stepCandidateRejected: settling recorded that Salesforce rejected an
	// unfinished rotation's candidate (rotation_settle.go).
	stepCandidateRejected = "candidate-rejected"
)

// rotationError is a failed or postponed rotation, with a code for status
// and events. Its message never holds a secret.
type rotationError struct {
	code string
	msg  string
	// blocked: retrying cannot fix it (drift, locked or inactive user, stale
	// token for self), so scheduled attempts pause until an operator acts.
	blocked bool
	// postponed: not a failure (a gate said not now, login budget spent).
	postponed bool
	err       error
}

func (e *rotationError) Error() string { return e.msg }
func (e *rotationError) Unwrap() error { return e.err }

// rotationResult is the outcome of one rotation.
type rotationResult struct {
	Account     string
	Outcome     string
	Version     int
	TokenStatus string
	Warnings    []string

	// Dual accounts (rotation_dual.go): whose password changed, who is
	// active now, and why a switch waits.
	RotatedUsername string
	ActiveUsername  string
	ActiveUser      string
	SwitchStatus    string
	SwitchReason    string
	// Ended is what end_sessions_on_rotation ended (rotation_sessions.go).
	Ended *endedReport
}

// rotateAccount rotates the password of one account now. It returns an
// error whenever the password was not rotated. force lets a manual
// rotation log in again with a credential already known not to work.
// It does not touch the rotation queue: its callers (the rotate handler,
// the scheduler) requeue the account from storage afterwards.
func (b *backend) rotateAccount(ctx context.Context, s logical.Storage, name, trigger string, force bool) (*rotationResult, error) {
	txn := b.lockAccount(s, name)
	defer txn.unlock()

	if trigger == triggerManual && !force {
		stored, err := txn.get(ctx)
		if err != nil {
			return nil, err
		}
		if stored == nil {
			return nil, accountNotFound(name)
		}
		if re := blockedManualRotation(name, stored); re != nil {
			// Nothing was tried, so nothing is recorded as a failure.
			return &rotationResult{Account: name, Outcome: outcomeFailed, Version: stored.Version}, re
		}
	}

	// Settle: an unfinished earlier rotation is settled first, so a new
	// password is never set on top of an unknown one.
	if err := b.settleAccountWALs(ctx, txn); err != nil {
		re := &rotationError{code: "unsettled", err: err,
			msg: fmt.Sprintf("an earlier rotation of %q is unfinished and could not be settled yet: %v", name, err)}
		re.postponed = settlesLater(err)
		if rcfg, cerr := readRotationConfig(ctx, s); cerr == nil {
			b.recordFailure(ctx, txn, rcfg, trigger, re)
		}
		return &rotationResult{Account: name, Outcome: outcomeOf(re)}, re
	}
	// Finish what earlier rotations left after their password change, and
	// aim a dual account's rotation at its inactive user.
	if res, done, err := b.finishBeforeRotating(ctx, txn, trigger); done {
		return res, err
	}

	acct, err := txn.get(ctx)
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, accountNotFound(name)
	}
	rcfg, err := b.readRotationConfigCached(ctx, s)
	if err != nil {
		return nil, err
	}
	client, cfg, err := b.getClientForRotation(ctx, s)
	if err != nil {
		re := &rotationError{code: "config", msg: err.Error(), err: err}
		b.recordFailure(ctx, txn, rcfg, trigger, re)
		return &rotationResult{Account: name, Outcome: outcomeFailed, Version: acct.Version}, re
	}
	run := &rotationRun{
		b: b, storage: s, txn: txn, name: name, acct: acct, cfg: cfg, rcfg: rcfg,
		client: client, trigger: trigger, oldPassword: acct.Password,
	}
	res, err := b.rotate(ctx, run)
	if errors.Is(err, errSimulatedCrash) {
		return nil, err
	}
	if err != nil {
		b.recordFailure(ctx, txn, rcfg, trigger, err)
		return &rotationResult{Account: name, Outcome: outcomeOf(err), Version: acct.Version}, err
	}
	return res, nil
}

// outcomeOf is the outcome a failed rotation reports.
func outcomeOf(err error) string {
	var re *rotationError
	if errors.As(err, &re) && re.postponed {
		return outcomePostponed
	}
	return outcomeFailed
}

// blockedManualRotation refuses a manual rotation of an account blocked on
// its own credential (drift, locked or inactive user, stale token): its
// login check would be one more failed login towards the user's lockout.
func blockedManualRotation(name string, acct *account) *rotationError {
	if acct.RotationBlocked == "" {
		return nil
	}
	return &rotationError{code: "blocked", blocked: true,
		msg: fmt.Sprintf("rotation of account %q is blocked (%s), so the engine does not log in with its credential again: every failed login "+
			"brings the user closer to lockout. Fix the cause, then write the current credential to accounts/%s (or the security token to "+
			"accounts/%s/security-token), which clears the block; or retry with force=true. Last error: %s",
			name, acct.RotationBlocked, name, name, acct.LastRotationError)}
}

// rotate runs the steps of one rotation for an account whose lock is held.
func (b *backend) rotate(ctx context.Context, r *rotationRun) (*rotationResult, error) {
	// Plan. Checked before any login: a change Salesforce would refuse
	// anyway must not cost logins.
	if r.acct.method() == rotationMethodSelf && r.rcfg.MinPasswordLifetime &&
		!r.acct.PasswordChangedAt.IsZero() && b.now().Sub(r.acct.PasswordChangedAt) < 24*time.Hour {
		return nil, &rotationError{code: "min_password_lifetime", postponed: true,
			msg: fmt.Sprintf("the org's minimum password lifetime forbids a self-service change before %s",
				r.acct.PasswordChangedAt.Add(24*time.Hour).UTC().Format(time.RFC3339))}
	}
	if r.acct.method() == rotationMethodAdmin {
		// A refused admin login is not retried (each retry would be one
		// more failed login of the admin user): fail before any login.
		if err := b.adminRefusedNow(); err != nil {
			return nil, &rotationError{code: "admin_login_refused", msg: "admin login: " + err.Error(), err: err}
		}
	}
	if err := r.runHooks(ctx, beforeRotation); err != nil {
		return nil, err
	}

	if r.acct.method() == rotationMethodAdmin {
		// Everything that can fail before Salesforce is asked happens
		// before the WAL, so a WAL always means "maybe changed".
		if _, err := r.admin(ctx); err != nil {
			if sfapi.IsCredentialError(err) {
				return nil, &rotationError{code: "admin_login_refused", msg: err.Error(), err: err}
			}
			return nil, &rotationError{code: "admin_login", msg: err.Error(), err: err}
		}
		if _, err := r.userID(ctx); err != nil {
			return nil, &rotationError{code: "salesforce", msg: err.Error(), err: err}
		}
	}

	// When Salesforce last set the password, for the settling of a WAL
	// entry this rotation may leave behind.
	changedAt, markErr := r.passwordChangeMark(ctx)
	if markErr != nil {
		b.logger.Debug("cannot read when the password last changed; a WAL entry left by this rotation would be settled by a login", "account", r.name, "error", markErr)
	}

	// Each candidate Salesforce rejects is dropped for good; the next
	// attempt uses a fresh one, a bounded number of times.
	rejected := map[string]bool{}
	var lastReject error
	for attempt := 1; ; attempt++ {
		if attempt > r.rcfg.MaxNewPasswordAttempts {
			return nil, &rotationError{code: "password_rejected",
				msg: fmt.Sprintf("Salesforce rejected %d new passwords in a row (last: %v); check the org's password policy against the password policy of the account", attempt-1, lastReject),
				err: lastReject}
		}
		c, policyHash, err := b.newCandidate(ctx, r.acct, r.rcfg, rejected)
		if err != nil {
			return nil, &rotationError{code: "password_policy", msg: err.Error(), err: err}
		}
		// WAL, then the change at Salesforce, then store.
		walID, err := b.putRotationWAL(ctx, r.storage, &rotationWAL{
			Account:    r.name,
			Username:   r.acct.Username,
			Candidate:  c,
			PolicyHash: policyHash,
			Version:    r.acct.Version,
			CreatedAt:  b.now().UTC(),

			PasswordChangedAt:   changedAt,
			PasswordChangeKnown: markErr == nil,
		})
		if err != nil {
			return nil, &rotationError{code: "storage", msg: "writing the rotation WAL: " + err.Error(), err: err}
		}
		if err := b.step(stepWALWritten); err != nil {
			return nil, err
		}
		err = b.changePassword(ctx, r, c)
		if err == nil {
			if err := b.step(stepPasswordChanged); err != nil {
				return nil, err
			}
			if err := b.storeRotated(ctx, r, c, walID); err != nil {
				return nil, err
			}
			break
		}
		switch {
		case sfapi.KindOf(err) == sfapi.KindPassword:
			// Salesforce refused it, so nothing changed: drop the
			// candidate for good.
			rejected[c] = true
			lastReject = err
			b.deleteWAL(ctx, r.storage, walID)
			b.logger.Info("Salesforce rejected a new password; trying a fresh one", "account", r.name, "code", sfapi.ErrorCode(err))
			continue
		case sfapi.IsTransient(err) || sfapi.KindOf(err) == sfapi.KindOther:
			// The change may or may not have happened: the WAL stays, and
			// the ticker, the next attempt or WALRollback settles it by
			// logging in once the change can no longer be applied.
			b.settleLater(b.now().Add(settleAge(r.cfg)))
			return nil, &rotationError{code: "salesforce", msg: "changing the password: " + err.Error(), err: err}
		default:
			// Refused outright (permission, not found, old password): nothing
			// changed.
			b.deleteWAL(ctx, r.storage, walID)
			re := &rotationError{code: "salesforce", msg: "changing the password: " + err.Error(), err: err}
			if sfapi.ErrorCode(err) == "INVALID_OLD_PASSWORD" {
				// Sending it again would fail the same way: the stored
				// password is no longer the user's.
				re.code, re.blocked = "drift", true
				re.msg = fmt.Sprintf("Salesforce refused the password change with INVALID_OLD_PASSWORD: the stored password of account %q is no longer the user's "+
					"current password (changed outside Vault). Not retrying: write the current password to accounts/%s", r.name, r.name)
			}
			return nil, re
		}
	}
	// Verify (failures are warnings: the new password is stored), switch a
	// dual account's users, notify.
	_ = r.runHooks(ctx, afterRotation)
	if _, err := b.completeSwitch(ctx, r); err != nil {
		if errors.Is(err, errSimulatedCrash) {
			return nil, err
		}
		r.warn("the switch to %s waits: %v", r.acct.Username, err)
		b.markUnfinished(r.name, b.now().Add(walRetryInterval))
	}
	b.notifyRotated(ctx, r.name, r.acct, r.rcfg)
	res := &rotationResult{
		Account:         r.name,
		Outcome:         outcomeRotated,
		Version:         r.acct.Version,
		TokenStatus:     tokenStatusOf(r.acct),
		Warnings:        r.warnings,
		RotatedUsername: r.acct.Username,
		Ended:           r.ended,
	}
	addDualResult(res, r.acct)
	return res, nil
}

// changePassword asks Salesforce to set the new password.
func (b *backend) changePassword(ctx context.Context, r *rotationRun, candidate string) error {
	if r.acct.method() == rotationMethodSelf {
		if r.ownSession == nil {
			return &sfapi.Error{Op: "change own password", Message: "no session of the account", Kind: sfapi.KindPermission}
		}
		return r.client.ChangeOwnPassword(ctx, r.ownSession, r.oldPassword, candidate)
	}
	admin, err := r.admin(ctx)
	if err != nil {
		return err
	}
	userID, err := r.userID(ctx)
	if err != nil {
		return err
	}
	err = r.client.SetPassword(ctx, admin, userID, candidate)
	if sfapi.KindOf(err) == sfapi.KindSession {
		// The cached admin session ended; Salesforce did nothing with
		// this request, so one retry with a fresh session is safe.
		b.dropAdminSession()
		r.adminSess = nil
		if admin, err = r.admin(ctx); err != nil {
			return err
		}
		err = r.client.SetPassword(ctx, admin, userID, candidate)
	}
	return err
}

// storeRotated makes the new password the stored one and drops the WAL.
func (b *backend) storeRotated(ctx context.Context, r *rotationRun, candidate, walID string) error {
	adoptPassword(r.acct, candidate, b.now())
	if err := r.txn.put(ctx, r.acct); err != nil {
		// The WAL keeps the candidate; reconciliation stores it later.
		b.settleLater(b.now().Add(settleAge(r.cfg)))
		return &rotationError{code: "storage", msg: "storing the new password (Salesforce already has it; it is kept in the WAL and stored on recovery): " + err.Error(), err: err}
	}
	if err := b.step(stepStored); err != nil {
		return err
	}
	// Storage holds the password: the entry goes while the new login runs.
	r.txn.afterward(ctx, func(ctx context.Context) { b.deleteWAL(ctx, r.storage, walID) })
	return b.step(stepWALDeleted)
}

// notifyRotated drops token caches and tells the integrations.
func (b *backend) notifyRotated(ctx context.Context, name string, acct *account, rcfg *rotationConfig) {
	b.invalidateTokensForAccount(name)
	b.notify(ctx, name, acct, rcfg, outcomeRotated, nil)
	b.logger.Info("rotated account password", "account", name, "version", acct.Version)
}

// recordFailure stores the failure on the account (status, backoff) and
// tells the integrations. A postponement is not a failure.
func (b *backend) recordFailure(ctx context.Context, txn *accountTxn, rcfg *rotationConfig, trigger string, failure error) {
	name := txn.name
	acct, err := txn.get(ctx)
	if err != nil || acct == nil {
		return
	}
	now := b.now()
	var re *rotationError
	errors.As(failure, &re)
	if re != nil && re.postponed {
		if trigger == triggerScheduled {
			acct.NextVaultRotation = now.Add(rcfg.backoff(1)).Truncate(time.Second)
		}
	} else {
		acct.LastRotationError = failure.Error()
		acct.LastRotationErrorAt = now.UTC()
		acct.ConsecutiveFailures++
		if re != nil && re.blocked {
			acct.RotationBlocked = re.code
		}
		if trigger == triggerScheduled && acct.RotationWindow > 0 && acct.WindowEnd.IsZero() {
			// Retries of a windowed schedule stay inside the window.
			acct.WindowEnd = acct.NextVaultRotation.Add(acct.RotationWindow)
		}
		if trigger == triggerScheduled || !acct.NextVaultRotation.IsZero() && !acct.NextVaultRotation.After(now) {
			acct.NextVaultRotation = now.Add(rcfg.backoff(acct.ConsecutiveFailures)).Truncate(time.Second)
		}
	}
	if err := txn.put(ctx, acct); err != nil {
		b.logger.Error("storing rotation failure", "account", name, "error", err)
	}
	if re == nil || !re.postponed {
		b.notify(ctx, name, acct, rcfg, outcomeFailed, failure)
	}
}
