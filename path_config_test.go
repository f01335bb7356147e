package salesforce

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// Test keys are generated once per test binary.
var (
	coreTestKeysOnce  sync.Once
	coreTestRSAKey    *rsa.PrivateKey
	coreTestPKCS1PEM  string
	coreTestPKCS8PEM  string
	coreTestSmallPEM  string
	coreTestECPEM     string
	coreTestCACertPEM string
)

func coreTestKeys(t testing.TB) {
	t.Helper()
	coreTestKeysOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		coreTestRSAKey = key
		coreTestPKCS1PEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			panic(err)
		}
		coreTestPKCS8PEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))

		small, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			panic(err)
		}
		coreTestSmallPEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}))

		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
		if err != nil {
			panic(err)
		}
		coreTestECPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))

		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "test CA"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
		}
		certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ec.PublicKey, ec)
		if err != nil {
			panic(err)
		}
		coreTestCACertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}))
	})
}

// fakeConfig is a valid client_credentials config for the fake client.
func fakeConfig() map[string]interface{} {
	return map[string]interface{}{
		"login_url":     "https://fake.my.salesforce.com",
		"client_id":     fakeClientID,
		"client_secret": fakeClientSecret,
	}
}

func TestConfig_WriteReadDefaults(t *testing.T) {
	b, s := getTestBackend(t)
	fake := newFakeClient()
	fake.install(b)

	if resp, err := request(t, b, s, logical.ReadOperation, "config", nil); err != nil || resp != nil {
		t.Fatalf("read before write: want no config, got %v %v", resp, err)
	}
	mustWrite(t, b, s, "config", fakeConfig())
	if got := fake.count("oauth.client_credentials"); got != 1 {
		t.Errorf("verification: want 1 client_credentials login, got %d", got)
	}

	data := mustRead(t, b, s, "config")
	want := map[string]interface{}{
		"login_url":                "https://fake.my.salesforce.com",
		"allow_non_salesforce_url": false,
		"api_version":              "66.0",
		"soap_api_version":         "64.0",
		"client_id":                fakeClientID,
		"grant_type":               "client_credentials",
		"request_timeout":          int64(30),
		"client_secret_set":        true,
		"private_key_set":          false,
		"password_set":             false,
		"security_token_set":       false,
	}
	for k, v := range want {
		if data[k] != v {
			t.Errorf("config %s = %#v, want %#v", k, data[k], v)
		}
	}
	for _, secretField := range []string{"client_secret", "private_key", "password", "security_token"} {
		if _, ok := data[secretField]; ok {
			t.Errorf("config read returned %s", secretField)
		}
	}
}

func TestConfig_GrantTypeDefault(t *testing.T) {
	coreTestKeys(t)
	cases := []struct {
		name string
		data map[string]interface{}
		want string
	}{
		{"private key means jwt_bearer", map[string]interface{}{
			"client_id": fakeClientID, "username": "admin@fake.test", "private_key": coreTestPKCS1PEM,
		}, "jwt_bearer"},
		{"secret without user means client_credentials", map[string]interface{}{
			"client_id": fakeClientID, "client_secret": fakeClientSecret,
		}, "client_credentials"},
		{"username and password mean password", map[string]interface{}{
			"client_id": fakeClientID, "client_secret": fakeClientSecret,
			"username": "admin@fake.test", "password": "Fake-Admin-Pass-1", "security_token": "FAKEADMINTOKEN000000",
		}, "password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, s := getTestBackend(t)
			newFakeClient().install(b)
			tc.data["login_url"] = "https://fake.my.salesforce.com"
			mustWrite(t, b, s, "config", tc.data)
			if got := mustRead(t, b, s, "config")["grant_type"]; got != tc.want {
				t.Errorf("grant_type = %v, want %s", got, tc.want)
			}
		})
	}
}

