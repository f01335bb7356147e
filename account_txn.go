package salesforce

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// The one writer of accounts: accountTxn, the read-modify-write under an
// account's own lock that every change of a stored account goes through, and
// the locks themselves. Its put and delete are the only code that changes
// accounts/ in storage, the decoded accounts in memory and the indexes
// (account_index.go).

// readAccountCached is readAccount through the backend's decoded
// accounts in memory (entry_cache.go); what it returns is the caller's.
func (b *backend) readAccountCached(ctx context.Context, s logical.Storage, name string) (*account, error) {
	return b.cache.accounts.get(name, func() (*account, error) { return readAccount(ctx, s, name) })
}

// accountTxn is the one way to change a stored account: a read-modify-write
// under the account's lock. Every writer of accounts/<name> (account and
// security-token writes, rotation, WAL settling, the scheduler's bookkeeping,
// deletes) holds one, so no writer can store a copy it read before another
// writer's change. Nothing else writes accounts: put and delete below are
// the only code that changes accounts/ in storage, and with it the decoded
// account in memory and the account's entries in the username and schedule
// indexes (account_index.go).
type accountTxn struct {
	b    *backend
	s    logical.Storage
	name string
	lock *accountLock
	held bool
	// prev is the account as stored when the transaction last read or
	// wrote it (nil: none stored); loaded says whether it was read.
	prev   *account
	loaded bool
	// userLocks are the locks of the usernames this transaction claims or
	// releases (account_index.go); held until unlock.
	userLocks []*locksutil.LockEntry
	// later is closed when the last step given to afterward has run.
	later chan struct{}
	// user, when set, names the user of a dual account that get puts in
	// the flat fields (account_dual.go); put stores any view swapped back.
	user string
}

// lockAccount takes the account's lock and returns the transaction that
// reads and writes it; the caller must unlock it.
func (b *backend) lockAccount(s logical.Storage, name string) *accountTxn {
	return &accountTxn{b: b, s: s, name: name, lock: b.accountLocks.lock(name), held: true}
}

// unlock ends the transaction, once the steps given to afterward have run;
// later puts fail.
func (t *accountTxn) unlock() {
	t.waitLater()
	for _, l := range t.userLocks {
		l.Unlock()
	}
	t.userLocks = nil
	if t.held {
		t.held = false
		t.b.accountLocks.unlock(t.name, t.lock)
	}
}

// get reads the account as stored now (nil when none is stored), as the
// view of t.user when set. Under the lock the decoded copy in memory is what
// storage holds: only this transaction's put and delete change either.
func (t *accountTxn) get(ctx context.Context) (*account, error) {
	a, err := t.b.readAccountCached(ctx, t.s, t.name)
	if err != nil {
		return nil, err
	}
	t.prev, t.loaded = nil, true
	if a == nil {
		return nil, nil
	}
	t.prev = a.clone()
	if t.user == "" {
		return a, nil
	}
	return a.viewOf(t.user), nil
}

// asUser makes later gets return the view of username ("" for the account
// as stored) and returns the previous setting.
func (t *accountTxn) asUser(username string) string {
	prev := t.user
	t.user = username
	return prev
}

// put stores a, which the caller read with get under this transaction.
func (t *accountTxn) put(ctx context.Context, a *account) error {
	if !t.held {
		return fmt.Errorf("writing account %q outside its lock", t.name)
	}
	if !t.loaded {
		if _, err := t.get(ctx); err != nil {
			return err
		}
	}
	a = a.stored()
	entry, err := logical.StorageEntryJSON(accountStoragePrefix+t.name, a)
	if err != nil {
		return fmt.Errorf("encoding account %q: %w", t.name, err)
	}
	// Index entries that must not lag behind the account are written
	// first: a new account's username, an earlier scheduled time. The
	// bookkeeping of an earlier put of this transaction comes before them.
	t.waitLater()
	after, err := t.indexBeforePut(ctx, a)
	if err != nil {
		return err
	}
	if err := t.s.Put(ctx, entry); err != nil {
		// Storage may or may not hold it now: read it afresh next time.
		t.b.cache.accounts.drop(t.name)
		t.loaded = false
		return fmt.Errorf("writing account %q: %w", t.name, err)
	}
	t.b.cache.accounts.set(t.name, a)
	if after != nil {
		t.afterward(ctx, after)
	}
	t.prev = a.clone()
	return nil
}

// afterward runs fn off the caller's path, after the steps given to it
// before, and before the lock is released: the bookkeeping that follows a
// stored account (old index keys, a settled WAL entry) overlaps with what
// the holder does next, and the next holder of the lock sees it done.
func (t *accountTxn) afterward(ctx context.Context, fn func(context.Context)) {
	ctx = context.WithoutCancel(ctx)
	prev, done := t.later, make(chan struct{})
	t.later = done
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		fn(ctx)
	}()
}

// waitLater waits for the steps given to afterward.
func (t *accountTxn) waitLater() {
	if t.later != nil {
		<-t.later
		t.later = nil
	}
}

// delete removes the account.
func (t *accountTxn) delete(ctx context.Context) error {
	if !t.held {
		return fmt.Errorf("deleting account %q outside its lock", t.name)
	}
	if !t.loaded {
		if _, err := t.get(ctx); err != nil {
			return err
		}
	}
	t.waitLater()
	if err := t.s.Delete(ctx, accountStoragePrefix+t.name); err != nil {
		t.b.cache.accounts.drop(t.name)
		t.loaded = false
		return fmt.Errorf("deleting account %q: %w", t.name, err)
	}
	t.b.cache.accounts.drop(t.name)
	t.indexAfterDelete(ctx)
	t.prev = nil
	return nil
}

// accountLocks holds one lock per account name while anyone holds or waits
// for it. A rotation holds its account's lock for its whole run (its
// Salesforce calls included): a striped lock would make accounts that hash
// to one stripe wait for each other.
type accountLocks struct {
	mu    sync.Mutex
	locks map[string]*accountLock
}

type accountLock struct {
	sync.Mutex
	// refs counts the holders and waiters; guarded by accountLocks.mu.
	refs int
}

func newAccountLocks() *accountLocks {
	return &accountLocks{locks: map[string]*accountLock{}}
}

func (l *accountLocks) lock(name string) *accountLock {
	l.mu.Lock()
	al := l.locks[name]
	if al == nil {
		al = &accountLock{}
		l.locks[name] = al
	}
	al.refs++
	l.mu.Unlock()
	al.Lock()
	return al
}

func (l *accountLocks) unlock(name string, al *accountLock) {
	al.Unlock()
	l.mu.Lock()
	if al.refs--; al.refs == 0 {
		delete(l.locks, name)
	}
	l.mu.Unlock()
}
