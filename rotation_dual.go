package salesforce

// Rotation of a dual account (rotation_strategy=dual_account), on top of
// the one rotation pipeline (rotation_pipeline.go):
//
//	finish   work an earlier rotation left after its password change:
//	         ending old sessions, a switch not made yet (a crash, a
//	         security token not written yet); a rotation that finishes a
//	         switch stops there
//	target   the inactive user: the pipeline runs on the account's view of
//	         it (account_dual.go), so WAL, login budget and hooks are the
//	         inactive user's
//	parity   dualParityHook: the users are interchangeable (profile,
//	         permission sets and groups, active, not locked) and the
//	         inactive user's token is known, before anything changes
//	change   WAL, change, store (with switch_pending_since), verify, as for
//	         every account
//	switch   completeSwitch: once the new password is verified and, for a
//	         token-bound user, its new security token is written, the
//	         rotated user becomes the active one. creds/<name> served the
//	         other user until then, and that credential keeps working
//	         until the next rotation changes it.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// outcomeSwitched: a rotation (or a security-token write) finished the
// switch of an earlier rotation.
const outcomeSwitched = "switched"

// stepSwitched: the rotated user of a dual account was made active.
const stepSwitched = "switched"

// stepTokenStored: a security-token write stored the token, before the
// switch of a dual account it allows.
const stepTokenStored = "token-stored"

// dualParityHook refuses, before any change, a rotation whose switch would
// be refused: the two users must be interchangeable.
type dualParityHook struct{}

func (dualParityHook) name() string                { return "dual_account_parity" }
func (dualParityHook) phase() hookPhase            { return beforeRotation }
func (dualParityHook) applies(r *rotationRun) bool { return r.acct.dual() }

func (dualParityHook) run(ctx context.Context, r *rotationRun) error {
	if r.acct.needsToken() && r.acct.SecurityTokenStatus == tokenStatusStale {
		return &rotationError{code: "token_stale", blocked: true,
			msg: fmt.Sprintf("the security token of %s, the inactive user of account %q, is stale, so the engine could not make it active after the "+
				"rotation; write its current token to accounts/%s/security-token with user=%s first",
				r.acct.Username, r.name, r.name, r.acct.roleOf(r.acct.Username))}
	}
	diffs, err := r.b.userDifferences(ctx, r)
	if err != nil {
		return &rotationError{code: "salesforce", msg: "comparing the two users of the account: " + err.Error(), err: err}
	}
	if diffs != "" {
		return &rotationError{code: "users_differ",
			msg: fmt.Sprintf("not rotating: the switch to %s would be refused, because %s; creds/%s keeps serving %s. "+
				"Give both users the same profile, permission sets and permission set groups in Salesforce, then rotate again",
				r.acct.Username, diffs, r.name, r.acct.ActiveUsername)}
	}
	r.parityOK = true
	return nil
}

// userDifferences compares the two users of the dual account of r as the
// admin: "" when they are interchangeable, else why not, in words.
func (b *backend) userDifferences(ctx context.Context, r *rotationRun) (string, error) {
	admin, err := r.admin(ctx)
	if err != nil {
		return "", err
	}
	id, err := r.userID(ctx)
	if err != nil {
		return "", err
	}
	other := r.acct.Secondary
	if other.UserID == "" {
		u, err := r.client.LookupUser(ctx, admin, other.Username)
		if err != nil {
			return "", fmt.Errorf("looking up user %q: %w", other.Username, err)
		}
		other.UserID = u.ID
	}
	access, err := r.client.UsersAccess(ctx, admin, id, other.UserID)
	if err != nil {
		return "", err
	}
	a, o := access[id15(id)], access[id15(other.UserID)]
	if a == nil || o == nil {
		return "", errors.New("Salesforce did not return both users")
	}
	return accessDifferences(r.acct.Username, a, other.Username, o), nil
}

// accessDifferences says how two users' access differs ("" when it does
// not): active, locked, profile, permission sets and groups (the set the
// profile owns is the profile).
func accessDifferences(aName string, a *sfapi.UserAccess, bName string, b *sfapi.UserAccess) string {
	var d []string
	for _, u := range []struct {
		name string
		ua   *sfapi.UserAccess
	}{{aName, a}, {bName, b}} {
		if !u.ua.IsActive {
			d = append(d, u.name+" is inactive")
		}
		if u.ua.Locked {
			d = append(d, u.name+" is locked out")
		}
	}
	if id15(a.ProfileID) != id15(b.ProfileID) {
		d = append(d, fmt.Sprintf("their profiles differ (%s has %s, %s has %s)", aName, a.ProfileName, bName, b.ProfileName))
	}
	missing := func(kind string, x []string, xName string, y []string, yName string) {
		have := map[string]bool{}
		for _, n := range y {
			have[strings.ToLower(n)] = true
		}
		for _, n := range x {
			if !have[strings.ToLower(n)] {
				d = append(d, fmt.Sprintf("%s %s is assigned to %s but not to %s", kind, n, xName, yName))
			}
		}
	}
	missing("permission set", a.PermissionSets, aName, b.PermissionSets, bName)
	missing("permission set", b.PermissionSets, bName, a.PermissionSets, aName)
	missing("permission set group", a.PermissionSetGroups, aName, b.PermissionSetGroups, bName)
	missing("permission set group", b.PermissionSetGroups, bName, a.PermissionSetGroups, aName)
	return strings.Join(d, "; ")
}

