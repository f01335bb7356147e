package salesforce

import (
	"context"
	"crypto/sha256"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// walIndex knows, in memory, which accounts have rotation WAL entries, so
// that reads of creds/<name> and accounts/<name> say "pending
// reconciliation" without listing the WAL on every read. It is rebuilt from
// storage at Initialize and whenever it is marked stale (a wal/ key changed
// on another node, or Vault's WALRollback deleted an entry itself), and
// kept up to date where this node writes and deletes entries
// (putRotationWAL, deleteWAL).
type walIndex struct {
	mu sync.Mutex
	// loaded: byID is what storage holds. When false, the next use
	// rebuilds it.
	loaded bool
	// gen moves on every change; a rebuild that saw it move retries.
	gen  uint64
	byID map[string]walSummary
}

// walSummary is what reads need of a rotation WAL entry. The candidate is
// kept only as a hash, to tell whether the account already stores it.
type walSummary struct {
	account   string
	username  string
	candidate [32]byte
	createdAt time.Time
}

func summarize(w *rotationWAL) walSummary {
	return walSummary{account: w.Account, username: w.Username, candidate: sha256.Sum256([]byte(w.Candidate)), createdAt: w.CreatedAt}
}

// added records an entry this node wrote.
func (x *walIndex) added(id string, w *rotationWAL) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen++
	if x.loaded {
		x.byID[id] = summarize(w)
	}
}

// removed records an entry this node deleted.
func (x *walIndex) removed(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen++
	if x.loaded {
		delete(x.byID, id)
	}
}

// stale makes the next use rebuild the index from storage.
func (x *walIndex) stale() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen++
	x.loaded = false
	x.byID = nil
}

// rebuild reads the WAL from storage. It gives up (leaving the index to
// be rebuilt on next use) after a few tries that saw entries change.
func (x *walIndex) rebuild(ctx context.Context, s logical.Storage) error {
	for range 3 {
		x.mu.Lock()
		gen := x.gen
		x.mu.Unlock()
		ids, err := framework.ListWAL(ctx, s)
		if err != nil {
			return err
		}
		byID := make(map[string]walSummary)
		for _, id := range ids {
			entry, err := framework.GetWAL(ctx, s, id)
			if err != nil {
				return err
			}
			if entry == nil || entry.Kind != rotationWALKind {
				continue
			}
			if w, err := decodeRotationWAL(entry.Data); err == nil {
				byID[id] = summarize(w)
			}
		}
		x.mu.Lock()
		if x.gen == gen {
			x.byID, x.loaded = byID, true
			x.mu.Unlock()
			return nil
		}
		x.mu.Unlock()
	}
	return nil
}

// forAccount returns the IDs and summaries of the account's entries.
func (x *walIndex) forAccount(ctx context.Context, s logical.Storage, name string) (map[string]walSummary, error) {
	if err := x.ensure(ctx, s); err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.loaded {
		// Entries changed during every rebuild: read storage directly.
		return nil, errWALIndexBusy
	}
	var out map[string]walSummary
	for id, w := range x.byID {
		if w.account == name {
			if out == nil {
				out = map[string]walSummary{}
			}
			out[id] = w
		}
	}
	return out, nil
}

func (x *walIndex) ensure(ctx context.Context, s logical.Storage) error {
	x.mu.Lock()
	loaded := x.loaded
	x.mu.Unlock()
	if loaded {
		return nil
	}
	return x.rebuild(ctx, s)
}

// accounts lists the accounts with entries (as last loaded).
func (x *walIndex) accounts() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	names := map[string]bool{}
	for _, w := range x.byID {
		names[w.account] = true
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type walIndexBusyError struct{}

func (walIndexBusyError) Error() string { return "the rotation WAL kept changing while it was read" }

var errWALIndexBusy error = walIndexBusyError{}
