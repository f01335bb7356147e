package salesforce

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// countingStorage counts the calls made through it, per operation and key
// prefix ("get accounts/", "put usernames/", ...).
type countingStorage struct {
	logical.Storage
	mu    sync.Mutex
	calls map[string]int
}

func newCountingStorage(s logical.Storage) *countingStorage {
	return &countingStorage{Storage: s, calls: map[string]int{}}
}

func (c *countingStorage) note(op, key string) {
	prefix, _, found := strings.Cut(key, "/")
	if found {
		prefix += "/"
	}
	c.mu.Lock()
	c.calls[op+" "+prefix]++
	c.mu.Unlock()
}

func (c *countingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	c.note("get", key)
	return c.Storage.Get(ctx, key)
}

func (c *countingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	c.note("put", e.Key)
	return c.Storage.Put(ctx, e)
}

func (c *countingStorage) Delete(ctx context.Context, key string) error {
	c.note("delete", key)
	return c.Storage.Delete(ctx, key)
}

func (c *countingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	c.note("list", prefix)
	return c.Storage.List(ctx, prefix)
}

// taken returns the calls counted so far and starts counting afresh.
func (c *countingStorage) taken() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

// A creds read of a warm account makes no storage call at all (the no-op
// plugin's read makes one): account and config come from memory, and so
// does whether a rotation awaits reconciliation.
func TestCacheWarmCredsReadMakesNoStorageCall(t *testing.T) {
	b, s, _, _ := fakeBackend(t)
	mustWrite(t, b, s, "accounts/etl", etlAccount())
	cs := newCountingStorage(s)
	mustRead(t, b, cs, "creds/etl")
	cs.taken()
	for range 3 {
		if data := mustRead(t, b, cs, "creds/etl"); data["password"] != "Fake-Etl-Pass-22" {
			t.Fatalf("creds read = %v", data["username"])
		}
	}
	if calls := cs.taken(); len(calls) != 0 {
		t.Errorf("warm creds reads made storage calls: %v", calls)
	}
}

