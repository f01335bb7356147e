package salesforce

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"

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

	stepRootWALWritten      = "root-wal-written"
	stepRootPasswordChanged = "root-password-changed"
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
}

// rotateAccount rotates the password of one account now. It returns an
// error whenever the password was not rotated. force lets a manual
// rotation log in again with a credential already known not to work.
func (b *backend) rotateAccount(ctx context.Context, s logical.Storage, name, trigger string, force bool) (*rotationResult, error) {
	defer b.lockAccount(name)()

	if trigger == triggerManual && !force {
		stored, err := readAccount(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if stored == nil {
			return nil, errAccountNotFound(name)
		}
		if re := blockedManualRotation(name, stored); re != nil {
			// Nothing was tried, so nothing is recorded as a failure.
			return &rotationResult{Account: name, Outcome: outcomeFailed, Version: stored.Version}, re
		}
	}

	// An unfinished earlier rotation is settled first, so a new password is
	// never set on top of an unknown one.
	if err := b.reconcileAccountWALs(ctx, s, name); err != nil {
		re := &rotationError{code: "unsettled", err: err,
			msg: fmt.Sprintf("an earlier rotation of %q is unfinished and could not be settled yet: %v", name, err)}
		re.postponed = isBudgetError(err)
		if rcfg, cerr := readRotationConfig(ctx, s); cerr == nil {
			b.recordFailure(ctx, s, name, rcfg, trigger, re)
		}
		return &rotationResult{Account: name, Outcome: outcomeOf(re)}, re
	}

	acct, err := readAccount(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, errAccountNotFound(name)
	}
	rcfg, err := readRotationConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	client, cfg, err := b.getClient(ctx, s)
	if err != nil {
		re := &rotationError{code: "config", msg: err.Error(), err: err}
		b.recordFailure(ctx, s, name, rcfg, trigger, re)
		return &rotationResult{Account: name, Outcome: outcomeFailed, Version: acct.Version}, re
	}
	run := &rotationRun{
		b: b, storage: s, name: name, acct: acct, cfg: cfg, rcfg: rcfg,
		client: client, trigger: trigger, oldPassword: acct.Password,
	}
	res, err := b.rotate(ctx, run)
	if errors.Is(err, errSimulatedCrash) {
		return nil, err
	}
	if err != nil {
		b.recordFailure(ctx, s, name, rcfg, trigger, err)
		return &rotationResult{Account: name, Outcome: outcomeOf(err), Version: acct.Version}, err
	}
	return res, nil
}

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

func errAccountNotFound(name string) error {
	return &rotationError{code: "not_found", msg: fmt.Sprintf("account %q does not exist", name)}
}

// rotate runs the pipeline for an account whose lock is held.
func (b *backend) rotate(ctx context.Context, r *rotationRun) (*rotationResult, error) {
	// Checked before any login: a change Salesforce would refuse anyway
	// must not cost logins.
	if r.acct.method() == rotationMethodSelf && r.rcfg.MinPasswordLifetime &&
		!r.acct.PasswordChangedAt.IsZero() && b.rot.now().Sub(r.acct.PasswordChangedAt) < 24*time.Hour {
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
		walID, err := framework.PutWAL(ctx, r.storage, rotationWALKind, &rotationWAL{
			Account:    r.name,
			Username:   r.acct.Username,
			Candidate:  c,
			PolicyHash: policyHash,
			Version:    r.acct.Version,
			CreatedAt:  b.rot.now().UTC(),
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
			// the next attempt (or WALRollback) settles it by logging in.
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
	_ = r.runHooks(ctx, afterRotation)
	b.afterRotation(ctx, r.storage, r.name, r.acct, r.rcfg)
	return &rotationResult{
		Account:     r.name,
		Outcome:     outcomeRotated,
		Version:     r.acct.Version,
		TokenStatus: tokenStatusOf(r.acct),
		Warnings:    r.warnings,
	}, nil
}

// storeRotated makes the new password the stored one and drops the WAL.
func (b *backend) storeRotated(ctx context.Context, r *rotationRun, candidate, walID string) error {
	adoptPassword(r.acct, candidate, b.rot.now())
	if err := writeAccount(ctx, r.storage, r.name, r.acct); err != nil {
		// The WAL keeps the candidate; reconciliation stores it later.
		return &rotationError{code: "storage", msg: "storing the new password (Salesforce already has it; it is kept in the WAL and stored on recovery): " + err.Error(), err: err}
	}
	r.rotated = true
	if err := b.step(stepStored); err != nil {
		return err
	}
	b.deleteWAL(ctx, r.storage, walID)
	return b.step(stepWALDeleted)
}

// adoptPassword records a password Salesforce now has.
func adoptPassword(acct *account, password string, now time.Time) {
	acct.Password = password
	acct.Version++
	acct.LastVaultRotation = now.UTC()
	acct.PasswordChangedAt = now.UTC()
	if acct.needsToken() || acct.SecurityToken != "" {
		// Salesforce emails a new token on every password change; the
		// stored one no longer works, whatever the mode.
		acct.SecurityTokenStatus = tokenStatusStale
	}
	acct.UnverifiedCandidateAt = time.Time{}
	acct.LastRotationError = ""
	acct.LastRotationErrorAt = time.Time{}
	acct.ConsecutiveFailures = 0
	acct.RotationBlocked = ""
	acct.MissedRotationAt = time.Time{}
	acct.WindowEnd = time.Time{}
	acct.NextVaultRotation = nextRotation(acct, now)
	acct.LastUpdated = now.UTC()
}

// afterRotation drops token caches and tells the integrations.
func (b *backend) afterRotation(ctx context.Context, s logical.Storage, name string, acct *account, rcfg *rotationConfig) {
	b.invalidateTokensForAccount(name)
	b.pushSchedule(name, acct)
	b.notify(ctx, name, acct, rcfg, outcomeRotated, nil)
	b.logger.Info("rotated account password", "account", name, "version", acct.Version)
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

// errSimulatedCrash is returned by test step hooks to stop a rotation the
// way a crash would: nothing more is written.
var errSimulatedCrash = errors.New("simulated crash")

func (b *backend) step(name string) error {
	if b.rot.testStep == nil {
		return nil
	}
	return b.rot.testStep(name)
}

func (b *backend) deleteWAL(ctx context.Context, s logical.Storage, id string) {
	if err := framework.DeleteWAL(ctx, s, id); err != nil {
		b.logger.Warn("deleting rotation WAL; it is settled on the next start", "error", err)
	}
}

// recordFailure stores the failure on the account (status, backoff) and
// tells the integrations. A postponement is not a failure.
func (b *backend) recordFailure(ctx context.Context, s logical.Storage, name string, rcfg *rotationConfig, trigger string, failure error) {
	acct, err := readAccount(ctx, s, name)
	if err != nil || acct == nil {
		return
	}
	now := b.rot.now()
	var re *rotationError
	errors.As(failure, &re)
	if re != nil && re.postponed {
		if trigger == triggerScheduled {
			acct.NextVaultRotation = now.Add(b.backoff(1, rcfg)).Truncate(time.Second)
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
			acct.NextVaultRotation = now.Add(b.backoff(acct.ConsecutiveFailures, rcfg)).Truncate(time.Second)
		}
	}
	if err := writeAccount(ctx, s, name, acct); err != nil {
		b.logger.Error("storing rotation failure", "account", name, "error", err)
	}
	b.pushSchedule(name, acct)
	if re == nil || !re.postponed {
		b.notify(ctx, name, acct, rcfg, outcomeFailed, failure)
	}
}

// nextRotation computes the next scheduled rotation after from; zero when
// the account is not scheduled.
func nextRotation(acct *account, from time.Time) time.Time {
	if !acct.scheduled() {
		return time.Time{}
	}
	if acct.RotationSchedule != "" {
		sched, err := rotation.DefaultScheduler.Parse(acct.RotationSchedule)
		if err != nil {
			return time.Time{}
		}
		return sched.Next(from).UTC()
	}
	return from.Add(acct.RotationPeriod).UTC()
}

// Password generation.

// Salesforce's special characters for complexity levels 2 and 4.
const (
	lowerChars   = "abcdefghijkmnopqrstuvwxyz"
	upperChars   = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	digitChars   = "23456789"
	specialChars = "!#$%-_=+<>"
)

// newCandidate makes a new password from the account's (or the mount's)
// Vault password policy, or from the built-in generator, avoiding rejected
// ones. It also returns a hash that identifies the policy in the WAL.
func (b *backend) newCandidate(ctx context.Context, acct *account, rcfg *rotationConfig, rejected map[string]bool) (string, string, error) {
	policy := acct.PasswordPolicy
	if policy == "" {
		policy = rcfg.PasswordPolicy
	}
	hash := policyHash(policy, rcfg)
	for i := 0; i < 10; i++ {
		var pw string
		var err error
		if policy != "" {
			pw, err = b.System().GeneratePasswordFromPolicy(ctx, policy)
			if err != nil {
				return "", "", fmt.Errorf("generating a password from policy %q: %w", policy, err)
			}
		} else {
			pw, err = generatePassword(rcfg.PasswordLength)
			if err != nil {
				return "", "", err
			}
		}
		if !rejected[pw] {
			return pw, hash, nil
		}
	}
	return "", "", fmt.Errorf("password policy %q keeps producing passwords Salesforce already rejected", policy)
}

// policyHash fingerprints the password rules a WAL candidate was made with.
// Vault does not let a plugin read a named policy's contents, so for named
// policies it covers the name; for the built-in generator it covers the
// generator's rules.
func policyHash(policy string, rcfg *rotationConfig) string {
	var desc string
	if policy != "" {
		desc = "vault-policy:" + policy
	} else {
		desc = fmt.Sprintf("builtin:v1:length=%d:%s|%s|%s|%s", rcfg.PasswordLength, lowerChars, upperChars, digitChars, specialChars)
	}
	sum := sha256.Sum256([]byte(desc))
	return hex.EncodeToString(sum[:])
}

// generatePassword returns a random password with at least one lower- and
// upper-case letter, digit and special character, which satisfies
// Salesforce's strictest complexity level (4).
func generatePassword(length int) (string, error) {
	if length < 8 {
		length = 8
	}
	all := lowerChars + upperChars + digitChars + specialChars
	classes := []string{lowerChars, upperChars, digitChars, specialChars}
	out := make([]byte, length)
	for i := range out {
		set := all
		if i < len(classes) {
			set = classes[i]
		}
		c, err := randIndex(len(set))
		if err != nil {
			return "", err
		}
		out[i] = set[c]
	}
	// Shuffle so the guaranteed classes are not always first.
	for i := len(out) - 1; i > 0; i-- {
		j, err := randIndex(i + 1)
		if err != nil {
			return "", err
		}
		out[i], out[j] = out[j], out[i]
	}
	return string(out), nil
}

func randIndex(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("reading randomness: %w", err)
	}
	return int(v.Int64()), nil
}