// switchResult is what completeSwitch did.
type switchResult int

const (
	switchNone switchResult = iota
	switchDone
	switchWaiting
)

// completeSwitch makes the rotated (inactive) user of r's dual account,
// which is in r.acct's flat fields, the active one once that is safe: its
// new password verified, its security token current or not needed, its
// validation_query passing, and the two users interchangeable. Otherwise the account says why it waits.
// An error (outage, login budget) keeps the switch pending for a later try.
func (b *backend) completeSwitch(ctx context.Context, r *rotationRun) (switchResult, error) {
	a := r.acct
	if !a.dual() || a.SwitchPendingSince.IsZero() || a.flatIsActive() {
		return switchNone, nil
	}
	role := a.roleOf(a.Username)
	if a.needsToken() && a.SecurityTokenStatus == tokenStatusStale {
		// Applications never get a credential that cannot log in: the
		// switch waits for the token Salesforce emailed, and nothing is
		// scheduled until it is written (the token write switches).
		return switchWaiting, b.holdSwitch(ctx, r, switchAwaitingToken, fmt.Sprintf(
			"Salesforce emailed %s a new security token with its new password; creds/%s keeps serving %s until that token is written to "+
				"accounts/%s/security-token with user=%s, which makes %s active", a.Username, r.name, a.ActiveUsername, r.name, role, a.Username))
	}
	if !r.verified {
		res, err := b.probeLogin(ctx, r.storage, r.client, r.cfg, r.name, a, a.Password, a.tokenUsable(), credStored)
		if err != nil {
			return switchNone, fmt.Errorf("verifying the new password of %s before making it active: %w", a.Username, err)
		}
		if res.verdict != loginOK {
			return switchWaiting, b.holdSwitch(ctx, r, switchBlocked, fmt.Sprintf(
				"the new password of %s does not log in (%v); creds/%s keeps serving %s. Check the user in Salesforce (accounts/%s/diagnose), then rotate again",
				a.Username, res.cause, r.name, a.ActiveUsername, r.name))
		}
		r.own(res.session)
		r.verified = true
	}
	if a.ValidationQuery != "" && !r.validated {
		// The integration's own query, as the user about to serve it.
		err := errors.New("no session with the new credential")
		if r.ownSession != nil {
			err = runValidationQuery(ctx, r.client, r.ownSession, a.ValidationQuery)
		}
		if err != nil {
			return switchWaiting, b.holdSwitch(ctx, r, switchBlocked, fmt.Sprintf(
				"not switching to %s: its validation_query fails (%v); creds/%s keeps serving %s. Fix the user's access in Salesforce; "+
					"the switch is tried again at the next rotation", a.Username, err, r.name, a.ActiveUsername))
		}
		r.validated = true
	}
	if !r.parityOK {
		diffs, err := b.userDifferences(ctx, r)
		if err != nil {
			return switchNone, fmt.Errorf("comparing the two users before the switch: %w", err)
		}
		if diffs != "" {
			return switchWaiting, b.holdSwitch(ctx, r, switchBlocked, fmt.Sprintf(
				"not switching to %s, because %s; creds/%s keeps serving %s. Give both users the same profile, permission sets and "+
					"permission set groups in Salesforce; the switch is tried again at the next rotation", a.Username, diffs, r.name, a.ActiveUsername))
		}
		r.parityOK = true
	}
	now := b.now().UTC()
	previous := a.ActiveUsername
	a.ActiveUsername = a.Username
	a.ActiveSince = now
	a.SwitchPendingSince = time.Time{}
	a.SwitchStatus, a.SwitchReason = "", ""
	if a.LastRotationError != "" && a.RotationBlocked == "" {
		a.LastRotationError, a.LastRotationErrorAt, a.ConsecutiveFailures = "", time.Time{}, 0
	}
	// The previous user keeps a full period from now: the next rotation,
	// which changes its password, is one period after the switch.
	a.NextVaultRotation = nextRotation(a, now)
	a.LastUpdated = now
	if err := r.txn.put(ctx, a); err != nil {
		return switchNone, err
	}
	r.switched = true
	b.invalidateTokensForAccount(r.name)
	b.logger.Info("dual account switched users", "account", r.name, "active", a.Username, "previous", previous)
	return switchDone, b.step(stepSwitched)
}

