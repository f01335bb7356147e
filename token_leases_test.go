package salesforce

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestTokenLeaseRevokeSharedToken(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	one := readToken(t, b, s, "cc")
	two := readToken(t, b, s, "cc")
	token := one.Data["access_token"].(string)
	if two.Data["access_token"] != token {
		t.Fatal("cached token not shared")
	}

	if err := revokeLease(t, b, s, one.Secret); err != nil {
		t.Fatal(err)
	}
	if f.count("revoke") != 0 {
		t.Fatal("revoking one lease revoked the token another live lease holds")
	}
	if readToken(t, b, s, "cc").Data["access_token"] != token {
		t.Error("token dropped from the cache while leases still hold it")
	}
	three := readToken(t, b, s, "cc")

	if err := revokeLease(t, b, s, two.Secret); err != nil {
		t.Fatal(err)
	}
	if f.count("revoke") != 0 {
		t.Fatal("token revoked while a lease still holds it")
	}
	// The reads above created leases "three" and one more; end "three".
	if err := revokeLease(t, b, s, three.Secret); err != nil {
		t.Fatal(err)
	}
	if n, err := b.tokenHolders(context.Background(), s, token); err != nil || n != 1 {
		t.Fatalf("recorded holders = %d (%v), want 1", n, err)
	}
}

func TestTokenLeaseRevokeLastLeaseRevokes(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	one := readToken(t, b, s, "cc")
	two := readToken(t, b, s, "cc")
	token := one.Data["access_token"].(string)
	revokeLease(t, b, s, one.Secret)
	if err := revokeLease(t, b, s, two.Secret); err != nil {
		t.Fatal(err)
	}
	if f.count("revoke") != 1 || f.revoked[0] != token {
		t.Fatalf("last lease did not revoke the token: %d revoke calls", f.count("revoke"))
	}
	// The revoked token is gone from the cache, and so is its holder index.
	if readToken(t, b, s, "cc").Data["access_token"] == token {
		t.Error("revoked token served again")
	}
	if n, _ := b.tokenHolders(context.Background(), s, token); n != 0 {
		t.Errorf("%d holder entries left for a revoked token", n)
	}

	// A lease issued before the holder index existed has no entry: with no
	// recorded holder left, it revokes its token.
	old := &logical.Secret{InternalData: map[string]interface{}{
		"secret_type": secretAccessTokenType, "access_token": "00Dold!token", "role": "cc", "revoke": true, "lease_nonce": "unknown",
	}}
	if err := revokeLease(t, b, s, old); err != nil {
		t.Fatal(err)
	}
	if f.count("revoke") != 2 {
		t.Error("old lease's token not revoked")
	}
}

// The holders of a shared token are stored when the mount is unloaded
// (Clean): a plugin reload, step-down or seal between the reads and the
// lease ends changes nothing.
func TestTokenLeaseRevokeAfterRestartKeepsOtherLeases(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	one := readToken(t, b, s, "cc")
	two := readToken(t, b, s, "cc")
	token := one.Data["access_token"].(string)
	if two.Data["access_token"] != token {
		t.Fatal("setup: token not shared")
	}

	// Vault cleans the mount up, then a new backend starts on the same
	// storage: nothing of the first one's memory.
	b.Cleanup(context.Background())
	restarted, _ := getTestBackend(t)
	f.install(restarted)
	if err := revokeLease(t, restarted, s, one.Secret); err != nil {
		t.Fatal(err)
	}
	if f.count("revoke") != 0 {
		t.Fatal("ending lease one after a restart revoked the token lease two still holds")
	}
	if err := revokeLease(t, restarted, s, two.Secret); err != nil {
		t.Fatal(err)
	}
	if f.count("revoke") != 1 || f.revoked[0] != token {
		t.Fatalf("the last lease to end after a restart did not revoke the token: %d revoke calls", f.count("revoke"))
	}
}

// A holder whose lease ended without Vault telling the engine (a forced
// revoke) does not keep the token alive for ever.
func TestTokenLeaseEndedHolderDoesNotKeepToken(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	clock := useFakeClock(b)
	f.issuedAt = clock.Now()
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials", "ttl": "10m", "max_ttl": "10m"})
	readToken(t, b, s, "cc") // its lease is force-revoked: Vault never calls the plugin
	clock.Advance(9 * time.Minute)
	late := readToken(t, b, s, "cc")
	clock.Advance(10 * time.Minute) // the first lease's end (and grace) has passed
	if err := revokeLease(t, b, s, late.Secret); err != nil {
		t.Fatal(err)
	}
	if f.count("revoke") != 1 {
		t.Fatalf("revoke calls = %d, want 1: a long-ended lease kept the token alive", f.count("revoke"))
	}
	if n, _ := b.tokenHolders(context.Background(), s, late.Data["access_token"].(string)); n != 0 {
		t.Errorf("%d holder entries left after the token was revoked", n)
	}
}

