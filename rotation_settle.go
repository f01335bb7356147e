package salesforce

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// Settling unfinished rotations. A rotation writes its candidate to the WAL
// before it asks Salesforce to set it, so an entry left by a crash, a
// failover or a failed store means "Salesforce may have this password". It
// is settled by one login with the candidate, under the account's lock:
//
//   - a success is conclusive at any time: the candidate becomes the
//     stored password;
//   - a rejection is conclusive only for a login sent once the entry is
//     older than the longest time the original request could still be
//     applied (config's request_timeout plus walSettleMargin). Before that
//     no login is made: an early rejection would prove nothing and cost one
//     of the user's max_failed_logins. The entry is kept and reads say so;
//   - the rejection is recorded in the WAL before anything else, so a crash
//     right after it never makes the engine try the same candidate again;
//   - a rejected candidate is never taken as evidence against the stored
//     credential (no drift, no block): the next login with the stored
//     password, which resets the count, shows it still works.
//
// At start-up the pass runs in the background once the queue is rebuilt
// (startSettling), so the mount serves at once; the ticker runs it again
// when kept entries are due (settleDueWALs); Vault's WALRollback takes
// entries older than ten minutes; and an account's own rotation settles its
// entries first.

// walSettleMargin is added to the request timeout: Salesforce may finish a
// request a little after the caller gave up, and node clocks differ.
const walSettleMargin = 30 * time.Second

// walRetryInterval is when a pass retries entries that could not be
// settled for another reason (outage, locked user, login budget).
const walRetryInterval = time.Minute

// settleAge is how old a WAL entry must be before a rejection of its
// candidate is conclusive.
func settleAge(cfg *salesforceConfig) time.Duration {
	timeout := configDefaultRequestTimeout
	if cfg != nil && cfg.RequestTimeout > 0 {
		timeout = cfg.RequestTimeout
	}
	return timeout + walSettleMargin
}

// errNotSettledYet: the entry is too young for a rejection to prove
// anything, so it is not checked before at.
type errNotSettledYet struct{ at time.Time }

func (e *errNotSettledYet) Error() string {
	return fmt.Sprintf("its password change may still be applied by Salesforce until %s, and it is checked then", e.at.UTC().Format(time.RFC3339))
}

// settlesLater reports whether a settling error passes without an
// operator: a young entry, or the hourly login budget.
func settlesLater(err error) bool {
	var young *errNotSettledYet
	return errors.As(err, &young) || isBudgetError(err) && !isFailedLoginsCap(err)
}

