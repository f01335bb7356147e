package salesforce

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Building the indexes (account_index.go) once for a mount stored before
// they existed, in the background after its start, and the start's clean-up of
// schedule keys a crash left behind.

// buildIndexes gives every stored account its index entries and queues
// the scheduled ones: once per mount, in the background after a start
// that found no index-meta. Each account is read under its own
// transaction, so writes meanwhile are never undone.
func (b *backend) buildIndexes(ctx context.Context, s logical.Storage, done chan struct{}) {
	defer close(done)
	defer func() {
		b.idx.mu.Lock()
		b.idx.building = nil
		b.idx.mu.Unlock()
	}()
	start := time.Now()
	keys, err := listKeysBelow(ctx, s, accountStoragePrefix)
	if err != nil {
		b.logger.Error("building the account indexes: listing accounts failed; retried at the next start", "error", err)
		return
	}
	scheduled := 0
	for _, key := range keys {
		if ctx.Err() != nil {
			return
		}
		name := strings.TrimPrefix(key, accountStoragePrefix)
		txn := b.lockAccount(s, name)
		acct, err := b.indexAccount(ctx, txn)
		txn.unlock()
		if err != nil {
			b.logger.Error("building the account indexes failed; retried at the next start", "account", name, "error", err)
			return
		}
		if schedTime(acct) != 0 {
			scheduled++
		}
		b.scheduleAccount(name, acct)
		if acct != nil && acct.unfinishedWork() {
			b.markUnfinished(name, b.now())
		}
	}
	if err := writeIndexMeta(ctx, s, b.now()); err != nil {
		b.logger.Error("building the account indexes: could not store that they are built; retried at the next start", "error", err)
		return
	}
	b.idx.built.Store(true)
	if len(keys) == 0 {
		b.logger.Info("rotation queue initialized", "scheduled_accounts", 0)
		return
	}
	b.logger.Info("rotation queue initialized", "scheduled_accounts", scheduled, "accounts", len(keys),
		"note", "account indexes built once for this mount", "took", time.Since(start).Round(time.Millisecond).String())
}

// indexAccount writes the index entries of the account txn holds and
// returns it.
func (b *backend) indexAccount(ctx context.Context, txn *accountTxn) (*account, error) {
	acct, err := txn.get(ctx)
	if err != nil || acct == nil {
		return nil, err
	}
	for _, u := range usernamesOf(acct) {
		if err := b.indexUsername(ctx, txn, u); err != nil {
			return nil, err
		}
	}
	if acct.unfinishedWork() {
		if err := txn.s.Put(ctx, &logical.StorageEntry{Key: unfinishedIndexPrefix + txn.name, Value: []byte("{}")}); err != nil {
			return nil, err
		}
	}
	if at := schedTime(acct); at != 0 {
		if err := txn.putScheduleKey(ctx, at); err != nil {
			return nil, err
		}
	}
	return acct, nil
}

// dropScheduleKeys removes, in the background, the schedule keys a start
// found beside an account's earliest one (left by a crash between two
// steps of an index update). Each is checked against the account under its
// transaction: the key of the account's own time stays.
func (b *backend) dropScheduleKeys(ctx context.Context, s logical.Storage, keys []string) {
	if len(keys) == 0 {
		return
	}
	b.rot.wg.Add(1)
	go func() {
		defer b.rot.wg.Done()
		for _, key := range keys {
			if ctx.Err() != nil {
				return
			}
			name, at, ok := parseScheduleKey(strings.TrimPrefix(key, scheduleIndexPrefix))
			if !ok {
				if err := s.Delete(ctx, key); err != nil {
					b.logger.Warn("could not remove an unreadable schedule index key", "key", key, "error", err)
				}
				continue
			}
			txn := b.lockAccount(s, name)
			if acct, err := txn.get(ctx); err == nil && schedTime(acct) != at {
				txn.deleteScheduleKey(ctx, at)
			}
			txn.unlock()
		}
	}()
}
