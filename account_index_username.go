package salesforce

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// The username index (usernames/<username>, account_index.go describes all
// indexes): one entry per Salesforce user an account stores, so a write checks
// that no other account manages the user with one read, and the locks that
// keep two writes from claiming one user.

// usernameEntry is stored at usernames/<username>.
type usernameEntry struct {
	Account string `json:"account"`
}

func usernameKey(username string) string {
	return usernameIndexPrefix + url.PathEscape(strings.ToLower(username))
}

// usernamesOf returns the Salesforce users whose credentials a stores:
// its username and, for a dual account, the secondary's.
func usernamesOf(a *account) []string {
	if a == nil {
		return nil
	}
	names := []string{a.Username}
	if a.Secondary != nil && a.Secondary.Username != "" {
		names = append(names, a.Secondary.Username)
	}
	return names
}

// maxUsernameLockWait bounds how long a transaction that holds a username
// lock already waits for another one.
const maxUsernameLockWait = 10 * time.Second

// lockUsername takes the lock of username for the rest of the transaction.
// A transaction holding one already (a dual account's second user) only
// tries for the next one for a while, so two writes taking the locks of two
// users in opposite orders never wait for each other forever.
func (t *accountTxn) lockUsername(ctx context.Context, username string) error {
	l := locksutil.LockForKey(t.b.idx.locks, strings.ToLower(username))
	for _, held := range t.userLocks {
		if held == l {
			return nil
		}
	}
	if len(t.userLocks) > 0 {
		deadline := time.Now().Add(maxUsernameLockWait)
		for !l.TryLock() {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return logical.CodedError(http.StatusServiceUnavailable,
					"another write is claiming a username of this account at the same time; try again")
			}
			time.Sleep(10 * time.Millisecond)
		}
	} else {
		l.Lock()
	}
	t.userLocks = append(t.userLocks, l)
	return nil
}

// claimUsername returns the name of another stored account that manages
// username (compared case-insensitively, as Salesforce does), or "". The
// username stays locked until the transaction ends, so no other account
// can claim it meanwhile; put then writes its entry.
func (t *accountTxn) claimUsername(ctx context.Context, username string) (string, error) {
	// A build of the indexes takes username locks: wait for it first.
	built, err := t.b.indexesBuilt(ctx, t.s)
	if err != nil {
		return "", err
	}
	if err := t.lockUsername(ctx, username); err != nil {
		return "", err
	}
	return t.b.lookupUsername(ctx, t.s, username, t.name, built)
}

// accountWithUsername returns the name of the stored account other than
// except that manages username (compared case-insensitively, as Salesforce
// does), or "": one index read where the indexes are built.
func (b *backend) accountWithUsername(ctx context.Context, s logical.Storage, username, except string) (string, error) {
	built, err := b.indexesBuilt(ctx, s)
	if err != nil {
		return "", err
	}
	return b.lookupUsername(ctx, s, username, except, built)
}

func (b *backend) lookupUsername(ctx context.Context, s logical.Storage, username, except string, built bool) (string, error) {
	if !built {
		return scanForUsername(ctx, s, username, except)
	}
	entry, err := s.Get(ctx, usernameKey(username))
	if err != nil {
		return "", fmt.Errorf("reading the username index: %w", err)
	}
	if entry == nil {
		return "", nil
	}
	var ue usernameEntry
	if err := entry.DecodeJSON(&ue); err != nil {
		return "", fmt.Errorf("decoding the username index: %w", err)
	}
	if ue.Account == "" || ue.Account == except {
		return "", nil
	}
	other, err := b.readAccountCached(ctx, s, ue.Account)
	if err != nil {
		return "", err
	}
	if other == nil || !other.holdsUsername(username) {
		// Stale: the account was deleted (or never stored), or let the
		// user go, after its entry was written.
		return "", nil
	}
	return ue.Account, nil
}

// scanForUsername reads every stored account: the check of a create on a
// mount whose indexes are not built (a test backend never initialized).
func scanForUsername(ctx context.Context, s logical.Storage, username, except string) (string, error) {
	keys, err := listKeysBelow(ctx, s, accountStoragePrefix)
	if err != nil {
		return "", fmt.Errorf("listing accounts: %w", err)
	}
	for _, key := range keys {
		name := strings.TrimPrefix(key, accountStoragePrefix)
		if name == except {
			continue
		}
		acct, err := readAccount(ctx, s, name)
		if err != nil {
			return "", err
		}
		if acct != nil && acct.holdsUsername(username) {
			return name, nil
		}
	}
	return "", nil
}

// releaseUsername removes username's entry unless another account claimed
// the user since.
func (t *accountTxn) releaseUsername(ctx context.Context, username string) {
	if err := t.lockUsername(ctx, username); err != nil {
		// A stale entry is ignored by the next claim.
		return
	}
	key := usernameKey(username)
	entry, err := t.s.Get(ctx, key)
	if err == nil && entry != nil {
		var ue usernameEntry
		if entry.DecodeJSON(&ue) == nil && ue.Account != t.name {
			return
		}
		err = t.s.Delete(ctx, key)
	}
	if err != nil {
		// A stale entry is ignored by the next claim.
		t.b.logger.Warn("could not remove a username index entry", "account", t.name, "error", err)
	}
}

// indexUsername writes username's entry for the account txn holds, unless
// another stored account manages the user too (stored before the check).
func (b *backend) indexUsername(ctx context.Context, txn *accountTxn, username string) error {
	if err := txn.lockUsername(ctx, username); err != nil {
		return err
	}
	key := usernameKey(username)
	entry, err := txn.s.Get(ctx, key)
	if err != nil {
		return err
	}
	claim := entry == nil
	if entry != nil {
		var ue usernameEntry
		if entry.DecodeJSON(&ue) != nil || ue.Account == "" {
			claim = true
		} else if ue.Account != txn.name {
			other, err := b.readAccountCached(ctx, txn.s, ue.Account)
			if err != nil {
				return err
			}
			if other == nil || !other.holdsUsername(username) {
				claim = true
			} else {
				b.logger.Warn("two accounts manage the same Salesforce user (stored before the username check); the index names the first",
					"account", txn.name, "index_names", ue.Account)
			}
		}
	}
	if !claim {
		return nil
	}
	ue, err := logical.StorageEntryJSON(key, usernameEntry{Account: txn.name})
	if err != nil {
		return err
	}
	return txn.s.Put(ctx, ue)
}
