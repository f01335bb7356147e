package salesforce

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// indexedBackend is a configured backend whose mount was initialized, as
// Vault does when it mounts the engine: its indexes are in use.
func indexedBackend(t *testing.T) (*backend, logical.Storage) {
	t.Helper()
	b, s, _, _ := fakeBackend(t)
	b.rot.tickInterval = time.Hour
	b.rot.wakeAtDue = false
	if err := b.Initialize(context.Background(), &logical.InitializationRequest{Storage: s}); err != nil {
		t.Fatal(err)
	}
	if !b.idx.built.Load() {
		t.Fatal("the indexes of a new mount are not marked built")
	}
	return b, s
}

func writeUnverified(t *testing.T, b *backend, s logical.Storage, name, username string, extra map[string]interface{}) {
	t.Helper()
	data := map[string]interface{}{"username": username, "password": "Pass-" + name + "-123", "verify": false}
	for k, v := range extra {
		data[k] = v
	}
	mustWrite(t, b, s, "accounts/"+name, data)
}

func storedKeys(t *testing.T, s logical.Storage, prefix string) []string {
	t.Helper()
	keys, err := logical.CollectKeysWithPrefix(context.Background(), s, prefix)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	return keys
}

// A create checks its username with one index read, whatever the number of
// stored accounts: the storage calls of the 2nd and the 60th create are
// the same, and no other account is read.
func TestUsernameIndexCreateIsConstantWork(t *testing.T) {
	b, s := indexedBackend(t)
	cs := newCountingStorage(s)
	writeUnverified(t, b, cs, "first", "first@fake.test", nil)
	cs.taken()
	writeUnverified(t, b, cs, "second", "second@fake.test", nil)
	early := cs.taken()
	for i := range 58 {
		writeUnverified(t, b, s, fmt.Sprintf("bulk-%02d", i), fmt.Sprintf("bulk-%02d@fake.test", i), nil)
	}
	writeUnverified(t, b, cs, "sixtieth", "sixtieth@fake.test", nil)
	late := cs.taken()
	if fmt.Sprint(early) != fmt.Sprint(late) {
		t.Errorf("storage calls of a create grew with the stored accounts: 2nd %v, 60th %v", early, late)
	}
	// Its own account is read twice (Vault's existence check, the write).
	if late["list accounts/"] != 0 || late["get accounts/"] > 2 {
		t.Errorf("a create listed or read other accounts: %v", late)
	}
}

// The username stays unique across case, across delete and re-create, and
// a username cannot change (so the index never goes stale by a rename).
func TestUsernameIndexCreateDeleteRename(t *testing.T) {
	b, s := indexedBackend(t)
	writeUnverified(t, b, s, "etl", "etl@fake.test", nil)
	if got := storedKeys(t, s, usernameIndexPrefix); len(got) != 1 || got[0] != "usernames/etl@fake.test" {
		t.Fatalf("username index = %v", got)
	}
	resp, err := request(t, b, s, logical.CreateOperation, "accounts/copy", map[string]interface{}{"username": "ETL@Fake.Test", "password": "x-Pass-1234", "verify": false})
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), `already managed by account "etl"`) {
		t.Fatalf("duplicate username (other case): %d %v", statusOf(resp, err), respErr(resp, err))
	}
	// Rename-proof: the username of an account cannot change.
	resp, err = request(t, b, s, logical.UpdateOperation, "accounts/etl", map[string]interface{}{"username": "new@fake.test", "verify": false})
	if statusOf(resp, err) != 400 {
		t.Fatalf("username change: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	if got := storedKeys(t, s, usernameIndexPrefix); len(got) != 1 || got[0] != "usernames/etl@fake.test" {
		t.Errorf("username index after a refused change = %v", got)
	}
	writeUnverified(t, b, s, "new", "new@fake.test", nil) // still free

	// Deleting the account frees the username.
	if resp, err := request(t, b, s, logical.DeleteOperation, "accounts/etl", nil); respErr(resp, err) != nil {
		t.Fatal(respErr(resp, err))
	}
	if got := storedKeys(t, s, usernameIndexPrefix); len(got) != 1 || got[0] != "usernames/new@fake.test" {
		t.Errorf("username index after the delete = %v", got)
	}
	writeUnverified(t, b, s, "copy", "ETL@fake.test", nil)
	e, _ := s.Get(context.Background(), "usernames/etl@fake.test")
	if e == nil || !strings.Contains(string(e.Value), `"copy"`) {
		t.Errorf("the freed username does not name its new account: %v", e)
	}
}

