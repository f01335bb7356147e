package salesforce

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// tokenFake is a Client for token tests that need control the emulator
// does not give (clock, odd responses). Methods it does not implement
// panic through the nil embedded interface.
type tokenFake struct {
	Client

	mu    sync.Mutex
	calls map[string]int
	seq   int
	// mintErrs are returned, one per grant call, before grants succeed.
	mintErrs []error
	// gate, when set, blocks every grant until it is closed; a grant that
	// reaches it sends on atGate first, when that is set.
	gate   chan struct{}
	atGate chan struct{}
	// signWith signs responses with this client secret; "" sends none.
	signWith string
	// badSignature sends a signature that does not verify.
	badSignature bool
	// introspect answers Introspect; nil means "active, no exp".
	introspect func(token string) (*sfapi.Introspection, error)
	revokeErr  error
	revoked    []string
	issuedAt   time.Time

	lastUser     string
	lastKey      *rsa.PrivateKey
	lastScopes   []string
	lastPassword string
	lastRefresh  string
}

func newTokenFake() *tokenFake {
	return &tokenFake{calls: map[string]int{}}
}

func (f *tokenFake) install(b *backend) {
	b.newClient = func(sfapi.Config) (Client, error) { return f, nil }
	b.resetClient()
}

func (f *tokenFake) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *tokenFake) grants() int {
	return f.count("grant")
}

