package salesforce

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Settling unfinished rotations. A rotation writes its candidate to the WAL
// before it asks Salesforce to set it, so an entry left by a crash, a
// failover or a failed store means "Salesforce may have this password". It
// is settled by one login with the candidate, under the account's lock: a
// success makes it the stored password; a rejection, for a user the admin
// sees able to log in, discards it. The pass runs at start-up, through
// Vault's WALRollback, and before an account's own rotation.

// settlesLater reports whether a settling error passes without an
// operator: the hourly login budget.
func settlesLater(err error) bool {
	return isBudgetError(err) && !isFailedLoginsCap(err)
}

// settleAccountWALs settles the unfinished rotations of the account whose
// transaction the caller holds. nil means none is left.
func (b *backend) settleAccountWALs(ctx context.Context, txn *accountTxn) error {
	pending, err := accountWALs(ctx, txn.s, txn.name)
	if err != nil {
		return err
	}
	for _, p := range pending {
		done, err := b.settleCandidate(ctx, txn, []pendingRotation{p})
		for _, id := range done {
			b.deleteWAL(ctx, txn.s, id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// settleCandidate settles one candidate and returns the WAL entries to
// delete; an error keeps the rest for a later try.
func (b *backend) settleCandidate(ctx context.Context, txn *accountTxn, group []pendingRotation) ([]string, error) {
	var ids []string
	for _, p := range group {
		ids = append(ids, p.id)
	}
	w := group[0].w
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

	if !acct.UnverifiedCandidateAt.IsZero() {
		// An earlier check was inconclusive because the user could not log
		// in; a login tells nothing until the admin sees that it can.
		if facts := b.userState(ctx, run); !facts.canLogIn() {
			return nil, b.keepUnverifiedCandidate(ctx, run, facts)
		}
	}
	if policyHash(effectivePolicy(acct, rcfg), rcfg) != w.PolicyHash {
		// The candidate is never reused in any case; with the policy
		// changed it is only checked, since a candidate Salesforce already
		// accepted must not be lost.
		b.logger.Info("the password policy changed since the rotation WAL was written; its candidate is discarded unless Salesforce already has it", "account", txn.name)
	}
	res, err := b.probeLogin(ctx, txn.s, client, cfg, txn.name, acct, w.Candidate, false, credCandidate)
	if err != nil {
		return nil, fmt.Errorf("checking the candidate of an unfinished rotation: %w", err)
	}
	switch res.verdict {
	case loginRejected:
		// Salesforce answers INVALID_LOGIN also for a locked-out or
		// inactive user, whatever the password: the rejection only proves
		// the candidate wrong for a user that can log in.
		if facts := b.userState(ctx, run); !facts.canLogIn() {
			return nil, b.keepUnverifiedCandidate(ctx, run, facts)
		}
		b.logger.Info("unfinished rotation did not reach Salesforce; keeping the stored password", "account", txn.name)
		return ids, b.clearUnverified(ctx, run)
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

// settleAllWALs settles every unfinished rotation; run at start-up, before
// the queue is built. An account's entries are settled together under its
// lock, as its next rotation does.
func (b *backend) settleAllWALs(ctx context.Context, s logical.Storage) error {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return err
	}
	var merr error
	accounts := map[string]bool{}
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			merr = errors.Join(merr, err)
			continue
		}
		if entry == nil {
			continue
		}
		settle, ok := b.walKinds()[entry.Kind]
		switch {
		case !ok:
			err := unknownWALKind(entry.Kind)
			b.logger.Error("not settling a WAL entry", "id", id, "error", err)
			merr = errors.Join(merr, err)
		case entry.Kind == rotationWALKind:
			w, err := decodeRotationWAL(entry.Data)
			if err != nil {
				b.logger.Warn("dropping an unreadable rotation WAL", "error", err)
				b.deleteWAL(ctx, s, id)
				continue
			}
			accounts[w.Account] = true
		default:
			if err := settle(ctx, s, entry.Data); err != nil {
				merr = errors.Join(merr, err)
			} else {
				b.deleteWAL(ctx, s, id)
			}
		}
	}
	for _, name := range sortedKeys(accounts) {
		txn := b.lockAccount(s, name)
		err := b.settleAccountWALs(ctx, txn)
		txn.unlock()
		if err != nil {
			merr = errors.Join(merr, fmt.Errorf("account %q: %w", name, err))
		}
	}
	return merr
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
