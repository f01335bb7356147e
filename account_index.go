package salesforce

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
) // Two indexes kept beside the accounts, so that neither an account write
// nor a mount start reads every stored account:
//
//	usernames/<username>        the account that manages a Salesforce user
//	                            (lower case, path-escaped): a new account's
//	                            username is checked with one read
//	schedule/<name>:<unix>      an account's next scheduled rotation, in
//	                            the key itself: the rotation queue is
//	                            rebuilt from one listing, whatever N
//	unfinished/<name>           an account with work left after a password
//	                            change (a dual account's switch, ending
//	                            old sessions), finished after a start
//
// Both are written only by the account transaction (account.go), under the
// account's lock, in an order that keeps them safe across a crash at any
// step:
//
//   - a username entry (one per user of a dual account) is written before
//     the account names the user and deleted after it no longer does; an
//     entry whose account is gone or manages other users is stale and
//     ignored (and overwritten by the next claim);
//   - an unfinished entry is written before the account that has the work
//     and deleted after it; a stale one only has a start look for work
//     that is done;
//   - a schedule key never says later than the account: a new or earlier
//     time is written before the account, a later one after it, and the old
//     key is deleted last. A key earlier than the account's time only wakes
//     the scheduler early: it reads the account, which is the truth, and
//     repairs the key (repairSchedule).
//
// index-meta says that every stored account has its entries. A mount
// without it (created by an older version) gets them once, in the
// background after the start (buildIndexes); until then account creates
// wait for it, and the queue is rebuilt as the build reads the accounts.

const (
	usernameIndexPrefix = "usernames/"
	scheduleIndexPrefix = "schedule/"
	// unfinished/<name>: the account has work left after a password
	// change (account_dual.go's unfinishedWork), to finish after a start.
	unfinishedIndexPrefix = "unfinished/"
	indexMetaPath         = "index-meta"
	indexVersion          = 1
)

// maxIndexWait bounds how long an account create waits for the indexes
// being built after an upgrade.
const maxIndexWait = 30 * time.Second

// indexMeta is stored at index-meta once every account has its entries.
type indexMeta struct {
	Version int       `json:"version"`
	BuiltAt time.Time `json:"built_at"`
}

// accountIndexes is the backend's view of the indexes.
type accountIndexes struct {
	// built: index-meta was seen (it is never removed).
	built atomic.Bool
	mu    sync.Mutex
	// building is closed when the build running in the background ends;
	// nil when none runs.
	building chan struct{}
	// locks serialise the claims of each username (lower case).
	locks []*locksutil.LockEntry
}

func newAccountIndexes() *accountIndexes {
	return &accountIndexes{locks: locksutil.CreateLocks()}
}

// schedTime is the time the schedule index holds for a (unix seconds; 0
// for none).
func schedTime(a *account) int64 {
	if a == nil || !a.scheduled() || a.NextVaultRotation.IsZero() {
		return 0
	}
	return a.NextVaultRotation.Unix()
}

func scheduleKey(name string, at int64) string {
	return scheduleIndexPrefix + name + ":" + strconv.FormatInt(at, 10)
}

// parseScheduleKey reads a key of schedule/ (without the prefix). ':' is
// not allowed in account names, so the last one starts the time.
func parseScheduleKey(key string) (string, int64, bool) {
	i := strings.LastIndexByte(key, ':')
	if i <= 0 {
		return "", 0, false
	}
	at, err := strconv.ParseInt(key[i+1:], 10, 64)
	if err != nil || at <= 0 {
		return "", 0, false
	}
	return key[:i], at, true
}

// indexesBuilt reports whether every stored account has its index
// entries. It waits for a build running in the background.
func (b *backend) indexesBuilt(ctx context.Context, s logical.Storage) (bool, error) {
	if b.idx.built.Load() {
		return true, nil
	}
	b.idx.mu.Lock()
	building := b.idx.building
	b.idx.mu.Unlock()
	if building != nil {
		timer := time.NewTimer(maxIndexWait)
		defer timer.Stop()
		select {
		case <-building:
		case <-ctx.Done():
			return false, ctx.Err()
		case <-timer.C:
			return false, logical.CodedError(http.StatusServiceUnavailable,
				"the account indexes of this mount are being built after an upgrade (once, in the background); try again shortly")
		}
		if b.idx.built.Load() {
			return true, nil
		}
	}
	built, err := readIndexMeta(ctx, s)
	if built {
		b.idx.built.Store(true)
	}
	return built, err
}

