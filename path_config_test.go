package salesforce

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
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

type badConfigInput struct {
	field      string
	data       map[string]interface{}
	updateOnly bool
}

// badConfigInputs are refused writes: each names its field.
func badConfigInputs(t testing.TB) []badConfigInput {
	coreTestKeys(t)
	type tc = badConfigInput
	one := func(field string, v interface{}) tc { return tc{field: field, data: map[string]interface{}{field: v}} }
	// update changes the endpoint of the stored fakeConfig() without
	// giving its client secret again: the error names both.
	update := func(field string, data map[string]interface{}) tc {
		return tc{field: field, data: data, updateOnly: true}
	}
	return []tc{
		one("login_url", "https://a..salesforce.com"),
		one("login_url", "https://fake.my.salesforce.com."),
		one("login_url", "https://evil.com\u3002.salesforce.com"),
		one("login_url", "https://f\u00e4ke.my.salesforce.com"),
		update("login_url", map[string]interface{}{"login_url": "https://other.my.salesforce.com"}),
		update("login_url", map[string]interface{}{"login_url": "https://other.my.salesforce.com", "verify": false}),
		update("client_secret", map[string]interface{}{"login_url": "https://other.my.salesforce.com", "client_id": fakeClientID}),
		update("allow_non_salesforce_url", map[string]interface{}{"allow_non_salesforce_url": true}),
		update("client_secret", map[string]interface{}{"allow_non_salesforce_url": true, "verify": false}),
		update("ca_cert", map[string]interface{}{"ca_cert": coreTestCACertPEM}),
		update("client_secret", map[string]interface{}{"ca_cert": coreTestCACertPEM, "verify": false}),
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
		{field: "private_key", data: map[string]interface{}{"grant_type": "jwt_bearer"}},
		{field: "username", data: map[string]interface{}{"grant_type": "password"}},
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
			if tc.updateOnly && !existing {
				continue
			}
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

func TestConfig_HelpSaysUpdateIsRootForTheMount(t *testing.T) {
	b, s := getTestBackend(t)
	resp, err := request(t, b, s, logical.HelpOperation, "config", nil)
	if err != nil || resp == nil {
		t.Fatalf("help: %v", err)
	}
	help := fmt.Sprint(resp.Data["help"])
	for _, want := range []string{"like root for this mount", "Stored secrets are never sent to a new endpoint", "private_key"} {
		if !strings.Contains(help, want) {
			t.Errorf("config help should say %q", want)
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