func (f *tokenFake) grant(kind string) (*sfapi.Session, error) {
	f.mu.Lock()
	gate, atGate := f.gate, f.atGate
	f.mu.Unlock()
	if gate != nil {
		if atGate != nil {
			select {
			case atGate <- struct{}{}:
			default:
			}
		}
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["grant"]++
	f.calls[kind]++
	if len(f.mintErrs) > 0 {
		err := f.mintErrs[0]
		f.mintErrs = f.mintErrs[1:]
		return nil, err
	}
	f.seq++
	issued := f.issuedAt
	if issued.IsZero() {
		issued = time.Now()
	}
	issued = issued.Truncate(time.Millisecond)
	sess := &sfapi.Session{
		AccessToken: fmt.Sprintf("00Dfake!AQ%s-token-%04d", kind, f.seq),
		InstanceURL: "https://fake.my.salesforce.com",
		ID:          "https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA",
		TokenType:   "Bearer",
		Scope:       "api",
		IssuedAt:    issued,
	}
	if f.signWith != "" {
		mac := hmac.New(sha256.New, []byte(f.signWith))
		mac.Write([]byte(sess.ID + strconv.FormatInt(issued.UnixMilli(), 10)))
		if f.badSignature {
			mac.Write([]byte("tampered"))
		}
		sess.Signature = base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	return sess, nil
}

func (f *tokenFake) PasswordGrant(ctx context.Context, username, passwordWithToken string) (*sfapi.Session, error) {
	f.mu.Lock()
	f.lastUser, f.lastPassword = username, passwordWithToken
	f.mu.Unlock()
	return f.grant("password")
}

func (f *tokenFake) ClientCredentialsGrant(ctx context.Context, scopes []string) (*sfapi.Session, error) {
	f.mu.Lock()
	f.lastScopes = scopes
	f.mu.Unlock()
	return f.grant("client_credentials")
}

func (f *tokenFake) JWTBearerGrant(ctx context.Context, username string, key *rsa.PrivateKey, scopes []string) (*sfapi.Session, error) {
	f.mu.Lock()
	f.lastUser, f.lastKey, f.lastScopes = username, key, scopes
	f.mu.Unlock()
	return f.grant("jwt")
}

func (f *tokenFake) RefreshTokenGrant(ctx context.Context, refreshToken string, scopes []string) (*sfapi.Session, error) {
	f.mu.Lock()
	f.lastRefresh, f.lastScopes = refreshToken, scopes
	f.mu.Unlock()
	return f.grant("refresh")
}

func (f *tokenFake) Introspect(ctx context.Context, token string) (*sfapi.Introspection, error) {
	f.mu.Lock()
	f.calls["introspect"]++
	fn := f.introspect
	f.mu.Unlock()
	if fn == nil {
		return &sfapi.Introspection{Active: true}, nil
	}
	return fn(token)
}

func (f *tokenFake) Revoke(ctx context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["revoke"]++
	if f.revokeErr != nil {
		return f.revokeErr
	}
	f.revoked = append(f.revoked, token)
	return nil
}

const (
	fakeTokenClientSecret = "fake-token-client-secret"
	fakeAccountPassword   = "Acct-Pass-1234"
	fakeAccountToken      = "ACCTTOKEN000000000000"
	fakeRefreshToken      = "5Aep861fakeRefreshTokenValue"
)

// tokenTestBackend is a backend with a stored config, one account and the
// fake client installed.
func tokenTestBackend(t testing.TB) (*backend, logical.Storage, *tokenFake) {
	t.Helper()
	b, s := getTestBackend(t)
	ctx := context.Background()
	cfg := defaultConfig()
	cfg.LoginURL = "https://acme.my.salesforce.com"
	cfg.ClientID = "fake-client"
	cfg.ClientSecret = fakeTokenClientSecret
	cfg.GrantType = "client_credentials"
	if err := writeConfig(ctx, s, cfg); err != nil {
		t.Fatal(err)
	}
	putAccount(t, b, s, "etl", &account{Username: "etl@acme.test", Password: fakeAccountPassword, SecurityToken: fakeAccountToken})
	f := newTokenFake()
	f.install(b)
	return b, s, f
}

func useFakeClock(b *backend) *fakeClock {
	c := &fakeClock{now: time.Now()}
	b.clock = c.Now
	return c
}

func readToken(t testing.TB, b *backend, s logical.Storage, role string) *logical.Response {
	t.Helper()
	resp, err := request(t, b, s, logical.ReadOperation, "token/"+role, nil)
	if err != nil || resp == nil || resp.IsError() {
		t.Fatalf("read token/%s: %v", role, respErr(resp, err))
	}
	return resp
}

func TestTokenCacheReusesUntilRefreshMargin(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	clock := useFakeClock(b)
	f.issuedAt = clock.Now()
	f.introspect = func(string) (*sfapi.Introspection, error) {
		return nil, &sfapi.Error{Op: "oauth introspect", Code: "invalid_client", Kind: sfapi.KindPermission}
	}
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials", "session_timeout": "1h"})

	first := readToken(t, b, s, "cc").Data["access_token"]
	clock.Advance(50 * time.Minute)
	if got := readToken(t, b, s, "cc").Data["access_token"]; got != first || f.grants() != 1 {
		t.Fatalf("token not reused inside its lifetime: grants=%d", f.grants())
	}
	// 1h lifetime: margin is 5 min, so at 56 min a new token is due.
	clock.Advance(6 * time.Minute)
	f.issuedAt = clock.Now()
	if got := readToken(t, b, s, "cc").Data["access_token"]; got == first || f.grants() != 2 {
		t.Fatalf("token reused inside its safety margin: grants=%d", f.grants())
	}
	// Introspection was refused once and not asked again.
	if n := f.count("introspect"); n != 1 {
		t.Errorf("introspect calls = %d, want 1 (refusal remembered)", n)
	}
}

func TestTokenCacheExpiryFromIntrospection(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	clock := useFakeClock(b)
	f.issuedAt = clock.Now()
	exp := clock.Now().Add(30 * time.Minute).Truncate(time.Second)
	f.introspect = func(string) (*sfapi.Introspection, error) {
		return &sfapi.Introspection{Active: true, Expires: exp}, nil
	}
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})

	resp := readToken(t, b, s, "cc")
	if got := resp.Data["expires_at"]; got != exp.UTC().Format(time.RFC3339) {
		t.Errorf("expires_at = %v, want introspection exp %v", got, exp.UTC().Format(time.RFC3339))
	}
	if resp.Secret.TTL > 30*time.Minute {
		t.Errorf("lease TTL %s outlives the session", resp.Secret.TTL)
	}
	// 30 min lifetime: margin 3 min.
	clock.Advance(28 * time.Minute)
	readToken(t, b, s, "cc")
	if f.grants() != 2 {
		t.Errorf("grants = %d, want a new token after exp - margin", f.grants())
	}
}

