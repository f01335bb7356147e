package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// rotationWALKind marks the WAL entries of password rotations.
const rotationWALKind = "salesforceRotation"

// walRollbackMinAge: a rotation holds its WAL for seconds; older entries
// are from a rotation that crashed or lost its storage.
const walRollbackMinAge = 10 * time.Minute

// rotationWAL is written before Salesforce is asked to change a password
// and deleted once storage holds the new one.
type rotationWAL struct {
	Account   string `json:"account"`
	Username  string `json:"username"`
	Candidate string `json:"candidate"`
	// PolicyHash identifies the password rules the candidate was made with.
	PolicyHash string `json:"policy_hash"`
	// Version is the account's version before the rotation.
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
}

// reconcileAllWALs settles every unfinished rotation; run at start-up.
func (b *backend) reconcileAllWALs(ctx context.Context, s logical.Storage) error {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return err
	}
	var merr error
	byAccount := map[string][]string{}
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			merr = errors.Join(merr, err)
			continue
		}
		if entry != nil && entry.Kind == rootRotationWALKind {
			if err := b.settleRootWAL(ctx, s, entry.Data); err != nil {
				merr = errors.Join(merr, err)
			} else {
				b.deleteWAL(ctx, s, id)
			}
			continue
		}
		if entry == nil || entry.Kind != rotationWALKind {
			continue
		}
		w, err := decodeRotationWAL(entry.Data)
		if err != nil {
			b.logger.Warn("dropping an unreadable rotation WAL", "error", err)
			b.deleteWAL(ctx, s, id)
			continue
		}
		byAccount[w.Account] = append(byAccount[w.Account], id)
	}
	for name := range byAccount {
		unlock := b.lockAccount(name)
		err := b.reconcileAccountWALs(ctx, s, name)
		unlock()
		if err != nil {
			merr = errors.Join(merr, fmt.Errorf("account %q: %w", name, err))
		}
	}
	return merr
}

// reconcileAccountWALs settles the unfinished rotations of one account,
// whose lock the caller holds. For each candidate: if it is already stored,
// the WAL is stale; if it logs in, Salesforce has it and it becomes the
// stored password; if Salesforce rejects it, the old password is kept and
// the candidate is discarded, never retried. If nothing can be concluded
// (outage, login budget), the WAL stays and an error is returned.
func (b *backend) reconcileAccountWALs(ctx context.Context, s logical.Storage, name string) error {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return err
	}
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			return err
		}
		if entry == nil || entry.Kind != rotationWALKind {
			continue
		}
		w, err := decodeRotationWAL(entry.Data)
		if err != nil || w.Account != name {
			continue
		}
		if err := b.settleWAL(ctx, s, w); err != nil {
			return err
		}
		b.deleteWAL(ctx, s, id)
	}
	return nil
}