// Two nodes over one storage, as a performance standby beside the active
// node: a write on one is seen by the next read on the other once Vault
// calls Invalidate with the key, for accounts, config, config/rotation and
// roles.
func TestCacheWriteOnOneNodeSeenOnAnother(t *testing.T) {
	active, s, _, _ := fakeBackend(t)
	standby, _ := getTestBackend(t)
	newFakeClient().install(standby)
	mustWrite(t, active, s, "accounts/etl", etlAccount())
	mustWrite(t, active, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials", "ttl": "10m"})

	// The standby reads (and keeps) everything once.
	if got := mustRead(t, standby, s, "creds/etl"); got["password"] != "Fake-Etl-Pass-22" || got["login_url"] != "https://fake.my.salesforce.com" {
		t.Fatalf("setup: creds on the standby = %v / %v", got["username"], got["login_url"])
	}
	if got := mustRead(t, standby, s, "roles/cc"); got["ttl"] != int64(600) {
		t.Fatalf("setup: role ttl on the standby = %v", got["ttl"])
	}
	if got := mustRead(t, standby, s, "accounts/etl"); got["description"] != "nightly ETL" {
		t.Fatalf("setup: description on the standby = %v", got["description"])
	}
	mustWrite(t, standby, s, "config/rotation", map[string]interface{}{"max_concurrent_rotations": 3})
	rc, err := standby.readRotationConfigCached(context.Background(), s)
	if err != nil || rc.MaxConcurrentRotations != 3 {
		t.Fatalf("setup: rotation config on the standby = %v, %v", rc, err)
	}

	// The active node changes each of them.
	mustWrite(t, active, s, "accounts/etl", map[string]interface{}{"password": "Fake-Etl-Pass-33", "description": "changed", "verify": false})
	cfg := fakeConfig()
	cfg["login_url"] = "https://other.my.salesforce.com"
	mustWrite(t, active, s, "config", cfg)
	mustWrite(t, active, s, "roles/cc", map[string]interface{}{"ttl": "20m"})
	mustWrite(t, active, s, "config/rotation", map[string]interface{}{"max_concurrent_rotations": 5})

	// Vault tells the standby which keys changed.
	ctx := context.Background()
	for _, key := range []string{"accounts/etl", "config", "roles/cc", "config/rotation"} {
		standby.InvalidateKey(ctx, key)
	}
	got := mustRead(t, standby, s, "creds/etl")
	if got["password"] != "Fake-Etl-Pass-33" {
		t.Error("the standby served the password the active node replaced")
	}
	if got["login_url"] != "https://other.my.salesforce.com" {
		t.Errorf("the standby served login_url %v, the active node wrote https://other.my.salesforce.com", got["login_url"])
	}
	if got := mustRead(t, standby, s, "accounts/etl"); got["description"] != "changed" {
		t.Errorf("the standby served description %v, want changed", got["description"])
	}
	if got := mustRead(t, standby, s, "roles/cc"); got["ttl"] != int64(1200) {
		t.Errorf("the standby served role ttl %v, want 1200", got["ttl"])
	}
	if rc, err := standby.readRotationConfigCached(ctx, s); err != nil || rc.MaxConcurrentRotations != 5 {
		t.Errorf("the standby's rotation config: %v, %v; want max_concurrent_rotations 5", rc, err)
	}

	// A deleted account is gone on the other node too.
	if resp, err := request(t, active, s, logical.DeleteOperation, "accounts/etl", nil); respErr(resp, err) != nil {
		t.Fatal(respErr(resp, err))
	}
	standby.InvalidateKey(ctx, "accounts/etl")
	if resp, err := request(t, standby, s, logical.ReadOperation, "creds/etl", nil); statusOf(resp, err) != 404 {
		t.Errorf("creds of a deleted account on the other node: %d %v", statusOf(resp, err), respErr(resp, err))
	}
}

// Local writes need no Invalidate: the writer replaces what it cached.
func TestCacheLocalWritesSeenAtOnce(t *testing.T) {
	b, s, _, _ := fakeBackend(t)
	mustWrite(t, b, s, "accounts/etl", etlAccount())
	mustRead(t, b, s, "creds/etl")
	mustWrite(t, b, s, "accounts/etl", map[string]interface{}{"password": "Fake-Etl-Pass-44", "verify": false})
	if got := mustRead(t, b, s, "creds/etl"); got["password"] != "Fake-Etl-Pass-44" {
		t.Error("creds served the password before the write")
	}
	cfg := fakeConfig()
	cfg["login_url"] = "https://third.my.salesforce.com"
	mustWrite(t, b, s, "config", cfg)
	if got := mustRead(t, b, s, "creds/etl"); got["login_url"] != "https://third.my.salesforce.com" {
		t.Errorf("creds login_url = %v after a config write", got["login_url"])
	}
	if resp, err := request(t, b, s, logical.DeleteOperation, "config", nil); respErr(resp, err) != nil {
		t.Fatal(respErr(resp, err))
	}
	if got := mustRead(t, b, s, "creds/etl"); got["login_url"] != configDefaultLoginURL {
		t.Errorf("creds login_url = %v after config was deleted, want the default", got["login_url"])
	}
}

// A load that read storage before a write must not put the old value in
// the cache after the write put the new one there.
func TestCacheSlowLoadDoesNotOverwriteNewerWrite(t *testing.T) {
	c := newEntryCache[account](4, false, nil)
	loading, release := make(chan struct{}), make(chan struct{})
	done := make(chan *account)
	go func() {
		a, _ := c.get("etl", func() (*account, error) {
			close(loading)
			<-release
			return &account{Password: "old"}, nil
		})
		done <- a
	}()
	<-loading
	c.set("etl", &account{Password: "new"})
	close(release)
	if a := <-done; a.Password != "old" {
		t.Fatalf("the slow load returned %q, want what it read", a.Password)
	}
	got, _ := c.get("etl", func() (*account, error) { t.Fatal("loaded although cached"); return nil, nil })
	if got.Password != "new" {
		t.Errorf("cached %q after the write, want new", got.Password)
	}
	// The same when a drop (Invalidate) comes between.
	c.drop("x")
	loading, release = make(chan struct{}), make(chan struct{})
	go func() {
		a, _ := c.get("x", func() (*account, error) {
			close(loading)
			<-release
			return &account{Password: "stale"}, nil
		})
		done <- a
	}()
	<-loading
	c.drop("x")
	close(release)
	<-done
	loads := 0
	c.get("x", func() (*account, error) { loads++; return &account{Password: "fresh"}, nil })
	if loads != 1 {
		t.Error("a load that raced an invalidation was cached")
	}
}

// The cache hands out copies: a caller that changes what it got (a
// read-modify-write does) changes nothing for the next reader.
func TestCacheHandsOutCopies(t *testing.T) {
	b, s, _, _ := fakeBackend(t)
	mustWrite(t, b, s, "accounts/etl", etlAccount())
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials", "scopes": "api"})
	ctx := context.Background()
	a, _ := b.readAccountCached(ctx, s, "etl")
	a.Password = "changed-by-a-caller"
	if again, _ := b.readAccountCached(ctx, s, "etl"); again.Password != "Fake-Etl-Pass-22" {
		t.Error("a caller's change of a read account reached the cache")
	}
	r, _ := b.readRoleCached(ctx, s, "cc")
	r.Scopes[0] = "changed"
	if again, _ := b.readRoleCached(ctx, s, "cc"); again.Scopes[0] != "api" {
		t.Error("a caller's change of a role's scopes reached the cache")
	}
	cfg, _ := b.readConfigCached(ctx, s)
	cfg.ClientSecret = "changed"
	if again, _ := b.readConfigCached(ctx, s); again.ClientSecret != fakeClientSecret {
		t.Error("a caller's change of the config reached the cache")
	}
}

// The cached types are copied with a plain assignment (roles clone their
// scopes): a pointer, slice or map field added to them must get a deep copy
// in entry_cache.go, which this test reminds of.
func TestCacheCopiesAreDeep(t *testing.T) {
	// The fields that newEntryCaches' clone functions copy deeply.
	cloned := map[string]bool{
		"rotationConfig.WebhookAllowedNetworks":     true,
		"account.accountDual.Secondary":             true,
		"account.accountRotation.LastSessionsEnded": true,
		"account.accountDual.endedNow":              true,
	}
	for _, v := range []interface{}{account{}, salesforceConfig{}, rotationConfig{}} {
		checkNoReferences(t, reflect.TypeOf(v), reflect.TypeOf(v).Name(), cloned)
	}

	// ... and they do: a caller's change of the slice stays its own.
	c := newEntryCaches()
	load := func() (*rotationConfig, error) {
		return &rotationConfig{WebhookAllowedNetworks: []string{"10.0.0.0/8"}}, nil
	}
	got, _ := c.rotation.get(rotationConfigStoragePath, load)
	got.WebhookAllowedNetworks[0] = "0.0.0.0/0"
	if again, _ := c.rotation.get(rotationConfigStoragePath, load); again.WebhookAllowedNetworks[0] != "10.0.0.0/8" {
		t.Error("a caller's change of webhook_allowed_networks reached the cache")
	}
}

func checkNoReferences(t *testing.T, typ reflect.Type, path string, cloned map[string]bool) {
	t.Helper()
	if cloned[path] {
		return
	}
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Chan, reflect.Func:
		t.Errorf("%s is a %s: the cache's shallow copy would share it between callers", path, typ.Kind())
	case reflect.Struct:
		if typ == reflect.TypeOf(time.Time{}) {
			return // time.Time's location pointer is never changed in place
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			checkNoReferences(t, f.Type, path+"."+f.Name, cloned)
		}
	}
}

