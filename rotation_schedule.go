package salesforce

import (
	"context"
	"crypto/x509"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/queue"
	"golang.org/x/sync/errgroup"
)

// defaultTickInterval is how often the queue is checked for due rotations.
const defaultTickInterval = 5 * time.Second

// rotationState is the backend's rotation machinery: the queue of
// scheduled rotations and the background goroutines (ticker, webhooks).
type rotationState struct {
	mu sync.Mutex
	// queue orders accounts by their next rotation (unix seconds); nil
	// while this node does not run scheduled rotations.
	queue   *queue.PriorityQueue
	storage logical.Storage
	cancel  context.CancelFunc
	// bgCtx lives until clean(); webhooks and the ticker use it.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	wg       sync.WaitGroup

	// eventsOnce decides eventsOK: whether the server takes plugin events.
	eventsOnce sync.Once
	eventsOK   bool

	// nextStart spaces rotation starts to honour requests_per_minute.
	startMu   sync.Mutex
	nextStart time.Time

	tickInterval time.Duration
	// wake tells the scheduler that the queue changed; wakeAtDue lets it
	// wake when the earliest account is due (tests that move a fake clock
	// turn it off and tick themselves).
	wake              chan struct{}
	wakeAtDue         bool
	webhookRetryDelay time.Duration
	// settleMu lets one settling pass run at a time (rotation_settle.go);
	// nextSettle is when the entries the last pass kept are due again, and
	// settled is closed when the pass started by Initialize ends.
	settleMu   sync.Mutex
	nextSettle time.Time
	settled    chan struct{}
	// settleErrs holds why the last pass kept each account's entries.
	settleErrs map[string]settleAttempt
	// unfinished are accounts with work left after a password change
	// (rotation_dual.go): ending old sessions, a dual account's switch.
	unfinished map[string]bool

	// webhookRootCAs and webhookResolver, when set (tests), replace the
	// system roots and resolver of webhook deliveries (webhook.go).
	webhookRootCAs  *x509.CertPool
	webhookResolver *net.Resolver
	// testStep, when set, runs between the steps of a rotation; an error
	// simulates a crash at that point.
	testStep func(step string) error
}

func newRotationState() *rotationState {
	ctx, cancel := context.WithCancel(context.Background())
	return &rotationState{
		bgCtx:             ctx,
		bgCancel:          cancel,
		tickInterval:      defaultTickInterval,
		wake:              make(chan struct{}, 1),
		wakeAtDue:         true,
		webhookRetryDelay: 2 * time.Second,
	}
}

// runsScheduledRotations reports whether this node should drive the
// queue: the active node of a primary cluster, or the active node of a
// performance secondary for a local mount (whose storage is its own).
// Performance standbys and DR secondaries cannot write storage, whatever
// the mount.
func (b *backend) runsScheduledRotations() bool {
	sys := b.System()
	if sys == nil {
		return false
	}
	state := sys.ReplicationState()
	if state.HasState(consts.ReplicationPerformanceStandby | consts.ReplicationDRSecondary) {
		return false
	}
	if sys.LocalMount() {
		return true
	}
	return !state.HasState(consts.ReplicationPerformanceSecondary)
}

// initializeRotation is the backend's InitializeFunc. Vault calls it on the
// node that becomes active (also after a failover), so the queue is rebuilt
// from storage every time: nothing depends on a previous node's memory. It
// never waits for Salesforce: unfinished rotations are settled in the
// background once the queue is up, and reads of their accounts say so.
func (b *backend) initializeRotation(ctx context.Context, req *logical.InitializationRequest) error {
	if !b.runsScheduledRotations() {
		return nil
	}
	b.stopRotation()
	// Another node may have counted logins (and died with some in flight)
	// since this one last did.
	b.budget.reload()
	// The queue comes from the schedule index (account_index.go): one
	// listing, never a read of every account. A mount stored by an older
	// version gets its indexes in the background, which queues the
	// accounts as it reads them.
	q := queue.New()
	built, err := b.indexesBuilt(ctx, req.Storage)
	if err == nil && !built {
		built, err = b.markIndexesOfEmptyMount(ctx, req.Storage)
	}
	if err != nil {
		return err
	}
	due, extra, err := loadScheduleIndex(ctx, req.Storage)
	if err != nil {
		return err
	}
	for name, at := range due {
		_ = q.Push(&queue.Item{Key: name, Priority: at})
	}
	if built {
		// Work left after a password change (a dual account's switch,
		// ending old sessions) is finished by the settling pass below.
		unfinished, err := listKeysBelow(ctx, req.Storage, unfinishedIndexPrefix)
		if err != nil {
			return err
		}
		for _, key := range unfinished {
			b.markUnfinished(strings.TrimPrefix(key, unfinishedIndexPrefix), b.now())
		}
	}
	tickCtx, cancel := context.WithCancel(b.rot.bgCtx)
	b.rot.mu.Lock()
	b.rot.queue = q
	b.rot.storage = req.Storage
	b.rot.cancel = cancel
	b.rot.mu.Unlock()
	if err := b.walIdx.rebuild(ctx, req.Storage); err != nil {
		b.logger.Warn("could not read the rotation WAL; reads read it until it can be", "error", err)
	}
	if built {
		b.logger.Info("rotation queue initialized", "scheduled_accounts", q.Len())
		b.dropScheduleKeys(tickCtx, req.Storage, extra)
	} else {
		done := make(chan struct{})
		b.idx.mu.Lock()
		b.idx.building = done
		b.idx.mu.Unlock()
		b.logger.Info("building the account indexes of this mount (once, after an upgrade); the rotation queue fills as accounts are read")
		b.rot.wg.Add(1)
		go func() {
			defer b.rot.wg.Done()
			b.buildIndexes(tickCtx, req.Storage, done)
		}()
	}
	if waiting := b.walIdx.accounts(); len(waiting) > 0 {
		b.logger.Warn("accounts awaiting the settling of an interrupted rotation (their reads say so until it is done)", "accounts", waiting)
	}
	b.startSettling(tickCtx, req.Storage)

	b.rot.wg.Add(1)
	go func() {
		defer b.rot.wg.Done()
		b.runScheduler(tickCtx)
	}()
	return nil
}