// settleWAL reconciles one candidate with Salesforce. nil means the WAL
// may be deleted.
func (b *backend) settleWAL(ctx context.Context, s logical.Storage, w *rotationWAL) error {
	acct, err := readAccount(ctx, s, w.Account)
	if err != nil {
		return err
	}
	if acct == nil || acct.Username != w.Username || acct.Password == w.Candidate {
		// Deleted, replaced, or the rotation was stored before the crash.
		return nil
	}
	rcfg, err := readRotationConfig(ctx, s)
	if err != nil {
		return err
	}
	policy := acct.PasswordPolicy
	if policy == "" {
		policy = rcfg.PasswordPolicy
	}
	if policyHash(policy, rcfg) != w.PolicyHash {
		// The candidate is never reused in any case; with the policy
		// changed it is only checked, since a candidate Salesforce already
		// accepted must not be lost.
		b.logger.Info("the password policy changed since the rotation WAL was written; its candidate is discarded unless Salesforce already has it", "account", w.Account)
	}
	client, cfg, err := b.getClient(ctx, s)
	if err != nil {
		return err
	}
	run := &rotationRun{b: b, storage: s, name: w.Account, acct: acct, cfg: cfg, rcfg: rcfg, client: client}
	if !acct.UnverifiedCandidateAt.IsZero() {
		// An earlier check was inconclusive because the user could not log
		// in; a login tells nothing until the admin sees that it can.
		if facts := b.userState(ctx, run); !facts.canLogIn() {
			return b.keepUnverifiedCandidate(ctx, s, w.Account, acct, facts)
		}
	}
	res, err := b.probeLogin(ctx, s, client, w.Account, acct, w.Candidate, false, rcfg)
	if err != nil {
		return fmt.Errorf("checking the candidate of an unfinished rotation: %w", err)
	}
	if res.verdict == loginRejected {
		// Salesforce answers INVALID_LOGIN also for a locked-out or
		// inactive user, whatever the password: the rejection only proves
		// the candidate wrong for a user that can log in.
		facts := b.userState(ctx, run)
		if !facts.canLogIn() {
			return b.keepUnverifiedCandidate(ctx, s, w.Account, acct, facts)
		}
		b.logger.Info("unfinished rotation did not reach Salesforce; keeping the stored password", "account", w.Account)
		if !acct.UnverifiedCandidateAt.IsZero() {
			acct.UnverifiedCandidateAt = time.Time{}
			if err := writeAccount(ctx, s, w.Account, acct); err != nil {
				return err
			}
		}
		return nil
	}
	// Salesforce has the candidate: roll forward.
	adoptPassword(acct, w.Candidate, b.rot.now())
	if err := writeAccount(ctx, s, w.Account, acct); err != nil {
		return err
	}
	b.logger.Info("completed an unfinished rotation: Salesforce had the new password", "account", w.Account, "version", acct.Version)
	b.afterRotation(ctx, s, w.Account, acct, rcfg)
	return nil
}

// keepUnverifiedCandidate keeps the WAL of a candidate that could not be
// checked because the user cannot log in now, and shows it on the account:
// Salesforce may already have the candidate, so the stored password may
// not log in. The returned error keeps the WAL.
func (b *backend) keepUnverifiedCandidate(ctx context.Context, s logical.Storage, name string, acct *account, facts userFacts) error {
	var why string
	switch {
	case facts.locked:
		why = fmt.Sprintf("the Salesforce user %q is locked out, and Salesforce refuses every login of a locked user; unlock it in Setup or wait for the lockout to end", acct.Username)
	case facts.inactive:
		why = fmt.Sprintf("the Salesforce user %q is inactive; activate it in Setup", acct.Username)
	default:
		why = "Salesforce refused the login and the admin session could not tell whether the user is locked out or inactive; check the admin login of config"
	}
	msg := fmt.Sprintf("an interrupted rotation of account %q may have set a new password in Salesforce, and it cannot be checked now: %s. "+
		"The new password is kept in the write-ahead log and checked again later; until then the stored password may not log in", name, why)
	now := b.rot.now().UTC()
	if acct.UnverifiedCandidateAt.IsZero() {
		acct.UnverifiedCandidateAt = now
	}
	acct.LastRotationError = msg
	acct.LastRotationErrorAt = now
	if acct.ConsecutiveFailures == 0 {
		acct.ConsecutiveFailures = 1
	}
	if err := writeAccount(ctx, s, name, acct); err != nil {
		b.logger.Error("storing the state of an unsettled rotation", "account", name, "error", err)
	}
	b.logger.Warn("keeping the WAL of an interrupted rotation: its new password cannot be checked now", "account", name,
		"locked", facts.locked, "inactive", facts.inactive, "state_known", facts.known)
	return &rotationError{code: "unsettled", msg: msg}
}

// walRollback is the backend's WALRollback: Vault calls it for WAL entries
// older than WALRollbackMinAge; returning nil deletes the entry.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data interface{}) error {
	if kind == rootRotationWALKind {
		b.rot.rootMu.Lock()
		defer b.rot.rootMu.Unlock()
		return b.settleRootWAL(ctx, req.Storage, data)
	}
	if kind != rotationWALKind {
		return nil
	}
	w, err := decodeRotationWAL(data)
	if err != nil {
		// Unreadable: nothing can ever be done with it.
		return nil
	}
	defer b.lockAccount(w.Account)()
	return b.settleWAL(ctx, req.Storage, w)
}

