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
	client, _, err := b.getClient(ctx, s)
	if err != nil {
		return err
	}
	res, err := b.probeLogin(ctx, client, w.Account, acct, w.Candidate, false, rcfg)
	if err != nil {
		return fmt.Errorf("checking the candidate of an unfinished rotation: %w", err)
	}
	if res.verdict == loginRejected {
		b.logger.Info("unfinished rotation did not reach Salesforce; keeping the stored password", "account", w.Account)
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
// with the candidate, config gets it; if Salesforce rejects it, the stored
// password stays. nil means the WAL may be deleted.
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
	if _, err := client.PasswordGrant(ctx, cfg.Username, w.Candidate+cfg.SecurityToken); err != nil {
		if IsCredentialError(err) {
			b.logger.Info("unfinished rotate-root did not reach Salesforce; keeping the stored admin password")
			return nil
		}
		return fmt.Errorf("checking the candidate of an unfinished rotate-root: %w", err)
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