// runScheduler drives the queue until ctx ends: when the earliest account
// is due (and when the settling of kept WAL entries is), and every
// tickInterval in any case. A change of the queue wakes it to look again.
func (b *backend) runScheduler(ctx context.Context) {
	tick := time.NewTicker(b.rot.tickInterval)
	defer tick.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var due <-chan time.Time
		if d, ok := b.untilNextDue(); ok && b.rot.wakeAtDue {
			timer.Reset(d)
			due = timer.C
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-b.rot.wake:
			timer.Stop()
			continue
		case <-tick.C:
		case <-due:
		}
		timer.Stop()
		b.processDueRotations(ctx)
	}
}

// untilNextDue is how long until the earliest queued account, or the next
// settling pass, is due; ok is false when nothing is waiting.
func (b *backend) untilNextDue() (time.Duration, bool) {
	b.rot.mu.Lock()
	defer b.rot.mu.Unlock()
	var next time.Time
	if b.rot.queue != nil && b.rot.queue.Len() > 0 {
		if item, err := b.rot.queue.Pop(); err == nil {
			_ = b.rot.queue.Push(item)
			next = time.Unix(item.Priority, 0)
		}
	}
	if !b.rot.nextSettle.IsZero() && (next.IsZero() || b.rot.nextSettle.Before(next)) {
		next = b.rot.nextSettle
	}
	if next.IsZero() {
		return 0, false
	}
	return max(next.Sub(b.now()), 0), true
}

// wakeScheduler makes the scheduler look at the queue again.
func (b *backend) wakeScheduler() {
	select {
	case b.rot.wake <- struct{}{}:
	default:
	}
}

// stopRotation stops the ticker (not webhooks in flight).
func (b *backend) stopRotation() {
	b.rot.mu.Lock()
	if b.rot.cancel != nil {
		b.rot.cancel()
		b.rot.cancel = nil
	}
	b.rot.queue = nil
	b.rot.mu.Unlock()
}

// cleanRotation stops every goroutine of the rotation machinery; clean()
// calls it when the mount is unloaded.
func (b *backend) cleanRotation() {
	b.stopRotation()
	b.rot.bgCancel()
	b.rot.wg.Wait()
}

// scheduleAccount (re)queues an account at its next rotation; nil (a
// deleted account) or an unscheduled one leaves the queue.
func (b *backend) scheduleAccount(name string, acct *account) {
	b.rot.mu.Lock()
	defer b.rot.mu.Unlock()
	if b.rot.queue == nil {
		return
	}
	_, _ = b.rot.queue.PopByKey(name)
	if at := schedTime(acct); at != 0 {
		_ = b.rot.queue.Push(&queue.Item{Key: name, Priority: at})
		b.wakeScheduler()
	}
}

// dueItem is an account popped from the queue, with the time it was queued
// at (from the schedule index after a start).
type dueItem struct {
	name   string
	queued int64
}

// popDue removes and returns the accounts whose priority is due at now.
func (b *backend) popDue(now time.Time) []dueItem {
	b.rot.mu.Lock()
	defer b.rot.mu.Unlock()
	if b.rot.queue == nil {
		return nil
	}
	var due []dueItem
	for b.rot.queue.Len() > 0 {
		item, err := b.rot.queue.Pop()
		if err != nil {
			break
		}
		if item.Priority > now.Unix() {
			_ = b.rot.queue.Push(item)
			break
		}
		due = append(due, dueItem{name: item.Key, queued: item.Priority})
	}
	return due
}