func decodeRotationWAL(data interface{}) (*rotationWAL, error) {
	// Vault hands WALRollback the entry decoded as generic JSON.
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	var w rotationWAL
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, err
	}
	if w.Account == "" || w.Candidate == "" {
		return nil, errors.New("rotation WAL without account or candidate")
	}
	return &w, nil
}

// rootRotationWALKind marks the WAL of a rotate-root.
const rootRotationWALKind = "salesforceRootRotation"

// rootRotationWAL is written before the admin password is changed.
type rootRotationWAL struct {
	Username  string `json:"username"`
	Candidate string `json:"candidate"`
}

// settleRootWAL reconciles an unfinished rotate-root: if the admin logs in
// with the candidate, config gets it; if Salesforce rejects it and the
// stored password logs in, the stored password stays. If neither logs in
// (locked-out admin) the WAL stays. nil means the WAL may be deleted.
func (b *backend) settleRootWAL(ctx context.Context, s logical.Storage, data interface{}) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil
	}
	var w rootRotationWAL
	if err := json.Unmarshal(raw, &w); err != nil || w.Candidate == "" {
		return nil
	}
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return err
	}
	if cfg == nil || cfg.GrantType != adminGrantPassword || !strings.EqualFold(cfg.Username, w.Username) || cfg.Password == w.Candidate {
		return nil
	}
	client, _, err := b.getClient(ctx, s)
	if err != nil {
		return err
	}
	rcfg, err := readRotationConfig(ctx, s)
	if err != nil {
		return err
	}
	if err := b.adminProbe(ctx, client, cfg, w.Candidate, rcfg); err != nil {
		if !sfapi.IsCredentialError(err) {
			return fmt.Errorf("checking the candidate of an unfinished rotate-root: %w", err)
		}
		// INVALID_LOGIN also answers a locked-out admin: the candidate is
		// only proven wrong when the stored password still logs in.
		serr := b.adminRefusedNow()
		if serr == nil {
			serr = b.adminProbe(ctx, client, cfg, cfg.Password, rcfg)
		}
		if serr != nil {
			if sfapi.IsCredentialError(serr) && b.adminRefusedNow() == nil {
				_ = b.admin.refuse(cfg.GrantType, serr, b.admin.currentGeneration(), time.Now())
			}
			return fmt.Errorf("an unfinished rotate-root may have set a new admin password, and it cannot be checked now: neither it nor the stored "+
				"password logs in (the admin user may be locked out: %v); the write-ahead log keeps it and it is checked again later", serr)
		}
		b.logger.Info("unfinished rotate-root did not reach Salesforce; keeping the stored admin password")
		return nil
	}
	cfg.Password = w.Candidate
	if err := writeConfig(ctx, s, cfg); err != nil {
		return err
	}
	b.resetClient()
	b.invalidateAllTokens()
	b.logger.Info("completed an unfinished rotate-root: Salesforce had the new admin password")
	return nil
}

// adminBudgetKey is the login budget key of the config's admin user; it
// cannot collide with an account name.
const adminBudgetKey = "config/admin"

// adminProbe logs in as the config's admin user with password, within the
// login budgets, without caching a session.
func (b *backend) adminProbe(ctx context.Context, client Client, cfg *salesforceConfig, password string, rcfg *rotationConfig) error {
	now := b.rot.now()
	if ok, next, failed := b.rot.budget.takeLogin(adminBudgetKey, rcfg.LoginBudgetPerHour, rcfg.MaxFailedLogins, 0, now); !ok {
		return &errLoginBudget{account: adminBudgetKey, next: next, failed: failed}
	}
	_, err := client.PasswordGrant(ctx, cfg.Username, password+cfg.SecurityToken)
	switch {
	case err == nil:
		b.rot.budget.resetFailed(adminBudgetKey)
	case sfapi.IsCredentialError(err):
		b.rot.budget.recordFailed(adminBudgetKey, 0)
	}
	return err
}