// The index names tokens by hash and holds nothing secret; it is local
// storage (leases are per cluster) and token reads run on the active node,
// which can write it.
func TestTokenLeaseHolderIndexStorage(t *testing.T) {
	b, s, _ := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	token := readToken(t, b, s, "cc").Data["access_token"].(string)
	ctx := context.Background()
	keys, err := logical.CollectKeysWithPrefix(ctx, s, tokenLeaseStoragePrefix)
	if err != nil || len(keys) != 1 {
		t.Fatalf("holder entries = %v (%v), want 1", keys, err)
	}
	entry, err := s.Get(ctx, keys[0])
	if err != nil || entry == nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "holder index", keys[0]+" "+string(entry.Value), token, fakeTokenClientSecret)
	if !strings.Contains(keys[0], tokenHash(token)) {
		t.Errorf("holder key %q is not named by the token's hash", keys[0])
	}
	if !slices.Contains(b.SpecialPaths().LocalStorage, tokenLeaseStoragePrefix) {
		t.Error("token-leases/ is not local storage")
	}
	for _, p := range b.Paths {
		if p.Pattern == pathToken(b)[0].Pattern {
			if op := p.Operations[logical.ReadOperation].Properties(); !op.ForwardPerformanceStandby {
				t.Error("token reads are not forwarded from performance standbys to the active node")
			}
		}
	}
}

// readOnlyStorage refuses writes under a prefix, like a performance
// standby's storage.
type readOnlyStorage struct {
	logical.Storage
	prefix string
}

func (r readOnlyStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if strings.HasPrefix(e.Key, r.prefix) {
		return logical.ErrReadOnly
	}
	return r.Storage.Put(ctx, e)
}

func TestTokenReadOnReadOnlyStorage(t *testing.T) {
	b, s, _ := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	resp, err := request(t, b, readOnlyStorage{Storage: s, prefix: tokenLeaseStoragePrefix}, logical.ReadOperation, "token/cc", nil)
	if err == nil || !errors.Is(err, logical.ErrReadOnly) {
		t.Fatalf("read on read-only storage: %v; want an error Vault recognises as read-only (to forward it)", respErr(resp, err))
	}
	if !strings.Contains(err.Error(), `role "cc"`) || !strings.Contains(err.Error(), "active node") {
		t.Errorf("error %q does not say what failed and where to read", err)
	}
}

// A read that picked the cached token just before the last lease holding
// it ended must not record a lease on it: the token is being revoked.
func TestTokenLeaseNotRecordedOnRevokedToken(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	ctx := context.Background()
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	only := readToken(t, b, s, "cc")
	r, _ := readRole(ctx, s, "cc")
	inFlight, err := b.roleToken(ctx, s, "cc", r, b.tokens.generation())
	if err != nil || inFlight.session.AccessToken != only.Data["access_token"] {
		t.Fatalf("setup: %v", err)
	}
	if err := revokeLease(t, b, s, only.Secret); err != nil || f.count("revoke") != 1 {
		t.Fatalf("setup: revoke calls = %d, %v", f.count("revoke"), err)
	}
	if _, err := b.recordTokenHolder(ctx, s, "cc", inFlight, "late", time.Now().Add(time.Hour)); !errors.Is(err, errTokenRevoked) {
		t.Fatalf("a lease was recorded on a token revoked meanwhile: %v", err)
	}
	if readToken(t, b, s, "cc").Data["access_token"] == only.Data["access_token"] {
		t.Error("the revoked token was served again")
	}
}