// settleAccountWALs settles the unfinished rotations of the account whose
// transaction the caller holds. nil means none is left.
func (b *backend) settleAccountWALs(ctx context.Context, txn *accountTxn) error {
	pending, err := b.accountWALsIndexed(ctx, txn.s, txn.name)
	if err != nil {
		return err
	}
	for _, group := range byCandidate(pending) {
		done, err := b.settleCandidate(ctx, txn, group)
		for _, id := range done {
			b.deleteWAL(ctx, txn.s, id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// byCandidate groups entries by candidate, in storage order: a crash
// between writing an entry's replacement and deleting it leaves two
// entries of one candidate, which are settled as one.
func byCandidate(pending []pendingRotation) [][]pendingRotation {
	var groups [][]pendingRotation
	index := map[string]int{}
	for _, p := range pending {
		i, ok := index[p.w.Candidate]
		if !ok {
			i = len(groups)
			index[p.w.Candidate] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], p)
	}
	return groups
}

// settleCandidate settles one candidate and returns the WAL entries to
// delete; an error keeps the rest for a later try.
func (b *backend) settleCandidate(ctx context.Context, txn *accountTxn, group []pendingRotation) ([]string, error) {
	var ids []string
	w := group[0].w
	// A dual account's entry is its user's: settled on the view of it.
	defer txn.asUser(txn.asUser(w.Username))
	for _, p := range group {
		ids = append(ids, p.id)
		if p.w.RejectedAt.After(w.RejectedAt) {
			w = p.w
		}
		if p.w.CreatedAt.Before(w.CreatedAt) {
			w.CreatedAt = p.w.CreatedAt
		}
	}
	acct, err := txn.get(ctx)
	if err != nil {
		return nil, err
	}
	if acct == nil || acct.Username != w.Username || acct.Password == w.Candidate {
		// Deleted, replaced, or the rotation was stored before the crash.
		return ids, nil
	}
	rcfg, err := readRotationConfig(ctx, txn.s)
	if err != nil {
		return nil, err
	}
	client, cfg, err := b.getClient(ctx, txn.s)
	if err != nil {
		return nil, err
	}
	run := &rotationRun{b: b, storage: txn.s, txn: txn, name: txn.name, acct: acct, cfg: cfg, rcfg: rcfg, client: client}

	if !w.RejectedAt.IsZero() {
		// An earlier pass saw Salesforce reject this candidate and stopped
		// before deleting it. Another login with it would be one more
		// failed login: only the user's state is asked (as the admin).
		if facts := b.userState(ctx, run); !facts.canLogIn() {
			return b.unrecordRejection(ctx, txn.s, group), b.keepUnverifiedCandidate(ctx, run, facts)
		}
		b.logger.Info("unfinished rotation did not reach Salesforce (its rejection was recorded); keeping the stored password", "account", txn.name)
		return ids, b.clearUnverified(ctx, run)
	}
	if !acct.UnverifiedCandidateAt.IsZero() {
		// An earlier check was inconclusive because the user could not log
		// in; a login tells nothing until the admin sees that it can.
		if facts := b.userState(ctx, run); !facts.canLogIn() {
			return nil, b.keepUnverifiedCandidate(ctx, run, facts)
		}
	}
	if at := w.CreatedAt.Add(settleAge(cfg)); b.now().Before(at) {
		return nil, &errNotSettledYet{at: at}
	}
	changed, known, err := b.passwordChangedSince(ctx, run, w)
	if err != nil {
		return nil, fmt.Errorf("checking an unfinished rotation: %w", err)
	}
	if known && !changed {
		// No login at all: a probe with a candidate Salesforce never got
		// would be one more failed login, and a crash during it one more
		// again, until max_failed_logins blocks the account.
		b.logger.Info("unfinished rotation did not reach Salesforce: the user's password has not changed since its WAL was written; keeping the stored password",
			"account", txn.name)
		return ids, b.clearUnverified(ctx, run)
	}
	if policyHash(effectivePolicy(acct, rcfg), rcfg) != w.PolicyHash {
		// The candidate is never reused in any case; with the policy
		// changed it is only checked, since a candidate Salesforce already
		// accepted must not be lost.
		b.logger.Info("the password policy changed since the rotation WAL was written; its candidate is discarded unless Salesforce already has it", "account", txn.name)
	}
	sent := b.now().UTC()
	res, err := b.probeLogin(ctx, txn.s, client, cfg, txn.name, acct, w.Candidate, false, credCandidate)
	if err != nil {
		return nil, fmt.Errorf("checking the candidate of an unfinished rotation: %w", err)
	}
	switch res.verdict {
	case loginRejected:
		// Recorded before anything else: a crash from here on never sends
		// this candidate again.
		rec := *w
		rec.RejectedAt = sent
		newID, err := b.putRotationWAL(ctx, txn.s, &rec)
		if err != nil {
			return nil, fmt.Errorf("recording the rejection of an unfinished rotation's candidate: %w", err)
		}
		if err := b.step(stepCandidateRejected); err != nil {
			return nil, err
		}
		// Salesforce answers INVALID_LOGIN also for a locked-out or
		// inactive user, whatever the password: the rejection only proves
		// the candidate wrong for a user that can log in.
		if facts := b.userState(ctx, run); !facts.canLogIn() {
			b.deleteWAL(ctx, txn.s, newID)
			return nil, b.keepUnverifiedCandidate(ctx, run, facts)
		}
		b.logger.Info("unfinished rotation did not reach Salesforce; keeping the stored password", "account", txn.name)
		return append(ids, newID), b.clearUnverified(ctx, run)
	case loginInconclusive:
		return nil, b.keepUncheckedCandidate(ctx, run,
			"SOAP login() is off in this org, and the username-password flow cannot check a new password without the security token Salesforce emails after the change")
	}
	// Salesforce has the candidate: roll forward.
	adoptPassword(acct, w.Candidate, b.now())
	if err := txn.put(ctx, acct); err != nil {
		return nil, err
	}
	b.logger.Info("completed an unfinished rotation: Salesforce had the new password", "account", txn.name, "version", acct.Version)
	b.notifyRotated(ctx, txn.name, acct, rcfg)
	return ids, nil
}

// changeMarkGuard: a previous change this close to the WAL entry's
// creation may share its LastPasswordChangeDate, which Salesforce keeps to
// the second, with the change the entry asked for; the reading then proves
// nothing and the candidate is probed. The two times come from two clocks
// (Salesforce's and Vault's): the guard is the one second of precision
// plus room for their skew.
const changeMarkGuard = 10 * time.Second

// passwordChangeMark reads, through the admin session, when Salesforce
// last set the account's password. An error means it cannot tell (a
// refused admin login, a failed query); the rotation goes on regardless.
func (r *rotationRun) passwordChangeMark(ctx context.Context) (time.Time, error) {
	if err := r.b.adminRefusedNow(); err != nil {
		return time.Time{}, err
	}
	admin, err := r.admin(ctx)
	if err != nil {
		return time.Time{}, err
	}
	userID, err := r.userID(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return r.client.PasswordChangedAt(ctx, admin, userID)
}

// passwordChangedSince compares the account's LastPasswordChangeDate now
// with the one w recorded before its change was asked for (see
// changedSinceMark).
func (b *backend) passwordChangedSince(ctx context.Context, r *rotationRun, w *rotationWAL) (changed, known bool, err error) {
	if !w.PasswordChangeKnown {
		return false, false, nil
	}
	return b.changedSinceMark(w.PasswordChangedAt, w.CreatedAt, func() (time.Time, error) { return r.passwordChangeMark(ctx) }, "account", r.name)
}

// changedSinceMark compares a LastPasswordChangeDate read now with mark,
// the one read before the change a WAL entry created at created asked
// for. known is false when there is no usable reading (a previous change
// too close to tell apart, or a reading that failed); err is set only when
// Salesforce could not be reached, which a login could not get past
// either. logArgs name what was read, for the log.
func (b *backend) changedSinceMark(mark, created time.Time, readNow func() (time.Time, error), logArgs ...interface{}) (changed, known bool, err error) {
	if !mark.IsZero() && created.Sub(mark) < changeMarkGuard {
		return false, false, nil
	}
	now, err := readNow()
	if err != nil {
		if sfapi.IsTransient(err) {
			return false, false, fmt.Errorf("reading when the password last changed: %w", err)
		}
		b.logger.Debug("cannot read when the password last changed; settling by a login", append(logArgs, "error", err)...)
		return false, false, nil
	}
	return !now.Equal(mark), true, nil
}

// unrecordRejection keeps a candidate whose recorded rejection proved
// nothing (the user could not log in): an entry without the rejection
// stays, those with it go.
func (b *backend) unrecordRejection(ctx context.Context, s logical.Storage, group []pendingRotation) []string {
	var drop []string
	kept := false
	for _, p := range group {
		if p.w.RejectedAt.IsZero() {
			kept = true
		} else {
			drop = append(drop, p.id)
		}
	}
	if !kept {
		w := *group[0].w
		w.RejectedAt = time.Time{}
		if _, err := b.putRotationWAL(ctx, s, &w); err != nil {
			b.logger.Error("keeping an unfinished rotation's candidate", "account", w.Account, "error", err)
			return nil
		}
	}
	return drop
}

// effectivePolicy is the password policy of acct's new passwords.
func effectivePolicy(acct *account, rcfg *rotationConfig) string {
	if acct.PasswordPolicy != "" {
		return acct.PasswordPolicy
	}
	return rcfg.PasswordPolicy
}

// clearUnverified clears the mark of a candidate that could not be checked.
func (b *backend) clearUnverified(ctx context.Context, r *rotationRun) error {
	if r.acct.UnverifiedCandidateAt.IsZero() {
		return nil
	}
	r.acct.UnverifiedCandidateAt = time.Time{}
	return r.txn.put(ctx, r.acct)
}

// keepUnverifiedCandidate keeps the WAL of a candidate that could not be
// checked because the user cannot log in now.
func (b *backend) keepUnverifiedCandidate(ctx context.Context, r *rotationRun, facts userFacts) error {
	var why string
	switch {
	case facts.locked:
		why = fmt.Sprintf("the Salesforce user %q is locked out, and Salesforce refuses every login of a locked user; unlock it in Setup or wait for the lockout to end", r.acct.Username)
	case facts.inactive:
		why = fmt.Sprintf("the Salesforce user %q is inactive; activate it in Setup", r.acct.Username)
	default:
		why = "Salesforce refused the login and the admin session could not tell whether the user is locked out or inactive; check the admin login of config"
	}
	b.logger.Warn("keeping the WAL of an interrupted rotation: its new password cannot be checked now", "account", r.name,
		"locked", facts.locked, "inactive", facts.inactive, "state_known", facts.known)
	return b.keepUncheckedCandidate(ctx, r, why)
}

// keepUncheckedCandidate shows on the account that an interrupted
// rotation's candidate cannot be checked now, and why: Salesforce may
// already have it, so the stored password may not log in. The returned
// error keeps the WAL.
func (b *backend) keepUncheckedCandidate(ctx context.Context, r *rotationRun, why string) error {
	msg := fmt.Sprintf("an interrupted rotation of account %q may have set a new password in Salesforce, and it cannot be checked now: %s. "+
		"The new password is kept in the write-ahead log and checked again later; until then the stored password may not log in", r.name, why)
	acct := r.acct
	now := b.now().UTC()
	if acct.UnverifiedCandidateAt.IsZero() {
		acct.UnverifiedCandidateAt = now
	}
	acct.LastRotationError = msg
	acct.LastRotationErrorAt = now
	if acct.ConsecutiveFailures == 0 {
		acct.ConsecutiveFailures = 1
	}
	if err := r.txn.put(ctx, acct); err != nil {
		b.logger.Error("storing the state of an unsettled rotation", "account", r.name, "error", err)
	}
	return &rotationError{code: "unsettled", msg: msg}
}

// pendingStatus is what reads say about an account's unsettled rotation.
type pendingStatus struct {
	since  time.Time
	reason string
	// username is whose password the rotation changes.
	username string
}

// pendingRotation reports an unsettled rotation of the stored acct, from
// the WAL in storage (so any node, and a node that just started, tells the
// same); nil when there is none.
func (b *backend) pendingRotation(ctx context.Context, s logical.Storage, name string, acct *account) (*pendingStatus, error) {
	// From the WAL index: no storage call unless it must be rebuilt.
	entries, err := b.walIdx.forAccount(ctx, s, name)
	if errors.Is(err, errWALIndexBusy) {
		entries, err = summariesFromStorage(ctx, s, name)
	}
	if err != nil {
		return nil, err
	}
	var p *pendingStatus
	for _, e := range entries {
		// A dual account's entries are of either user.
		u := acct.viewOf(e.username)
		if u.Username != e.username || e.candidate == sha256.Sum256([]byte(u.Password)) {
			continue
		}
		if p == nil || e.createdAt.Before(p.since) {
			p = &pendingStatus{since: e.createdAt, username: e.username}
		}
	}
	if p == nil {
		return nil, nil
	}
	cfg, err := b.readConfigCached(ctx, s)
	if err != nil {
		return nil, err
	}
	at := p.since.Add(settleAge(cfg))
	switch {
	case !acct.UnverifiedCandidateAt.IsZero() && acct.LastRotationError != "":
		p.reason = acct.LastRotationError
	case b.now().Before(at):
		p.reason = fmt.Sprintf("a rotation changed (or is changing) the password in Salesforce at %s and its outcome is not settled yet; "+
			"the change may still be applied until %s, when it is checked", formatTime(p.since), formatTime(at))
	default:
		p.reason = "an interrupted rotation may have set a new password in Salesforce; it is checked again shortly"
		b.rot.mu.Lock()
		last, ok := b.rot.settleErrs[name]
		b.rot.mu.Unlock()
		if ok {
			p.reason += fmt.Sprintf(" (the last check, at %s, could not tell: %s)", formatTime(last.at), last.err)
		}
	}
	return p, nil
}

// summariesFromStorage reads the account's entries from the WAL itself.
func summariesFromStorage(ctx context.Context, s logical.Storage, name string) (map[string]walSummary, error) {
	entries, err := accountWALs(ctx, s, name)
	if err != nil {
		return nil, err
	}
	out := map[string]walSummary{}
	for _, e := range entries {
		out[e.id] = summarize(e.w)
	}
	return out, nil
}

// pendingWarning is the warning of reads of an account with an unsettled
// rotation.
func pendingWarning(p *pendingStatus) string {
	return fmt.Sprintf("rotation pending reconciliation since %s: %s. Until it is settled the password served here may not be "+
		"the one Salesforce has", formatTime(p.since), p.reason)
}
