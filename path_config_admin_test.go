package salesforce

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// The admin's login: its session cache, its grants against the emulator, and
// where the hosts a login answers with may send later calls.

func TestConfig_AdminSessionCached(t *testing.T) {
	b, s := getTestBackend(t)
	fake := newFakeClient()
	fake.install(b)
	mustWrite(t, b, s, "config", fakeConfig())
	base := fake.count("oauth.client_credentials")

	first, err := b.adminSession(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.adminSession(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if first != second || fake.count("oauth.client_credentials") != base+1 {
		t.Errorf("admin session not reused: %d logins", fake.count("oauth.client_credentials")-base)
	}

	// A config change (here or on another node) drops the cached session.
	mustWrite(t, b, s, "config", map[string]interface{}{"api_version": "67.0", "verify": false})
	if third, _ := b.adminSession(t.Context(), s); third == first {
		t.Errorf("admin session survived a config write")
	}
	b.invalidate(t.Context(), configStoragePath)
	before := fake.count("oauth.client_credentials")
	if _, err := b.adminSession(t.Context(), s); err != nil || fake.count("oauth.client_credentials") != before+1 {
		t.Errorf("admin session survived invalidation: %v", err)
	}
}

func TestConfig_AdminGrants(t *testing.T) {
	coreTestKeys(t)
	cases := map[string]struct {
		data    map[string]interface{}
		counter string
	}{
		"jwt_bearer": {map[string]interface{}{
			"client_id": fakeClientID, "username": "admin@fake.test", "private_key": coreTestPKCS8PEM,
		}, "oauth.jwt"},
		"client_credentials": {fakeConfig(), "oauth.client_credentials"},
		"password": {map[string]interface{}{
			"client_id": fakeClientID, "client_secret": fakeClientSecret, "grant_type": "password",
			"username": "admin@fake.test", "password": "Fake-Admin-Pass-1", "security_token": "FAKEADMINTOKEN000000",
		}, "oauth.password"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b, s := getTestBackend(t)
			fake := newFakeClient()
			fake.install(b)
			mustWrite(t, b, s, "config", tc.data)
			b.resetClient()
			sess, err := b.adminSession(t.Context(), s)
			if err != nil {
				t.Fatal(err)
			}
			if sess.UserID != "005000000000001AAA" {
				t.Errorf("admin session user = %s", sess.UserID)
			}
			if fake.count(tc.counter) != 2 {
				t.Errorf("want 2 %s logins (verify + session), got %d", tc.counter, fake.count(tc.counter))
			}
		})
	}
}

// badConfigInput is a refused write whose error names field. Updates
// that are refused only because a config is stored (a new endpoint while
// secrets are stored for the old one) are marked updateOnly.

func TestConfig_EmulatorAdminGrants(t *testing.T) {
	for _, grant := range []string{adminGrantJWTBearer, adminGrantClientCredentials, adminGrantPassword} {
		t.Run(grant, func(t *testing.T) {
			b, s, srv, _ := emulatorBackend(t, grant)
			if got := srv.Calls("oauth.token"); got != 1 {
				t.Errorf("verification: want 1 token call, got %d", got)
			}
			sess, err := b.adminSession(t.Context(), s)
			if err != nil {
				t.Fatalf("admin session: %v", err)
			}
			if !strings.HasPrefix(sess.UserID, "005") || sess.AccessToken == "" {
				t.Errorf("admin session: user %q", sess.UserID)
			}
			if _, err := b.adminSession(t.Context(), s); err != nil || srv.Calls("oauth.token") != 2 {
				t.Errorf("admin session not cached: %d token calls, %v", srv.Calls("oauth.token"), err)
			}
			if got := mustRead(t, b, s, "config")["grant_type"]; got != grant {
				t.Errorf("grant_type = %v", got)
			}
		})
	}
}

func TestConfig_EmulatorRefusals(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.DefaultSeed())
	cases := map[string]struct {
		change map[string]interface{}
		grant  string
		code   string
	}{
		"wrong client secret":             {map[string]interface{}{"client_secret": "not-the-secret"}, adminGrantClientCredentials, "invalid_client"},
		"client_credentials on login url": {map[string]interface{}{"login_url": srv.LoginURL()}, adminGrantClientCredentials, "invalid_grant"},
		"wrong admin password":            {map[string]interface{}{"password": "Wrong-Pass-1234"}, adminGrantPassword, "invalid_grant"},
		"jwt for unknown user":            {map[string]interface{}{"username": "ghost@acme.demo"}, adminGrantJWTBearer, "invalid_grant"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b, s := getTestBackend(t)
			data := emulatorConfig(srv, tc.grant)
			for k, v := range tc.change {
				data[k] = v
			}
			before := snapshotStorage(t, s)
			resp, err := request(t, b, s, logical.UpdateOperation, "config", data)
			if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), tc.code) {
				t.Errorf("want 400 with %s, got %d %v", tc.code, statusOf(resp, err), respErr(resp, err))
			}
			assertSameStorage(t, before, snapshotStorage(t, s))
		})
	}
}