func TestTokenCacheInvalidSessionReMintsOnce(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	clock := useFakeClock(b)
	dead := map[string]bool{}
	var mu sync.Mutex
	f.introspect = func(tok string) (*sfapi.Introspection, error) {
		mu.Lock()
		defer mu.Unlock()
		if dead[tok] {
			return nil, &sfapi.Error{Op: "oauth introspect", Code: "INVALID_SESSION_ID", Kind: sfapi.KindSession}
		}
		return &sfapi.Introspection{Active: true}, nil
	}
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	first := readToken(t, b, s, "cc").Data["access_token"].(string)

	// An admin kills the session in Salesforce; the next check notices.
	mu.Lock()
	dead[first] = true
	mu.Unlock()
	clock.Advance(verifyInterval + time.Second)
	second := readToken(t, b, s, "cc").Data["access_token"].(string)
	if second == first || f.grants() != 2 {
		t.Fatalf("dead cached token served or not re-minted once: grants=%d", f.grants())
	}

	// A new token Salesforce calls inactive straight away is minted once more, then given up.
	f.introspect = func(string) (*sfapi.Introspection, error) { return &sfapi.Introspection{Active: false}, nil }
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"ttl": "10m"}) // drops the cache
	resp, err := request(t, b, s, logical.ReadOperation, "token/cc", nil)
	if statusOf(resp, err) != 502 {
		t.Fatalf("status = %d (%v), want 502", statusOf(resp, err), respErr(resp, err))
	}
	if f.grants() != 4 {
		t.Errorf("grants = %d, want 2 more (one re-mint)", f.grants())
	}
}

func TestTokenCacheConcurrentColdReadsMintOnce(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	f.gate = make(chan struct{})

	const readers = 64
	var wg sync.WaitGroup
	tokens := make([]string, readers)
	errs := make([]error, readers)
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := request(t, b, s, logical.ReadOperation, "token/cc", nil)
			if err = respErr(resp, err); err != nil {
				errs[i] = err
				return
			}
			tokens[i] = resp.Data["access_token"].(string)
		}()
	}
	// Let the readers pile up on the flight, then let it finish.
	time.Sleep(50 * time.Millisecond)
	close(f.gate)
	wg.Wait()
	for i := range readers {
		if errs[i] != nil {
			t.Fatalf("reader %d: %v", i, errs[i])
		}
		if tokens[i] != tokens[0] {
			t.Fatalf("reader %d got a different token", i)
		}
	}
	if n := f.grants(); n != 1 {
		t.Errorf("grants = %d, want 1", n)
	}
	// Every lease is recorded as a holder of the shared token.
	if n, err := b.tokenHolders(context.Background(), s, tokens[0]); err != nil || n != readers {
		t.Errorf("recorded holders = %d (%v), want %d", n, err, readers)
	}
}

func TestTokenCacheDisabledMintsEveryRead(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/fresh", map[string]interface{}{"grant_type": "client_credentials", "cache": false})
	a := readToken(t, b, s, "fresh").Data["access_token"]
	c := readToken(t, b, s, "fresh").Data["access_token"]
	if a == c || f.grants() != 2 {
		t.Errorf("cache=false reused a token: grants=%d", f.grants())
	}
}