// holdSwitch stores why a pending switch waits. A refused switch counts as
// a failure (backoff, last_rotation_error); one awaiting a security token
// is not scheduled again until the token is written.
func (b *backend) holdSwitch(ctx context.Context, r *rotationRun, status, reason string) error {
	a := r.acct
	now := b.now()
	a.SwitchStatus, a.SwitchReason = status, reason
	if status == switchAwaitingToken {
		a.NextVaultRotation = time.Time{}
	} else {
		a.LastRotationError, a.LastRotationErrorAt = reason, now.UTC()
		a.ConsecutiveFailures++
		if a.scheduled() {
			a.NextVaultRotation = now.Add(r.rcfg.backoff(a.ConsecutiveFailures)).Truncate(time.Second)
		}
	}
	if err := r.txn.put(ctx, a); err != nil {
		return err
	}
	b.logger.Info("dual account switch waits", "account", r.name, "status", status)
	return nil
}

// newRun is a rotation run over the account view a read with txn, for the
// work that finishes an earlier rotation.
func (b *backend) newRun(ctx context.Context, txn *accountTxn, a *account, trigger string) (*rotationRun, error) {
	rcfg, err := readRotationConfig(ctx, txn.s)
	if err != nil {
		return nil, err
	}
	client, cfg, err := b.getClient(ctx, txn.s)
	if err != nil {
		return nil, err
	}
	return &rotationRun{b: b, storage: txn.s, txn: txn, name: txn.name, acct: a, cfg: cfg, rcfg: rcfg, client: client, trigger: trigger}, nil
}

// unfinishedWork reports whether a stored account has work left by a
// rotation after its password change.
func (a *account) unfinishedWork() bool {
	if !a.SwitchPendingSince.IsZero() && a.SwitchStatus != switchAwaitingToken {
		return true
	}
	return !a.EndSessionsPendingSince.IsZero() || a.Secondary != nil && !a.Secondary.EndSessionsPendingSince.IsZero()
}

// finished is what finishPending did.
type finished struct {
	// switchWasPending: a switch was pending when it started; switched:
	// it is done now; else the account's switch_reason says why it waits.
	switchWasPending bool
	switched         bool
	warnings         []string
}

// finishPending does what earlier rotations of txn's account left after
// their password change: ending the old credential's sessions and the
// switch of a dual account. An error keeps the rest for a later try.
func (b *backend) finishPending(ctx context.Context, txn *accountTxn, trigger string) (*finished, error) {
	prev := txn.asUser("")
	defer txn.asUser(prev)
	stored, err := txn.get(ctx)
	if err != nil || stored == nil {
		return &finished{}, err
	}
	users := []string{stored.Username}
	if stored.dual() {
		users = append(users, stored.Secondary.Username)
	}
	out := &finished{}
	for _, u := range users {
		txn.asUser(u)
		view, err := txn.get(ctx)
		if err != nil {
			return out, err
		}
		if view.EndSessionsPendingSince.IsZero() || !strings.EqualFold(view.Username, u) {
			continue
		}
		run, err := b.newRun(ctx, txn, view, trigger)
		if err != nil {
			return out, err
		}
		if _, err := b.endOldSessions(ctx, run); err != nil {
			// Not a reason to hold back a rotation or a switch: kept
			// pending and retried (rotation_sessions.go).
			out.warnings = append(out.warnings, fmt.Sprintf("the sessions of %s's old password are not all ended yet: %v", u, err))
			b.retryEndingSessions(txn.name, err)
		}
	}
	txn.asUser("")
	if stored, err = txn.get(ctx); err != nil || stored == nil || !stored.dual() || stored.SwitchPendingSince.IsZero() {
		return out, err
	}
	out.switchWasPending = true
	txn.asUser(stored.inactiveUsername())
	view, err := txn.get(ctx)
	if err != nil {
		return out, err
	}
	run, err := b.newRun(ctx, txn, view, trigger)
	if err != nil {
		return out, err
	}
	res, err := b.completeSwitch(ctx, run)
	out.warnings = append(out.warnings, run.warnings...)
	if err != nil {
		return out, err
	}
	if res == switchDone {
		out.switched = true
		b.notify(ctx, txn.name, view, run.rcfg, outcomeSwitched, nil)
	}
	return out, nil
}

