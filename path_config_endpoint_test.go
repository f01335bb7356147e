package salesforce

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// A config write that moves logins elsewhere (login_url, ca_cert) and what it
// must bring along.

// Moving logins to another host must not take the stored admin secrets
// along: a caller who can only update config, and does not know them,
// would otherwise receive them at a host of its choosing with the very
// next verification login.
func TestConfig_EndpointChangeRequiresStoredSecretsAgain(t *testing.T) {
	b, s, _, logs := emulatorBackend(t, adminGrantPassword)
	var mu sync.Mutex
	var received strings.Builder
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		received.WriteString(r.URL.Path + "?" + string(body) + " " + r.Header.Get("Authorization") + "\n")
		mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"authentication failure"}`))
	}))
	defer evil.Close()

	before := snapshotStorage(t, s)
	for _, verify := range []bool{true, false} {
		resp, err := request(t, b, s, logical.UpdateOperation, "config", map[string]interface{}{
			"login_url": evil.URL, "allow_non_salesforce_url": true, "verify": verify,
		})
		msg := ""
		if e := respErr(resp, err); e != nil {
			msg = e.Error()
		}
		if statusOf(resp, err) != 400 {
			t.Fatalf("verify=%v: want 400, got %d %q", verify, statusOf(resp, err), msg)
		}
		for _, want := range []string{"login_url", "client_secret", "password", "security_token", "never sent to a new endpoint"} {
			if !strings.Contains(msg, want) {
				t.Errorf("verify=%v: error should mention %q: %s", verify, want, msg)
			}
		}
		if strings.Contains(msg, "private_key") {
			t.Errorf("verify=%v: private_key is never sent and need not be given again: %s", verify, msg)
		}
		assertNoSecrets(t, "error", msg, demoAdminPassword, demoAdminToken, demoClientSecret)
		assertSameStorage(t, before, snapshotStorage(t, s))
	}

	// Re-entering some of them is not enough: the error names the rest.
	resp, err := request(t, b, s, logical.UpdateOperation, "config", map[string]interface{}{
		"login_url": evil.URL, "client_secret": "caller-chosen-secret", "password": "Caller-Chosen-1",
	})
	if msg := fmt.Sprint(respErr(resp, err)); statusOf(resp, err) != 400 || !strings.Contains(msg, "give security_token again") {
		t.Errorf("want 400 naming only security_token, got %d %s", statusOf(resp, err), msg)
	}
	assertSameStorage(t, before, snapshotStorage(t, s))

	mu.Lock()
	if got := received.String(); got != "" {
		t.Errorf("a refused write still called the new host: %s", got)
	}
	mu.Unlock()
	assertNoSecrets(t, "log output", logs.String(), demoAdminPassword, demoAdminToken, demoClientSecret)

	// With every secret given again the move succeeds: they are the
	// caller's own now. The new endpoint is another emulated org.
	other := emulator.NewTestServer(t, emulator.DefaultSeed())
	mustWrite(t, b, s, "config", map[string]interface{}{
		"login_url": other.LoginURL(), "client_secret": demoClientSecret,
		"password": demoAdminPassword, "security_token": demoAdminToken,
	})
	if got := other.Calls("oauth.token"); got != 1 {
		t.Errorf("verification at the new login_url: want 1 token call, got %d", got)
	}
	if got := mustRead(t, b, s, "config")["login_url"]; got != other.LoginURL() {
		t.Errorf("login_url = %v, want %s", got, other.LoginURL())
	}
}

// Only changes that move or widen the endpoint ask for the secrets; a
// secret the new grant does not need may be cleared instead of given, and
// a stored private key never has to be given again.
func TestConfig_EndpointChangeClearingAndPrivateKey(t *testing.T) {
	t.Run("unchanged endpoint", func(t *testing.T) {
		b, s := getTestBackend(t)
		newFakeClient().install(b)
		mustWrite(t, b, s, "config", fakeConfig())
		// The same login_url in another spelling, and the opt-in turned
		// off (it already is), move nothing.
		mustWrite(t, b, s, "config", map[string]interface{}{
			"login_url": "https://FAKE.my.salesforce.com/", "allow_non_salesforce_url": false, "api_version": "67.0",
		})
	})
	t.Run("opt-in turned off", func(t *testing.T) {
		b, s := getTestBackend(t)
		newFakeClient().install(b)
		data := fakeConfig()
		data["allow_non_salesforce_url"] = true
		mustWrite(t, b, s, "config", data)
		mustWrite(t, b, s, "config", map[string]interface{}{"allow_non_salesforce_url": false})
	})
	t.Run("unneeded secrets cleared", func(t *testing.T) {
		b, s, _, _ := emulatorBackend(t, adminGrantPassword)
		other := emulator.NewTestServer(t, emulator.DefaultSeed())
		mustWrite(t, b, s, "config", map[string]interface{}{
			"login_url": other.MyDomainURL(), "grant_type": adminGrantClientCredentials,
			"client_secret": demoClientSecret, "password": "", "security_token": "",
		})
		cfg, err := readConfig(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Password != "" || cfg.SecurityToken != "" || cfg.ClientSecret != demoClientSecret {
			t.Errorf("cleared secrets still stored (password %v, token %v) or client secret lost", cfg.Password != "", cfg.SecurityToken != "")
		}
		if other.Calls("oauth.token") != 1 {
			t.Errorf("want the new endpoint verified once, got %d token calls", other.Calls("oauth.token"))
		}
	})
	t.Run("private key stays", func(t *testing.T) {
		b, s, _, _ := emulatorBackend(t, adminGrantJWTBearer)
		other := emulator.NewTestServer(t, emulator.DefaultSeed())
		// The key never leaves Vault; the new host gets an assertion
		// signed for its own audience.
		mustWrite(t, b, s, "config", map[string]interface{}{"login_url": other.MyDomainURL()})
		if other.Calls("oauth.token") != 1 {
			t.Errorf("want the new endpoint verified with the stored key, got %d token calls", other.Calls("oauth.token"))
		}
		if got := mustRead(t, b, s, "config")["private_key_set"]; got != true {
			t.Errorf("private_key_set = %v", got)
		}
	})
}