func TestTokenCacheInvalidation(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		role   map[string]interface{}
		change func(t *testing.T, b *backend, s logical.Storage)
	}{
		{"role write", map[string]interface{}{"grant_type": "client_credentials"}, func(t *testing.T, b *backend, s logical.Storage) {
			mustWrite(t, b, s, "roles/r", map[string]interface{}{"scopes": "api"})
		}},
		{"role changed on another node", map[string]interface{}{"grant_type": "client_credentials"}, func(t *testing.T, b *backend, s logical.Storage) {
			b.invalidate(ctx, "roles/r")
		}},
		{"account changed", map[string]interface{}{"grant_type": "password", "account": "etl"}, func(t *testing.T, b *backend, s logical.Storage) {
			b.invalidateTokensForAccount("etl")
		}},
		{"account changed on another node", map[string]interface{}{"grant_type": "password", "account": "etl"}, func(t *testing.T, b *backend, s logical.Storage) {
			b.invalidate(ctx, "accounts/etl")
		}},
		{"config changed", map[string]interface{}{"grant_type": "client_credentials"}, func(t *testing.T, b *backend, s logical.Storage) {
			b.invalidateAllTokens()
		}},
		{"config changed on another node", map[string]interface{}{"grant_type": "client_credentials"}, func(t *testing.T, b *backend, s logical.Storage) {
			b.invalidate(ctx, "config")
		}},
		{"jwt key confirmed", map[string]interface{}{"grant_type": "jwt_bearer", "username": "etl@acme.test"}, func(t *testing.T, b *backend, s logical.Storage) {
			mustWrite(t, b, s, "config/jwt-key/rotate", nil)
			mustWrite(t, b, s, "config/jwt-key/confirm", nil)
		}},
		{"jwt key changed on another node", map[string]interface{}{"grant_type": "jwt_bearer", "username": "etl@acme.test"}, func(t *testing.T, b *backend, s logical.Storage) {
			b.invalidate(ctx, "config/jwt-key")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, s, f := tokenTestBackend(t)
			mustWrite(t, b, s, "config/jwt-key", nil)
			mustWrite(t, b, s, "roles/r", tc.role)
			mustWrite(t, b, s, "roles/other", map[string]interface{}{"grant_type": "refresh_token", "refresh_token": fakeRefreshToken})
			readToken(t, b, s, "r")
			readToken(t, b, s, "other")
			readToken(t, b, s, "r")
			if f.grants() != 2 {
				t.Fatalf("grants = %d before the change, want 2", f.grants())
			}
			tc.change(t, b, s)
			readToken(t, b, s, "r")
			if f.grants() != 3 {
				t.Errorf("grants = %d after the change, want 3 (role re-minted)", f.grants())
			}
			// An unrelated role keeps its token, except after a config change.
			readToken(t, b, s, "other")
			want := 3
			if tc.name == "config changed" || tc.name == "config changed on another node" {
				want = 4
			}
			if f.grants() != want {
				t.Errorf("grants = %d after reading the unrelated role, want %d", f.grants(), want)
			}
		})
	}
}

// A mint in flight when the role changes must not land in the cache.
func TestTokenCacheInvalidationDuringMint(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/r", map[string]interface{}{"grant_type": "client_credentials"})
	f.gate, f.atGate = make(chan struct{}), make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		readToken(t, b, s, "r")
	}()
	// The invalidation must land while the mint is in flight; a fixed
	// sleep let a slow machine invalidate before the mint began.
	select {
	case <-f.atGate:
	case <-time.After(10 * time.Second):
		t.Fatal("the token read never reached Salesforce")
	}
	b.invalidateTokensForRole("r")
	f.mu.Lock()
	gate := f.gate
	f.gate = nil
	f.mu.Unlock()
	close(gate)
	<-done
	readToken(t, b, s, "r")
	if f.grants() != 2 {
		t.Errorf("grants = %d, want 2 (stale mint not cached)", f.grants())
	}
}

func TestRefreshMargin(t *testing.T) {
	for _, tc := range []struct{ life, want time.Duration }{
		{2 * time.Hour, 5 * time.Minute},
		{30 * time.Minute, 3 * time.Minute},
		{time.Minute, 30 * time.Second},
	} {
		if got := refreshMargin(tc.life); got != tc.want {
			t.Errorf("refreshMargin(%s) = %s, want %s", tc.life, got, tc.want)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	issued := time.UnixMilli(1468448630767)
	sess := &sfapi.Session{ID: "https://login.salesforce.com/id/00D36000001HDi3EAG/00536000002PmoeAAC", IssuedAt: issued}
	mac := hmac.New(sha256.New, []byte("secret"))
	mac.Write([]byte(sess.ID + "1468448630767"))
	sess.Signature = base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if err := verifySignature(sess, "secret"); err != nil {
		t.Errorf("valid signature rejected: %v", err)
	}
	if err := verifySignature(sess, "other-secret"); err == nil {
		t.Error("signature with the wrong secret accepted")
	}
	sess.Signature = "not base64!"
	if err := verifySignature(sess, "secret"); err == nil {
		t.Error("garbage signature accepted")
	}
	sess.Signature = ""
	if err := verifySignature(sess, "secret"); err != nil {
		t.Errorf("absent signature rejected: %v", err)
	}
}