// Concurrent reads and lease ends (run with -race): no live lease holds a
// token revoked at another lease's end.
func TestTokenLeaseRevokeConcurrentReads(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	for round := range 10 {
		first := readToken(t, b, s, "cc")
		var wg sync.WaitGroup
		leases := make([]*logical.Response, 16)
		for i := range leases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				leases[i] = readToken(t, b, s, "cc")
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := revokeLease(t, b, s, first.Secret); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		f.mu.Lock()
		revoked := slices.Clone(f.revoked)
		f.mu.Unlock()
		for _, l := range leases {
			if slices.Contains(revoked, l.Data["access_token"].(string)) {
				t.Fatalf("round %d: a live lease holds a token revoked at another lease's end", round)
			}
		}
		for _, l := range leases {
			if err := revokeLease(t, b, s, l.Secret); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A warm token read stores nothing: its lease is counted in memory (the
// token's record was written once, when it was minted).
func TestTokenLeaseWarmReadsStoreNothing(t *testing.T) {
	b, s, _ := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	cs := newCountingStorage(s)
	token := readToken(t, b, cs, "cc").Data["access_token"].(string)
	if calls := cs.taken(); calls["put token-leases/"] != 1 {
		t.Errorf("the mint stored %v, want one record of the token", calls)
	}
	for range 5 {
		readToken(t, b, cs, "cc")
	}
	if calls := cs.taken(); len(calls) != 0 {
		t.Errorf("warm token reads made storage calls: %v", calls)
	}
	if n, err := b.tokenHolders(context.Background(), s, token); err != nil || n != 6 {
		t.Errorf("holders = %d (%v), want 6", n, err)
	}
}

// Clean stores this process's counts in the token's record, in place of
// "open", so the next process can count the leases down.
func TestTokenLeaseCleanStoresCounts(t *testing.T) {
	b, s, _ := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	token := readToken(t, b, s, "cc").Data["access_token"].(string)
	readToken(t, b, s, "cc")
	readToken(t, b, s, "cc")
	ctx := context.Background()
	rec, err := readTokenRecord(ctx, s, tokenHash(token))
	if err != nil || rec == nil || len(rec.Generations) != 1 || !rec.Generations[b.tokens.holders.gen].Open {
		t.Fatalf("record before Clean = %+v (%v), want this process open", rec, err)
	}
	b.Cleanup(ctx)
	rec, err = readTokenRecord(ctx, s, tokenHash(token))
	if err != nil || rec == nil {
		t.Fatalf("record after Clean: %v", err)
	}
	g := rec.Generations[b.tokens.holders.gen]
	n := 0
	if g != nil {
		for _, k := range g.Ends {
			n += k
		}
	}
	if g == nil || g.Open || n != 3 {
		t.Errorf("record after Clean = %+v, want 3 leases counted", g)
	}
}

// After a crash (no Clean), nobody knows how many leases the dead process
// issued: none of them revokes its token, which ends by itself.
func TestTokenLeaseCrashKeepsTokenUntilItsExpiry(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	clock := useFakeClock(b)
	f.issuedAt = clock.Now()
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	one := readToken(t, b, s, "cc")
	two := readToken(t, b, s, "cc")

	crashed, _ := getTestBackend(t) // b is never cleaned up
	crashed.clock = clock.Now
	f.install(crashed)
	for _, l := range []*logical.Response{one, two} {
		if err := revokeLease(t, crashed, s, l.Secret); err != nil {
			t.Fatal(err)
		}
	}
	if f.count("revoke") != 0 {
		t.Fatalf("a lease end after a crash revoked the token: %d revoke calls", f.count("revoke"))
	}
}

// Salesforce may hand out the same token again: a process that gets the
// token a crashed process leased does not revoke it at the end of its own
// leases while the crashed process's may live, that is until the token's
// expiry.
func TestTokenLeaseSameTokenAfterCrashNotRevokedUnderOldLeases(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	clock := useFakeClock(b)
	f.issuedAt = clock.Now()
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	old := readToken(t, b, s, "cc")
	token := old.Data["access_token"].(string)

	next, _ := getTestBackend(t) // b crashed
	next.clock = clock.Now
	f.install(next)
	f.mu.Lock()
	f.seq-- // the org answers with the same session
	f.mu.Unlock()
	mine := readToken(t, next, s, "cc")
	if mine.Data["access_token"] != token {
		t.Fatal("setup: the org did not hand out the same token")
	}
	if err := revokeLease(t, next, s, mine.Secret); err != nil {
		t.Fatal(err)
	}
	if f.count("revoke") != 0 {
		t.Fatal("the new process revoked a token the crashed process's lease may still hold")
	}
	// Once the token has expired, nothing can hold it: the last lease end
	// may revoke it (Salesforce answers that it is gone already).
	clock.Advance(defaultSessionTimeout + 2*holderGrace)
	if err := revokeLease(t, next, s, old.Secret); err != nil {
		t.Fatal(err)
	}
	if n, _ := next.tokenHolders(context.Background(), s, token); n != 0 {
		t.Errorf("%d holders left after the token expired", n)
	}
}

// The leases of a revoke_on_lease_end token hold the consumer key that
// minted it (client-secret rotation keeps a previous key while held):
// counted in memory while this process runs, from the token's record
// after it, and by an open generation (a crash) until the token expires.
func TestTokenLeaseHoldsItsConsumerKey(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	ctx := context.Background()
	cfg, err := readConfig(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	one, two := readToken(t, b, s, "cc"), readToken(t, b, s, "cc")
	held := func(b *backend, key string) int {
		t.Helper()
		h, err := b.holdersOf(ctx, s, key, b.now())
		if err != nil {
			t.Fatal(err)
		}
		return h.leases
	}
	if n := held(b, cfg.ClientID); n != 2 {
		t.Errorf("%d leases hold the key, want 2", n)
	}
	if n := held(b, "another-key"); n != 0 {
		t.Errorf("%d leases hold a key that minted nothing", n)
	}

	// A crash: the next process knows no count, so the token's open
	// generation holds the key until the token's expiry.
	crashed, _ := getTestBackend(t)
	f.install(crashed)
	if n := held(crashed, cfg.ClientID); n != 1 {
		t.Errorf("after a crash %d leases hold the key, want 1 (the open generation)", n)
	}
	expires, _ := time.Parse(time.RFC3339, one.Data["expires_at"].(string))
	crashed.clock = func() time.Time { return expires.Add(holderGrace + time.Minute) }
	if n := held(crashed, cfg.ClientID); n != 0 {
		t.Errorf("after the token's expiry %d leases hold the key, want 0", n)
	}

	// In this process, the leases' ends release it.
	for _, r := range []*logical.Response{one, two} {
		if err := revokeLease(t, b, s, r.Secret); err != nil {
			t.Fatal(err)
		}
	}
	if n := held(b, cfg.ClientID); n != 0 {
		t.Errorf("%d leases hold the key after both ended", n)
	}
}
