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

// The settling passes: at a start (in the background, never holding up the
// mount), and again when entries kept by the last pass are due. Each pass
// settles every account's unfinished rotations (rotation_settle.go) and
// finishes work left after a password change (rotation_dual.go).

// settleAllWALs settles every unfinished rotation. It returns when the
// entries it kept are due again (zero when none is kept). An account's
// entries are settled together under its lock, as its next rotation does.
func (b *backend) settleAllWALs(ctx context.Context, s logical.Storage) (time.Time, error) {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return b.now().Add(walRetryInterval), err
	}
	var merr error
	var next time.Time
	retryAt := func(err error) {
		at := b.now().Add(walRetryInterval)
		var young *errNotSettledYet
		if errors.As(err, &young) {
			at = young.at
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	accounts := map[string]bool{}
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			merr = errors.Join(merr, err)
			retryAt(err)
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
				retryAt(err)
			} else {
				b.deleteWAL(ctx, s, id)
			}
		}
	}
	for _, name := range sortedKeys(accounts) {
		if ctx.Err() != nil {
			return next, errors.Join(merr, ctx.Err())
		}
		txn := b.lockAccount(s, name)
		err := b.settleAccountWALs(ctx, txn)
		if err == nil {
			// A rolled-forward rotation's sessions and switch.
			_, err = b.finishPending(ctx, txn, triggerScheduled)
		}
		txn.unlock()
		b.noteSettleAttempt(name, err)
		// A rolled-forward rotation moved the account's next rotation.
		b.requeueStored(ctx, s, name)
		if err != nil {
			merr = errors.Join(merr, fmt.Errorf("account %q: %w", name, err))
			retryAt(err)
		}
	}
	// Work left after a password change (rotation_dual.go).
	if at, err := b.finishUnfinished(ctx, s, accounts); err != nil {
		merr = errors.Join(merr, err)
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, merr
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// startSettling settles the WAL entries in the background: the mount
// serves (and reads say which accounts are awaiting it) meanwhile.
func (b *backend) startSettling(ctx context.Context, s logical.Storage) {
	done := make(chan struct{})
	b.rot.mu.Lock()
	b.rot.settled = done
	b.rot.mu.Unlock()
	b.rot.wg.Add(1)
	b.idx.mu.Lock()
	building := b.idx.building
	b.idx.mu.Unlock()
	go func() {
		defer b.rot.wg.Done()
		defer close(done)
		if building != nil {
			// After an upgrade the index build is what finds the accounts
			// with work left after a password change: the first pass
			// finishes theirs too.
			select {
			case <-building:
			case <-ctx.Done():
				return
			}
		}
		b.settlePass(ctx, s)
	}()
}

// settleDueWALs runs a settling pass when entries kept by the last one are
// due; the ticker calls it. A pass already running is not doubled.
func (b *backend) settleDueWALs(ctx context.Context, s logical.Storage) {
	b.rot.mu.Lock()
	due := !b.rot.nextSettle.IsZero() && !b.now().Before(b.rot.nextSettle)
	b.rot.mu.Unlock()
	if due {
		b.settlePass(ctx, s)
	}
}

// settleLater makes the ticker run a settling pass at at (or earlier, if
// one is due earlier): a rotation left a WAL entry behind.
func (b *backend) settleLater(at time.Time) {
	b.rot.mu.Lock()
	defer b.rot.mu.Unlock()
	if b.rot.nextSettle.IsZero() || at.Before(b.rot.nextSettle) {
		b.rot.nextSettle = at
	}
}

func (b *backend) settlePass(ctx context.Context, s logical.Storage) {
	if !b.rot.settleMu.TryLock() {
		return
	}
	defer b.rot.settleMu.Unlock()
	next, err := b.settleAllWALs(ctx, s)
	if err != nil {
		b.logger.Warn("some rotation WALs could not be settled yet; they are retried", "next_try", next, "error", err)
	}
	b.rot.mu.Lock()
	b.rot.nextSettle = next
	b.rot.mu.Unlock()
}

// settleAttempt is the outcome of this node's last settling pass for an
// account, for the reason reads give.
type settleAttempt struct {
	at  time.Time
	err string
}

func (b *backend) noteSettleAttempt(name string, err error) {
	b.rot.mu.Lock()
	defer b.rot.mu.Unlock()
	if b.rot.settleErrs == nil {
		b.rot.settleErrs = map[string]settleAttempt{}
	}
	if err == nil {
		delete(b.rot.settleErrs, name)
		return
	}
	b.rot.settleErrs[name] = settleAttempt{at: b.now(), err: err.Error()}
}