// finishBeforeRotating runs at the start of every rotation, after its WAL
// entries are settled: it finishes what earlier rotations left. A rotation
// that finished (or could not finish) a pending switch stops there, with
// done set: the previous user keeps its grace period. Otherwise the
// transaction is set to the user the rotation changes.
func (b *backend) finishBeforeRotating(ctx context.Context, txn *accountTxn, trigger string) (res *rotationResult, done bool, err error) {
	stored, err := txn.get(ctx)
	if err != nil || stored == nil {
		return nil, err != nil, err
	}
	if stored.unfinishedWork() || !stored.SwitchPendingSince.IsZero() {
		f, ferr := b.finishPending(ctx, txn, trigger)
		if ferr != nil {
			re := &rotationError{code: "unfinished", err: ferr, postponed: sfapi.IsTransient(ferr) || isBudgetError(ferr) && !isFailedLoginsCap(ferr),
				msg: fmt.Sprintf("the previous rotation of %q is not finished yet (%v); it is finished before the next one", txn.name, ferr)}
			if rcfg, cerr := readRotationConfig(ctx, txn.s); cerr == nil {
				b.recordFailure(ctx, txn, rcfg, trigger, re)
			}
			return &rotationResult{Account: txn.name, Outcome: outcomeOf(re), Version: stored.Version}, true, re
		}
		if f.switchWasPending {
			if stored, err = txn.get(ctx); err != nil || stored == nil {
				return nil, true, err
			}
			res := dualResult(txn.name, stored)
			res.Warnings = f.warnings
			if f.switched {
				res.Outcome = outcomeSwitched
				return res, true, nil
			}
			return res, true, &rotationError{code: "switch_waiting", postponed: true,
				msg: fmt.Sprintf("not rotating again: the switch of the previous rotation waits (%s)", stored.SwitchReason)}
		}
		if stored, err = txn.get(ctx); err != nil || stored == nil {
			return nil, err != nil, err
		}
	}
	if stored.dual() {
		txn.asUser(stored.inactiveUsername())
	}
	return nil, false, nil
}

// dualResult is a rotation result that says who is active.
func dualResult(name string, a *account) *rotationResult {
	res := &rotationResult{Account: name, Outcome: outcomeRotated, Version: a.Version}
	addDualResult(res, a)
	return res
}

// addDualResult fills the dual-account fields of res from the account (or
// any view of it).
func addDualResult(res *rotationResult, a *account) {
	if !a.dual() {
		return
	}
	res.ActiveUsername = a.ActiveUsername
	res.ActiveUser = a.roleOf(a.ActiveUsername)
	res.SwitchStatus = a.switchStatus()
	res.SwitchReason = a.SwitchReason
}

// markUnfinished makes the next settling pass finish the account's work
// left after a password change (a crash, an outage).
func (b *backend) markUnfinished(name string, at time.Time) {
	b.rot.mu.Lock()
	if b.rot.unfinished == nil {
		b.rot.unfinished = map[string]bool{}
	}
	b.rot.unfinished[name] = true
	b.rot.mu.Unlock()
	b.settleLater(at)
}

// takeUnfinished returns and forgets the accounts marked unfinished.
func (b *backend) takeUnfinished() []string {
	b.rot.mu.Lock()
	defer b.rot.mu.Unlock()
	names := sortedKeys(b.rot.unfinished)
	b.rot.unfinished = nil
	return names
}

// finishUnfinished is the settling pass's part for accounts with work left
// after a password change, except those the pass just settled (which
// finished theirs); it returns when a failed one is due again.
func (b *backend) finishUnfinished(ctx context.Context, s logical.Storage, settled map[string]bool) (time.Time, error) {
	var merr error
	var next time.Time
	for _, name := range b.takeUnfinished() {
		if settled[name] {
			continue
		}
		if ctx.Err() != nil {
			b.markUnfinished(name, b.now().Add(walRetryInterval))
			continue
		}
		txn := b.lockAccount(s, name)
		_, err := b.finishPending(ctx, txn, triggerScheduled)
		txn.unlock()
		b.requeueStored(ctx, s, name)
		if err != nil {
			at := b.now().Add(walRetryInterval)
			b.markUnfinished(name, at)
			merr = errors.Join(merr, fmt.Errorf("account %q: %w", name, err))
			if next.IsZero() || at.Before(next) {
				next = at
			}
		}
	}
	return next, merr
}

// addRotateResultDetails adds what a rotation did beyond the password to a
// rotate/<name> answer: a dual account's users, ended sessions.
func addRotateResultDetails(res *rotationResult, data map[string]interface{}) {
	if res.ActiveUsername != "" {
		setIfNotEmpty(data, "rotated_username", res.RotatedUsername)
		data["active_user"] = res.ActiveUser
		data["active_username"] = res.ActiveUsername
		setIfNotEmpty(data, "switch_status", res.SwitchStatus)
		setIfNotEmpty(data, "switch_reason", res.SwitchReason)
	}
	if e := res.Ended; e != nil {
		data["sessions_ended"] = e.Sessions
		data["oauth_tokens_revoked"] = e.OAuthGrants
	}
}