// markIndexesOfEmptyMount writes index-meta on a mount without accounts,
// whose indexes are complete; Initialize calls it. It reports whether it
// did.
func (b *backend) markIndexesOfEmptyMount(ctx context.Context, s logical.Storage) (bool, error) {
	keys, err := s.List(ctx, accountStoragePrefix)
	if err != nil {
		return false, fmt.Errorf("listing accounts: %w", err)
	}
	if len(keys) > 0 {
		return false, nil
	}
	if err := writeIndexMeta(ctx, s, b.now()); err != nil {
		return false, err
	}
	b.idx.built.Store(true)
	return true, nil
}

func readIndexMeta(ctx context.Context, s logical.Storage) (bool, error) {
	entry, err := s.Get(ctx, indexMetaPath)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", indexMetaPath, err)
	}
	if entry == nil {
		return false, nil
	}
	var m indexMeta
	if err := entry.DecodeJSON(&m); err != nil {
		return false, fmt.Errorf("decoding %s: %w", indexMetaPath, err)
	}
	return m.Version >= indexVersion, nil
}

func writeIndexMeta(ctx context.Context, s logical.Storage, now time.Time) error {
	entry, err := logical.StorageEntryJSON(indexMetaPath, indexMeta{Version: indexVersion, BuiltAt: now.UTC()})
	if err != nil {
		return err
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing %s: %w", indexMetaPath, err)
	}
	return nil
}

// indexBeforePut writes the index entries that must be stored before a
// (the account about to be stored) and returns what to do after it.
func (t *accountTxn) indexBeforePut(ctx context.Context, a *account) (func(context.Context), error) {
	var steps []func(context.Context)
	for _, u := range usernamesOf(a) {
		if t.prev != nil && t.prev.holdsUsername(u) {
			continue
		}
		if err := t.lockUsername(ctx, u); err != nil {
			return nil, err
		}
		entry, err := logical.StorageEntryJSON(usernameKey(u), usernameEntry{Account: t.name})
		if err != nil {
			return nil, err
		}
		if err := t.s.Put(ctx, entry); err != nil {
			return nil, fmt.Errorf("writing the username index: %w", err)
		}
	}
	for _, u := range usernamesOf(t.prev) {
		if !a.holdsUsername(u) {
			// A secondary user let go: its entry goes after the account
			// no longer names it.
			steps = append(steps, func(ctx context.Context) { t.releaseUsername(ctx, u) })
		}
	}
	wasUnfinished := t.prev != nil && t.prev.unfinishedWork()
	switch {
	case a.unfinishedWork() && !wasUnfinished:
		if err := t.s.Put(ctx, &logical.StorageEntry{Key: unfinishedIndexPrefix + t.name, Value: []byte("{}")}); err != nil {
			return nil, fmt.Errorf("writing the unfinished-work index: %w", err)
		}
	case wasUnfinished && !a.unfinishedWork():
		steps = append(steps, t.deleteUnfinishedKey)
	}
	step, err := t.scheduleBeforePut(ctx, a)
	if err != nil {
		return nil, err
	}
	if step != nil {
		steps = append(steps, step)
	}
	if len(steps) == 0 {
		return nil, nil
	}
	return func(ctx context.Context) {
		for _, step := range steps {
			step(ctx)
		}
	}, nil
}