func TestConfig_ConcurrentAdminSessionsShareOneLogin(t *testing.T) {
	b, s, srv, _ := emulatorBackend(t, adminGrantJWTBearer)
	srv.ResetCalls()
	var wg sync.WaitGroup
	sessions := make([]*sfapi.Session, 32)
	errs := make([]error, len(sessions))
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sessions[i], errs[i] = b.adminSession(t.Context(), s)
		}()
	}
	wg.Wait()
	for i := range sessions {
		if errs[i] != nil || sessions[i] != sessions[0] {
			t.Fatalf("caller %d: %v (different session: %v)", i, errs[i], sessions[i] != sessions[0])
		}
	}
	if got := srv.Calls("oauth.token"); got != 1 {
		t.Errorf("32 concurrent callers caused %d admin logins, want 1", got)
	}
}

func TestConfig_AdminSessionRetriedOnceWhenExpired(t *testing.T) {
	b, s, srv, _ := emulatorBackend(t, adminGrantClientCredentials)
	srv.ResetCalls()
	attempts := 0
	err := b.withAdminSession(t.Context(), s, func(c Client, sess *sfapi.Session) error {
		attempts++
		if attempts == 1 {
			return &sfapi.Error{Op: "query", Code: "INVALID_SESSION_ID", Kind: sfapi.KindSession}
		}
		return nil
	})
	if err != nil || attempts != 2 || srv.Calls("oauth.token") != 2 {
		t.Errorf("want one retry with a fresh session: err=%v attempts=%d logins=%d", err, attempts, srv.Calls("oauth.token"))
	}
	attempts = 0
	err = b.withAdminSession(t.Context(), s, func(c Client, sess *sfapi.Session) error {
		attempts++
		return &sfapi.Error{Op: "query", Code: "INVALID_SESSION_ID", Kind: sfapi.KindSession}
	})
	if err == nil || attempts != 2 {
		t.Errorf("a session error that persists must surface after one retry: err=%v attempts=%d", err, attempts)
	}
}

func TestConfig_JWTBearerWithKeyKeptInVault(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.DefaultSeed())
	b, s := getTestBackend(t)
	data := emulatorConfig(srv, adminGrantJWTBearer)
	delete(data, "private_key")

	before := snapshotStorage(t, s)
	resp, err := request(t, b, s, logical.UpdateOperation, "config", data)
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "private_key") {
		t.Fatalf("jwt_bearer without any key: want 400 naming private_key, got %v", respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, s))

	// The connected app's certificate matches the demo key, imported here
	// as the key Vault signs with.
	mustWrite(t, b, s, "config/jwt-key", map[string]interface{}{"private_key": emulator.DemoPrivateKeyPEM})
	mustWrite(t, b, s, "config", data)
	if got := mustRead(t, b, s, "config")["private_key_set"]; got != false {
		t.Errorf("private_key_set = %v", got)
	}
	b.resetClient()
	if sess, err := b.adminSession(t.Context(), s); err != nil || !strings.HasPrefix(sess.UserID, "005") {
		t.Fatalf("admin session with config/jwt-key: %v", err)
	}
	if got := srv.Calls("oauth.token"); got != 2 {
		t.Errorf("want 2 JWT bearer logins (verify, session), got %d", got)
	}
}

// Issue 9, defect 11, the engine's side: the wire client gets config's
// allow_non_salesforce_url, so the instance hosts a login names are held
// to login_url's policy (sfapi's TestTrust11InstanceURLPolicy has the
// policy itself).
func TestTrust11InstanceURLPolicyFollowsConfig(t *testing.T) {
	b, s := getTestBackend(t)
	fake := newFakeClient()
	fake.install(b)
	for _, allow := range []bool{false, true} {
		cfg := fakeConfig()
		cfg["allow_non_salesforce_url"] = allow
		mustWrite(t, b, s, "config", cfg)
		if _, _, err := b.getClient(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		fake.mu.Lock()
		got := fake.cfg.AllowNonSalesforceURL
		fake.mu.Unlock()
		if got != allow {
			t.Errorf("config allow_non_salesforce_url=%v: the client got %v", allow, got)
		}
	}
}