func TestConfig_PrivateKeyFormats(t *testing.T) {
	coreTestKeys(t)
	for name, keyPEM := range map[string]string{"pkcs1": coreTestPKCS1PEM, "pkcs8": coreTestPKCS8PEM} {
		t.Run(name, func(t *testing.T) {
			b, s := getTestBackend(t)
			fake := newFakeClient()
			fake.install(b)
			mustWrite(t, b, s, "config", map[string]interface{}{
				"client_id": fakeClientID, "username": "admin@fake.test", "private_key": keyPEM,
			})
			if fake.count("oauth.jwt") != 1 {
				t.Errorf("want one JWT bearer login to verify, got %d", fake.count("oauth.jwt"))
			}
			data := mustRead(t, b, s, "config")
			if data["private_key_set"] != true {
				t.Errorf("private_key_set = %v", data["private_key_set"])
			}
			if want := publicKeyFingerprint(&coreTestRSAKey.PublicKey); data["public_key_fingerprint"] != want || !strings.HasPrefix(want, "SHA256:") {
				t.Errorf("public_key_fingerprint = %v, want %s", data["public_key_fingerprint"], want)
			}
			assertNoSecrets(t, "config read", responseText(&logical.Response{Data: data}, nil), keyPEM, pemBody(keyPEM))
		})
	}
}

// pemBody returns a distinctive slice of a PEM's base64 body.
func pemBody(p string) string {
	lines := strings.Split(strings.TrimSpace(p), "\n")
	if len(lines) < 3 {
		return p
	}
	return lines[2]
}

func TestConfig_UpdateMergesAndKeepsSecrets(t *testing.T) {
	b, s := getTestBackend(t)
	fake := newFakeClient()
	fake.install(b)
	mustWrite(t, b, s, "config", fakeConfig())
	mustWrite(t, b, s, "config", map[string]interface{}{"api_version": "67.0", "request_timeout": "45s"})

	data := mustRead(t, b, s, "config")
	if data["api_version"] != "67.0" || data["request_timeout"] != int64(45) {
		t.Errorf("update not applied: %v", data)
	}
	if data["client_secret_set"] != true || data["login_url"] != "https://fake.my.salesforce.com" || data["grant_type"] != "client_credentials" {
		t.Errorf("update lost earlier settings: %v", data)
	}
	cfg, err := readConfig(t.Context(), s)
	if err != nil || cfg.ClientSecret != fakeClientSecret {
		t.Fatalf("stored client secret lost: %v", err)
	}
	cc, err := cfg.clientConfig()
	if err != nil || cc.RequestTimeout != 45*time.Second || cc.APIVersion != "67.0" || cc.SOAPAPIVersion != "64.0" {
		t.Errorf("clientConfig = %+v, %v", cc, err)
	}
}

func TestConfig_VerifyFailureStoresNothing(t *testing.T) {
	b, s := getTestBackend(t)
	fake := newFakeClient()
	fake.install(b)

	bad := fakeConfig()
	bad["client_secret"] = "wrong-client-secret-1"
	before := snapshotStorage(t, s)
	resp, err := request(t, b, s, logical.UpdateOperation, "config", bad)
	if statusOf(resp, err) != 400 {
		t.Fatalf("want 400, got %d: %v", statusOf(resp, err), respErr(resp, err))
	}
	if msg := respErr(resp, err).Error(); !strings.Contains(msg, "invalid_client") || !strings.Contains(msg, "verify=false") {
		t.Errorf("error should carry Salesforce's code and the way out: %s", msg)
	}
	assertSameStorage(t, before, snapshotStorage(t, s))

	// verify=false stores the unchecked settings without any login.
	calls := fake.count("oauth.client_credentials")
	bad["verify"] = false
	mustWrite(t, b, s, "config", bad)
	if fake.count("oauth.client_credentials") != calls {
		t.Errorf("verify=false still logged in")
	}
	if mustRead(t, b, s, "config")["client_secret_set"] != true {
		t.Errorf("config not stored with verify=false")
	}
}

func TestConfig_ClientCredentialsNeedMyDomain(t *testing.T) {
	b, s := getTestBackend(t)
	newFakeClient().install(b)
	data := fakeConfig()
	data["login_url"] = "https://login.salesforce.com"
	resp, err := request(t, b, s, logical.UpdateOperation, "config", data)
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "My Domain") {
		t.Errorf("want 400 pointing to the My Domain URL, got %v", respErr(resp, err))
	}
	data["verify"] = false
	if resp := mustWrite(t, b, s, "config", data); resp == nil || len(resp.Warnings) == 0 {
		t.Errorf("an unchecked client_credentials config on login.salesforce.com should warn")
	}
}

