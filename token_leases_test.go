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
	if n, err := tokenHolders(context.Background(), s, token); err != nil || n != 1 {
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
	if n, _ := tokenHolders(context.Background(), s, token); n != 0 {
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

// The holders of a shared token are in storage: a restart, failover or
// plugin reload between the reads and the lease ends changes nothing.
func TestTokenLeaseRevokeAfterRestartKeepsOtherLeases(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	one := readToken(t, b, s, "cc")
	two := readToken(t, b, s, "cc")
	token := one.Data["access_token"].(string)
	if two.Data["access_token"] != token {
		t.Fatal("setup: token not shared")
	}

	// A new backend on the same storage: nothing of the first one's memory.
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
	if n, _ := tokenHolders(context.Background(), s, late.Data["access_token"].(string)); n != 0 {
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