// The accounts cache is an LRU: reading more accounts than it holds keeps
// its size at the bound.
func TestCacheAccountsBounded(t *testing.T) {
	c := newEntryCache[account](3, false, nil)
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		c.get(name, func() (*account, error) { return &account{Username: name}, nil })
	}
	if c.len() != 3 {
		t.Errorf("cache holds %d accounts, bound 3", c.len())
	}
	if accountCacheSize > 20000 {
		t.Errorf("accountCacheSize %d: 100,000 accounts must not all stay decoded", accountCacheSize)
	}
}

// The node that counts logins keeps each user's login budget in memory:
// an account read after a login reads no budget entry, and a change by
// another node reaches it through Invalidate.
func TestCacheLoginBudgetKeptWhereCounted(t *testing.T) {
	b, s, fake, _ := fakeBackend(t)
	mustWrite(t, b, s, "accounts/etl", etlAccount()) // logs in once
	mustRead(t, b, s, "creds/etl")                   // the WAL index is read once
	cs := newCountingStorage(s)
	mustRead(t, b, cs, "accounts/etl")
	if calls := cs.taken(); len(calls) != 0 {
		t.Errorf("an account read after a login made storage calls: %v", calls)
	}

	// Another node records a failed login: this one hears of it.
	ctx := context.Background()
	who := accountUser("etl", &account{Username: "etl@fake.test"})
	entry, _ := logical.StorageEntryJSON(loginBudgetStoragePrefix+budgetKeyOf(who.username), &budgetState{Username: who.username, Failed: 1})
	if err := s.Put(ctx, entry); err != nil {
		t.Fatal(err)
	}
	b.InvalidateKey(ctx, entry.Key)
	if got := mustRead(t, b, s, "accounts/etl")["failed_logins"]; got != 1 {
		t.Errorf("failed_logins = %v after another node stored 1", got)
	}
	if fake.count("soap.login") != 1 {
		t.Errorf("%d logins, want the write's one", fake.count("soap.login"))
	}
}