// scheduleBeforePut writes the schedule key that must be stored before a
// and returns the step that follows it.
func (t *accountTxn) scheduleBeforePut(ctx context.Context, a *account) (func(context.Context), error) {
	old, next := schedTime(t.prev), schedTime(a)
	if old == next {
		return nil, nil
	}
	if next != 0 && (old == 0 || next < old) {
		if err := t.putScheduleKey(ctx, next); err != nil {
			return nil, err
		}
		return func(ctx context.Context) { t.deleteScheduleKey(ctx, old) }, nil
	}
	return func(ctx context.Context) {
		// A later time (or none): the old key, earlier, stays until the
		// new one is stored.
		if next != 0 {
			if err := t.putScheduleKey(ctx, next); err != nil {
				t.b.logger.Warn("could not update the schedule index; the scheduler checks the account at its old time", "account", t.name, "error", err)
				return
			}
		}
		t.deleteScheduleKey(ctx, old)
	}, nil
}

// indexAfterDelete removes the entries of the account just deleted.
func (t *accountTxn) indexAfterDelete(ctx context.Context) {
	prev := t.prev
	if prev == nil {
		return
	}
	t.deleteScheduleKey(ctx, schedTime(prev))
	if prev.unfinishedWork() {
		t.deleteUnfinishedKey(ctx)
	}
	for _, u := range usernamesOf(prev) {
		t.releaseUsername(ctx, u)
	}
}

// deleteUnfinishedKey removes the account's unfinished-work entry: a stale
// one only makes a start try to finish what is done.
func (t *accountTxn) deleteUnfinishedKey(ctx context.Context) {
	if err := t.s.Delete(ctx, unfinishedIndexPrefix+t.name); err != nil {
		t.b.logger.Warn("could not remove the account's unfinished-work index entry", "account", t.name, "error", err)
	}
}

func (t *accountTxn) putScheduleKey(ctx context.Context, at int64) error {
	if err := t.s.Put(ctx, &logical.StorageEntry{Key: scheduleKey(t.name, at), Value: []byte("{}")}); err != nil {
		return fmt.Errorf("writing the schedule index: %w", err)
	}
	return nil
}

func (t *accountTxn) deleteScheduleKey(ctx context.Context, at int64) {
	if at == 0 {
		return
	}
	if err := t.s.Delete(ctx, scheduleKey(t.name, at)); err != nil {
		// An extra, earlier key only wakes the scheduler early.
		t.b.logger.Warn("could not remove an old schedule index key", "account", t.name, "error", err)
	}
}

// repairSchedule makes the schedule index agree with acct (read under this
// transaction) when the queue had the account at indexed, read from the
// index: after a crash between an account write and its index update.
func (t *accountTxn) repairSchedule(ctx context.Context, acct *account, indexed int64) {
	truth := schedTime(acct)
	if indexed == 0 || indexed == truth {
		return
	}
	if truth != 0 {
		if err := t.putScheduleKey(ctx, truth); err != nil {
			t.b.logger.Warn("could not repair the schedule index", "account", t.name, "error", err)
			return
		}
	}
	t.deleteScheduleKey(ctx, indexed)
}

// loadScheduleIndex lists schedule/ and returns each account's earliest
// time, and the keys of later duplicates (left by a crash) to clean up.
func loadScheduleIndex(ctx context.Context, s logical.Storage) (map[string]int64, []string, error) {
	keys, err := listKeysBelow(ctx, s, scheduleIndexPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("listing the schedule index: %w", err)
	}
	due := make(map[string]int64, len(keys))
	var extra []string
	for _, key := range keys {
		name, at, ok := parseScheduleKey(strings.TrimPrefix(key, scheduleIndexPrefix))
		if !ok {
			extra = append(extra, key)
			continue
		}
		if prev, dup := due[name]; dup {
			keep, drop := min(prev, at), max(prev, at)
			due[name] = keep
			extra = append(extra, scheduleKey(name, drop))
			continue
		}
		due[name] = at
	}
	return due, extra, nil
}

// listKeysBelow lists every key below prefix, folders included, as full
// keys. (logical.CollectKeysWithPrefix walks the whole mount and filters.)
func listKeysBelow(ctx context.Context, s logical.Storage, prefix string) ([]string, error) {
	var keys []string
	folders := []string{prefix}
	for len(folders) > 0 {
		dir := folders[len(folders)-1]
		folders = folders[:len(folders)-1]
		entries, err := s.List(ctx, dir)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", dir, err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e, "/") {
				folders = append(folders, dir+e)
				continue
			}
			keys = append(keys, dir+e)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