// An entry left by a crash between the index write and the account write
// (or the account delete and the index delete) names an account that is
// gone: it does not block the username.
func TestUsernameIndexStaleEntryIgnored(t *testing.T) {
	b, s := indexedBackend(t)
	ctx := context.Background()
	entry, _ := logical.StorageEntryJSON(usernameKey("ghost@fake.test"), usernameEntry{Account: "ghost"})
	if err := s.Put(ctx, entry); err != nil {
		t.Fatal(err)
	}
	writeUnverified(t, b, s, "real", "ghost@fake.test", nil)
	// An entry naming an account that manages another user is stale too.
	writeUnverified(t, b, s, "other", "other@fake.test", nil)
	entry, _ = logical.StorageEntryJSON(usernameKey("third@fake.test"), usernameEntry{Account: "other"})
	if err := s.Put(ctx, entry); err != nil {
		t.Fatal(err)
	}
	writeUnverified(t, b, s, "third", "third@fake.test", nil)
}

// Concurrent creates of one username under different names: exactly one
// is stored.
func TestUsernameIndexConcurrentCreates(t *testing.T) {
	b, s := indexedBackend(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := request(t, b, s, logical.CreateOperation, fmt.Sprintf("accounts/racer-%d", i),
				map[string]interface{}{"username": "race@fake.test", "password": "Race-Pass-1234", "verify": false})
			if respErr(resp, err) == nil {
				mu.Lock()
				stored++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if stored != 1 {
		t.Errorf("%d accounts manage race@fake.test, want 1", stored)
	}
	if n := len(storedKeys(t, s, accountStoragePrefix)); n != 1 {
		t.Errorf("%d accounts stored, want 1", n)
	}
}

// The schedule index holds each scheduled account's next rotation in one
// key, following creates, time changes, unscheduling and deletes;
// nested names included.
func TestScheduleIndexFollowsWrites(t *testing.T) {
	b, s := indexedBackend(t)
	clock := useFakeClock(b)
	clock.Set(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
	keyOf := func(name string, at time.Time) string { return scheduleKey(name, at.Unix()) }
	t0 := clock.Now()
	writeUnverified(t, b, s, "team-a/etl", "etl@fake.test", map[string]interface{}{"rotation_period": "24h"})
	writeUnverified(t, b, s, "manual", "manual@fake.test", nil)
	if got, want := storedKeys(t, s, scheduleIndexPrefix), []string{keyOf("team-a/etl", t0.Add(24*time.Hour))}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("schedule index = %v, want %v", got, want)
	}
	// An earlier and a later time each leave one key.
	earlier := t0.Add(2 * time.Hour)
	mustWrite(t, b, s, "accounts/team-a/etl", map[string]interface{}{"next_rotation": earlier.Format(time.RFC3339)})
	if got := storedKeys(t, s, scheduleIndexPrefix); fmt.Sprint(got) != fmt.Sprint([]string{keyOf("team-a/etl", earlier)}) {
		t.Errorf("after an earlier time: %v", got)
	}
	later := t0.Add(48 * time.Hour)
	mustWrite(t, b, s, "accounts/team-a/etl", map[string]interface{}{"next_rotation": later.Format(time.RFC3339)})
	if got := storedKeys(t, s, scheduleIndexPrefix); fmt.Sprint(got) != fmt.Sprint([]string{keyOf("team-a/etl", later)}) {
		t.Errorf("after a later time: %v", got)
	}
	mustWrite(t, b, s, "accounts/manual", map[string]interface{}{"rotation_period": "1h"})
	if got := storedKeys(t, s, scheduleIndexPrefix); len(got) != 2 {
		t.Errorf("after scheduling manual: %v", got)
	}
	mustWrite(t, b, s, "accounts/manual", map[string]interface{}{"disable_automated_rotation": true})
	if got := storedKeys(t, s, scheduleIndexPrefix); len(got) != 1 {
		t.Errorf("after unscheduling manual: %v", got)
	}
	if resp, err := request(t, b, s, logical.DeleteOperation, "accounts/team-a/etl", nil); respErr(resp, err) != nil {
		t.Fatal(respErr(resp, err))
	}
	if got := storedKeys(t, s, scheduleIndexPrefix); len(got) != 0 {
		t.Errorf("after the delete: %v", got)
	}
}

// A start rebuilds the queue from the schedule index alone: not one
// account is read, nested names are queued, and the first read is served.
func TestScheduleIndexStartReadsNoAccount(t *testing.T) {
	b, s := indexedBackend(t)
	for i := range 30 {
		name := fmt.Sprintf("acct-%02d", i)
		if i%3 == 0 {
			name = fmt.Sprintf("team-%d/acct-%02d", i%2, i)
		}
		period := map[string]interface{}{"rotation_period": fmt.Sprintf("%dh", 24+i)}
		if i == 29 {
			period = nil
		}
		writeUnverified(t, b, s, name, fmt.Sprintf("user-%02d@fake.test", i), period)
	}
	b.Cleanup(context.Background())

	restarted, _ := getTestBackend(t)
	newFakeClient().install(restarted)
	restarted.rot.tickInterval, restarted.rot.wakeAtDue = time.Hour, false
	cs := newCountingStorage(s)
	if err := restarted.Initialize(context.Background(), &logical.InitializationRequest{Storage: cs}); err != nil {
		t.Fatal(err)
	}
	calls := cs.taken()
	if calls["get accounts/"] != 0 || calls["list accounts/"] != 0 {
		t.Errorf("the start read accounts: %v", calls)
	}
	restarted.rot.mu.Lock()
	queued := restarted.rot.queue.Len()
	nested, err := restarted.rot.queue.PopByKey("team-1/acct-03")
	restarted.rot.mu.Unlock()
	if queued != 29 || err != nil || nested == nil {
		t.Errorf("queue holds %d accounts (want 29), nested team-1/acct-03: %v %v", queued, nested, err)
	}
	mustRead(t, restarted, s, "creds/team-0/acct-00")
}

// A crash between an account write and its index update leaves a key
// earlier than the account's time (never a later or a missing one): the
// scheduler wakes early, reads the account, and repairs the index; extra
// keys found at a start are removed.
func TestScheduleIndexRepairedAfterCrash(t *testing.T) {
	b, s := indexedBackend(t)
	clock := useFakeClock(b)
	t0 := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	clock.Set(t0)
	writeUnverified(t, b, s, "etl", "etl@fake.test", map[string]interface{}{"rotation_period": "24h"})
	ctx := context.Background()
	truth := t0.Add(24 * time.Hour).Unix()
	stale := t0.Add(time.Hour).Unix()
	older := t0.Add(2 * time.Hour).Unix()
	for _, at := range []int64{stale, older} {
		if err := s.Put(ctx, &logical.StorageEntry{Key: scheduleKey("etl", at), Value: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	b.Cleanup(ctx)

	restarted, _ := getTestBackend(t)
	newFakeClient().install(restarted)
	restarted.rot.tickInterval, restarted.rot.wakeAtDue = time.Hour, false
	restarted.clock = clock.Now
	if err := restarted.Initialize(ctx, &logical.InitializationRequest{Storage: s}); err != nil {
		t.Fatal(err)
	}
	restarted.rot.mu.Lock()
	item, _ := restarted.rot.queue.PopByKey("etl")
	_ = restarted.rot.queue.Push(item)
	restarted.rot.mu.Unlock()
	if item == nil || item.Priority != stale {
		t.Fatalf("queued at %v, want the earliest key %d", item, stale)
	}
	// The duplicates other than the account's own time go in the
	// background; the earliest stays until the scheduler reads the account.
	want := fmt.Sprint([]string{scheduleKey("etl", stale), scheduleKey("etl", truth)})
	waitFor(t, func() bool { return fmt.Sprint(storedKeys(t, s, scheduleIndexPrefix)) == want })
	clock.Set(time.Unix(stale, 0))
	restarted.processDueRotations(ctx)
	if got := storedKeys(t, s, scheduleIndexPrefix); fmt.Sprint(got) != fmt.Sprint([]string{scheduleKey("etl", truth)}) {
		t.Errorf("after the early wake: %v, want only the account's own time", got)
	}
	restarted.rot.mu.Lock()
	item, _ = restarted.rot.queue.PopByKey("etl")
	restarted.rot.mu.Unlock()
	if item == nil || item.Priority != truth {
		t.Errorf("requeued at %v, want %d", item, truth)
	}
	if v := mustRead(t, restarted, s, "accounts/etl")["version"]; v != 0 {
		t.Errorf("the early wake rotated the account (version %v)", v)
	}
}

// A store written before the indexes existed gets them once, in the
// background after the start: the queue fills (nested names included),
// and creates wait for it, then check usernames through the index.
func TestIndexesBuiltOnceForOlderStore(t *testing.T) {
	b, s, _, _ := fakeBackend(t)
	ctx := context.Background()
	next := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	for i, name := range []string{"old-1", "team/old-2", "team/deep/old-3", "unscheduled"} {
		a := &account{Username: fmt.Sprintf("old-%d@fake.test", i), Password: "Old-Pass-1234"}
		if name != "unscheduled" {
			a.RotationPeriod = 24 * time.Hour
			a.NextVaultRotation = next
		}
		entry, _ := logical.StorageEntryJSON(accountStoragePrefix+name, a)
		if err := s.Put(ctx, entry); err != nil {
			t.Fatal(err)
		}
	}
	b.rot.tickInterval, b.rot.wakeAtDue = time.Hour, false
	if err := b.Initialize(ctx, &logical.InitializationRequest{Storage: s}); err != nil {
		t.Fatal(err)
	}
	// The create waits for the build, then finds the username taken.
	resp, err := request(t, b, s, logical.CreateOperation, "accounts/dup", map[string]interface{}{"username": "OLD-2@fake.test", "password": "Dup-Pass-1234", "verify": false})
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), `"team/deep/old-3"`) {
		t.Fatalf("create of a taken username: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	if built, err := readIndexMeta(ctx, s); !built || err != nil {
		t.Fatalf("index-meta after the build: %v %v", built, err)
	}
	if got := storedKeys(t, s, usernameIndexPrefix); len(got) != 4 {
		t.Errorf("username index = %v", got)
	}
	if got := storedKeys(t, s, scheduleIndexPrefix); len(got) != 3 {
		t.Errorf("schedule index = %v", got)
	}
	b.rot.mu.Lock()
	queued := b.rot.queue.Len()
	b.rot.mu.Unlock()
	if queued != 3 {
		t.Errorf("queue holds %d accounts, want 3", queued)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Each account has a lock of its own: a rotation holding one account (for
// its whole run, Salesforce calls included) never holds up another, even
// one whose name a striped lock would put beside it.
func TestAccountLocksAreAccountsOwn(t *testing.T) {
	b, s := getTestBackend(t)
	first := "acct-0"
	other := ""
	for i := 1; other == ""; i++ {
		if name := fmt.Sprintf("acct-%d", i); locksutil.LockIndexForKey(name) == locksutil.LockIndexForKey(first) {
			other = name
		}
	}
	held := b.lockAccount(s, first)
	got := make(chan *accountTxn)
	go func() { got <- b.lockAccount(s, other) }()
	select {
	case txn := <-got:
		txn.unlock()
	case <-time.After(5 * time.Second):
		t.Fatalf("locking %s waited for %s", other, first)
	}
	// The same account waits, and gets the lock once it is released.
	go func() { got <- b.lockAccount(s, first) }()
	select {
	case <-got:
		t.Fatal("two transactions held one account at once")
	case <-time.After(50 * time.Millisecond):
	}
	held.unlock()
	(<-got).unlock()
	b.accountLocks.mu.Lock()
	left := len(b.accountLocks.locks)
	b.accountLocks.mu.Unlock()
	if left != 0 {
		t.Errorf("%d account locks kept after every transaction ended", left)
	}
}

// Both users of a dual account are in the username index: neither can be
// stored again, and a secondary user let go is free again.
func TestUsernameIndexCoversSecondaryUsers(t *testing.T) {
	b, s := indexedBackend(t)
	dual := func(secondary string) map[string]interface{} {
		return map[string]interface{}{"rotation_strategy": strategyDual, "secondary_username": secondary, "secondary_password": "Second-Pass-123"}
	}
	writeUnverified(t, b, s, "pair", "blue@fake.test", dual("green@fake.test"))
	if got := storedKeys(t, s, usernameIndexPrefix); fmt.Sprint(got) != "[usernames/blue@fake.test usernames/green@fake.test]" {
		t.Fatalf("username index = %v", got)
	}
	refused := func(what string, data map[string]interface{}) {
		t.Helper()
		resp, err := request(t, b, s, logical.CreateOperation, "accounts/copy", data)
		if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), `already managed by account "pair"`) {
			t.Errorf("%s: %d %v", what, statusOf(resp, err), respErr(resp, err))
		}
	}
	refused("the secondary user as username", map[string]interface{}{"username": "Green@Fake.Test", "password": "x-Pass-1234", "verify": false})
	other := dual("blue@fake.test")
	other["username"], other["password"], other["verify"] = "other@fake.test", "x-Pass-1234", false
	refused("the primary user as another's secondary", other)

	// A new secondary user: the old one is free, the new one taken.
	mustWrite(t, b, s, "accounts/pair", map[string]interface{}{"secondary_username": "teal@fake.test", "secondary_password": "Teal-Pass-123", "verify": false})
	waitFor(t, func() bool {
		return fmt.Sprint(storedKeys(t, s, usernameIndexPrefix)) == "[usernames/blue@fake.test usernames/teal@fake.test]"
	})
	writeUnverified(t, b, s, "green", "green@fake.test", nil)

	// Back to one user: the secondary's entry goes.
	mustWrite(t, b, s, "accounts/pair", map[string]interface{}{"rotation_strategy": strategySingle, "verify": false})
	waitFor(t, func() bool {
		return fmt.Sprint(storedKeys(t, s, usernameIndexPrefix)) == "[usernames/blue@fake.test usernames/green@fake.test]"
	})
	writeUnverified(t, b, s, "teal", "teal@fake.test", nil)
}