// processDueRotations settles the unfinished rotations that are due again,
// then runs the rotations that are due, at most max_concurrent_rotations at
// a time and no faster than requests_per_minute.
func (b *backend) processDueRotations(ctx context.Context) {
	b.rot.mu.Lock()
	s := b.rot.storage
	b.rot.mu.Unlock()
	if s == nil {
		return
	}
	b.settleDueWALs(ctx, s)
	due := b.popDue(b.now())
	if len(due) == 0 {
		return
	}
	rcfg, err := b.readRotationConfigCached(ctx, s)
	if err != nil {
		b.logger.Error("reading rotation config", "error", err)
		rcfg = defaultRotationConfig()
	}
	var g errgroup.Group
	g.SetLimit(rcfg.MaxConcurrentRotations)
	for _, item := range due {
		if err := b.waitForRequestSlot(ctx, rcfg.RequestsPerMinute); err != nil {
			// Shutting down: put the rest back for the next active node.
			b.requeueStored(context.Background(), s, item.name)
			continue
		}
		g.Go(func() error {
			b.runScheduledRotation(ctx, s, item)
			return nil
		})
	}
	_ = g.Wait()
}

// waitForRequestSlot spaces rotation starts by a minute / rpm.
func (b *backend) waitForRequestSlot(ctx context.Context, rpm int) error {
	// Real time: the rate protects the org, whatever the test clock says.
	now := time.Now()
	wait := b.reserveStart(now, rpm).Sub(now)
	if wait <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}

// reserveStart books the next start slot at or after now and returns it.
func (b *backend) reserveStart(now time.Time, rpm int) time.Time {
	b.rot.startMu.Lock()
	defer b.rot.startMu.Unlock()
	start := b.rot.nextStart
	if start.Before(now) {
		start = now
	}
	b.rot.nextStart = start.Add(time.Minute / time.Duration(rpm))
	return start
}

// requeueStored puts an account back in the queue at its stored time.
func (b *backend) requeueStored(ctx context.Context, s logical.Storage, name string) {
	acct, err := b.readAccountCached(ctx, s, name)
	if err != nil {
		b.logger.Error("reading account to requeue", "account", name, "error", err)
		return
	}
	b.scheduleAccount(name, acct)
}

// runScheduledRotation rotates one account popped from the queue, after
// checking against storage that it is still due. Whatever happens, the
// account goes back in the queue at its new stored time: a failing account
// is shown as failing, never dropped.
func (b *backend) runScheduledRotation(ctx context.Context, s logical.Storage, item dueItem) {
	name := item.name
	defer b.requeueStored(context.Background(), s, name)
	if !b.scheduledRotationDue(ctx, s, name, item.queued) {
		return
	}
	if _, err := b.rotateAccount(ctx, s, name, triggerScheduled, false); err != nil {
		b.logger.Warn("scheduled rotation failed", "account", name, "error", err)
	}
}

// scheduledRotationDue reports whether the stored account is due now. An
// account blocked on an operator, or past its rotation window, is not: its
// next time is moved on and stored instead. queued is the time the queue
// had it at; a schedule index key that disagrees with the account is
// repaired here.
func (b *backend) scheduledRotationDue(ctx context.Context, s logical.Storage, name string, queued int64) bool {
	txn := b.lockAccount(s, name)
	defer txn.unlock()
	acct, err := txn.get(ctx)
	if err != nil {
		return false
	}
	txn.repairSchedule(ctx, acct, queued)
	if acct == nil || !acct.scheduled() || acct.NextVaultRotation.IsZero() {
		return false
	}
	now := b.now()
	if acct.NextVaultRotation.After(now) {
		return false
	}
	if acct.RotationBlocked != "" {
		// Retrying cannot fix it and would cost logins: wait for an operator.
		rcfg, err := readRotationConfig(ctx, s)
		if err != nil {
			rcfg = defaultRotationConfig()
		}
		acct.NextVaultRotation = now.Add(rcfg.backoff(acct.ConsecutiveFailures)).Truncate(time.Second)
		if err := txn.put(ctx, acct); err != nil {
			b.logger.Error("storing account", "account", name, "error", err)
		}
		return false
	}
	if b.missedWindow(acct, now) {
		if acct.WindowEnd.IsZero() {
			acct.MissedRotationAt = acct.NextVaultRotation
		} else {
			acct.MissedRotationAt = acct.WindowEnd.Add(-acct.RotationWindow)
		}
		acct.WindowEnd = time.Time{}
		acct.NextVaultRotation = nextRotation(acct, now)
		if err := txn.put(ctx, acct); err != nil {
			b.logger.Error("storing account", "account", name, "error", err)
		}
		b.logger.Warn("scheduled rotation missed its window; waiting for the next scheduled time", "account", name)
		return false
	}
	return true
}

// missedWindow reports whether a scheduled account's rotation window has
// passed (only rotation_schedule with rotation_window has one).
func (b *backend) missedWindow(acct *account, now time.Time) bool {
	if acct.RotationSchedule == "" || acct.RotationWindow == 0 {
		return false
	}
	end := acct.NextVaultRotation.Add(acct.RotationWindow)
	if !acct.WindowEnd.IsZero() {
		// A retry after a failure: the window of the scheduled time.
		end = acct.WindowEnd
	}
	return !now.Before(end)
}