func TestConfig_VerifyTransientIs5xx(t *testing.T) {
	b, s := getTestBackend(t)
	fake := newFakeClient()
	fake.failTransient = true
	fake.install(b)
	before := snapshotStorage(t, s)
	resp, err := request(t, b, s, logical.UpdateOperation, "config", fakeConfig())
	if got := statusOf(resp, err); got != 502 {
		t.Fatalf("want 502 for an unreachable Salesforce, got %d: %v", got, respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, s))
}

func TestConfig_Delete(t *testing.T) {
	b, s := getTestBackend(t)
	newFakeClient().install(b)
	mustWrite(t, b, s, "config", fakeConfig())
	if _, err := b.adminSession(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if resp, err := request(t, b, s, logical.DeleteOperation, "config", nil); respErr(resp, err) != nil {
		t.Fatal(respErr(resp, err))
	}
	if resp, err := request(t, b, s, logical.ReadOperation, "config", nil); err != nil || resp != nil {
		t.Errorf("config still readable after delete: %v %v", resp, err)
	}
	if _, err := b.adminSession(t.Context(), s); err == nil || !strings.Contains(err.Error(), "write config first") {
		t.Errorf("admin session after delete: want errConfigMissing, got %v", err)
	}
}

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

func TestConfig_LoginURLs(t *testing.T) {
	accepted := map[string]string{
		"https://login.salesforce.com":                      "https://login.salesforce.com",
		"https://test.salesforce.com/":                      "https://test.salesforce.com",
		"https://Acme.My.Salesforce.com":                    "https://acme.my.salesforce.com",
		"https://acme--dev.sandbox.my.salesforce.com":       "https://acme--dev.sandbox.my.salesforce.com",
		"https://acme.my.salesforce.mil":                    "https://acme.my.salesforce.mil",
		"https://acme.lightning.force.com":                  "https://acme.lightning.force.com",
		"https://acme.my.salesforce-setup.com":              "https://acme.my.salesforce-setup.com",
		"https://login.salesforce.com:443":                  "https://login.salesforce.com",
		"https://na1.cloudforce.com":                        "https://na1.cloudforce.com",
		"https://acme.my.salesforce.com/":                   "https://acme.my.salesforce.com",
		"https://acme.sandbox.my.salesforce.com":            "https://acme.sandbox.my.salesforce.com",
		"https://acme--uat.sandbox.my.salesforce-setup.com": "https://acme--uat.sandbox.my.salesforce-setup.com",
	}
	for in, want := range accepted {
		got, err := validateLoginURL(in, false)
		if err != nil || got != want {
			t.Errorf("validateLoginURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	needOptIn := []string{
		"http://login.salesforce.com",
		"https://evil.example.com",
		"https://salesforce.com.evil.example",
		"https://127.0.0.1",
		"https://[::1]:8443",
		"https://localhost",
		"https://10.0.0.5",
		"https://login.salesforce.com:8443",
		"https://login.salesforce.com/services",
		"https://salesforce.com",
	}
	for _, in := range needOptIn {
		_, err := validateLoginURL(in, false)
		if err == nil || !strings.Contains(err.Error(), "login_url") || !strings.Contains(err.Error(), "allow_non_salesforce_url") {
			t.Errorf("validateLoginURL(%q) without opt-in: %v", in, err)
		}
		if _, err := validateLoginURL(in, true); err != nil {
			t.Errorf("validateLoginURL(%q) with opt-in: %v", in, err)
		}
	}
	alwaysRefused := []string{
		"https://user:pw@login.salesforce.com",
		"https://login.salesforce.com?next=x",
		"https://login.salesforce.com#frag",
		"ftp://login.salesforce.com",
		"login.salesforce.com",
		"",
	}
	for _, in := range alwaysRefused {
		for _, optIn := range []bool{false, true} {
			if _, err := validateLoginURL(in, optIn); err == nil || !strings.Contains(err.Error(), "login_url") {
				t.Errorf("validateLoginURL(%q, %v) = %v, want an error naming login_url", in, optIn, err)
			}
		}
	}
	if _, err := validateLoginURL("https://user:s3cr3t-pw@login.salesforce.com", true); err == nil || strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("userinfo error must not echo the password: %v", err)
	}
}

// badConfigInputs are refused writes: each names its field.
func badConfigInputs(t testing.TB) []struct {
	field string
	data  map[string]interface{}
} {
	coreTestKeys(t)
	type tc = struct {
		field string
		data  map[string]interface{}
	}
	one := func(field string, v interface{}) tc { return tc{field, map[string]interface{}{field: v}} }
	return []tc{
		one("login_url", "http://login.salesforce.com"),
		one("login_url", "https://evil.example.com"),
		one("login_url", "https://127.0.0.1"),
		one("login_url", "https://localhost:8443"),
		one("login_url", "https://admin:pw@fake.my.salesforce.com"),
		one("login_url", "https://fake.my.salesforce.com/services?x=1"),
		one("login_url", "not a url"),
		one("allow_non_salesforce_url", "maybe"),
		one("api_version", "66"),
		one("api_version", "39.0"),
		one("api_version", "sixty"),
		one("soap_api_version", "65.0"),
		one("soap_api_version", "39.0"),
		one("soap_api_version", "64"),
		one("client_id", "has space"),
		one("client_secret", "line\nbreak"),
		one("private_key", "not a key"),
		one("private_key", coreTestECPEM),
		one("private_key", coreTestSmallPEM),
		one("private_key", coreTestCACertPEM),
		one("private_key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"),
		one("username", "no-at-sign"),
		one("username", "two words@fake.test"),
		one("grant_type", "implicit"),
		{"private_key", map[string]interface{}{"grant_type": "jwt_bearer"}},
		{"username", map[string]interface{}{"grant_type": "password"}},
		one("password", "two\nlines"),
		one("security_token", "not-a-token!"),
		one("ca_cert", "not a certificate"),
		one("ca_cert", coreTestPKCS1PEM),
		one("request_timeout", "0s"),
		one("request_timeout", "10m"),
		one("request_timeout", "soon"),
		one("verify", "perhaps"),
	}
}

func TestConfig_BadInputs(t *testing.T) {
	for _, existing := range []bool{false, true} {
		b, s := getTestBackend(t)
		newFakeClient().install(b)
		if existing {
			mustWrite(t, b, s, "config", fakeConfig())
		}
		for _, tc := range badConfigInputs(t) {
			data := map[string]interface{}{}
			if !existing {
				for k, v := range fakeConfig() {
					data[k] = v
				}
			}
			for k, v := range tc.data {
				data[k] = v
			}
			before := snapshotStorage(t, s)
			resp, err := request(t, b, s, logical.UpdateOperation, "config", data)
			status := statusOf(resp, err)
			msg := ""
			if e := respErr(resp, err); e != nil {
				msg = e.Error()
			}
			if status < 400 || status >= 500 || !strings.Contains(msg, tc.field) {
				t.Errorf("existing=%v %s=%.40q: want a 4xx naming %s, got %d %q", existing, tc.field, tc.data[tc.field], tc.field, status, msg)
			}
			assertSameStorage(t, before, snapshotStorage(t, s))
		}
	}
}

func TestConfig_AdminUserCannotBeAccount(t *testing.T) {
	b, s := getTestBackend(t)
	newFakeClient().install(b)
	mustWrite(t, b, s, "config", fakeConfig())
	mustWrite(t, b, s, "accounts/etl", map[string]interface{}{
		"username": "etl@fake.test", "password": "Fake-Etl-Pass-22", "security_token": "FAKEETLTOKEN0000000",
	})
	before := snapshotStorage(t, s)
	resp, err := request(t, b, s, logical.UpdateOperation, "config", map[string]interface{}{
		"grant_type": "password", "username": "ETL@fake.test", "password": "Fake-Etl-Pass-22", "security_token": "FAKEETLTOKEN0000000",
	})
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "username") {
		t.Fatalf("want 400 naming username, got %v", respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, s))
}

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
	sessions := make([]*Session, 32)
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
	err := b.withAdminSession(t.Context(), s, func(c Client, sess *Session) error {
		attempts++
		if attempts == 1 {
			return &Error{Op: "query", Code: "INVALID_SESSION_ID", Kind: KindSession}
		}
		return nil
	})
	if err != nil || attempts != 2 || srv.Calls("oauth.token") != 2 {
		t.Errorf("want one retry with a fresh session: err=%v attempts=%d logins=%d", err, attempts, srv.Calls("oauth.token"))
	}
	attempts = 0
	err = b.withAdminSession(t.Context(), s, func(c Client, sess *Session) error {
		attempts++
		return &Error{Op: "query", Code: "INVALID_SESSION_ID", Kind: KindSession}
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
