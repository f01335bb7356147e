package salesforce

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// etlAccount is a valid account of the fake org.
func etlAccount() map[string]interface{} {
	return map[string]interface{}{
		"username":       "etl@fake.test",
		"password":       "Fake-Etl-Pass-22",
		"security_token": "FAKEETLTOKEN0000000",
		"description":    "nightly ETL",
	}
}

// fakeBackend is a configured backend talking to a fake org.
func fakeBackend(t *testing.T) (*backend, logical.Storage, *fakeClient, *logBuffer) {
	t.Helper()
	b, s, logs := getTestBackendWithLogs(t)
	fake := newFakeClient()
	fake.install(b)
	mustWrite(t, b, s, "config", fakeConfig())
	return b, s, fake, logs
}

func TestAccount_CreateReadDelete(t *testing.T) {
	b, s, fake, _ := fakeBackend(t)
	mustWrite(t, b, s, "accounts/etl", etlAccount())
	if fake.count("soap.login") != 1 || fake.count("oauth.password") != 0 {
		t.Errorf("want one SOAP login to verify, got soap=%d oauth=%d", fake.count("soap.login"), fake.count("oauth.password"))
	}

	data := mustRead(t, b, s, "accounts/etl")
	if data["username"] != "etl@fake.test" || data["description"] != "nightly ETL" ||
		data["security_token_set"] != true || data["user_id"] != "005000000000002AAA" {
		t.Errorf("account read = %v", data)
	}
	if data["created_at"] == "" || data["last_updated"] == "" {
		t.Errorf("timestamps missing: %v", data)
	}
	for _, secret := range []string{"password", "security_token", "password_with_token"} {
		if _, ok := data[secret]; ok {
			t.Errorf("account read returned %s", secret)
		}
	}

	if resp, err := request(t, b, s, logical.DeleteOperation, "accounts/etl", nil); respErr(resp, err) != nil {
		t.Fatal(respErr(resp, err))
	}
	if resp, err := request(t, b, s, logical.ReadOperation, "accounts/etl", nil); err != nil || resp != nil {
		t.Errorf("read after delete = %v, %v", resp, err)
	}
	if keys := snapshotStorage(t, s); len(keys) != 1 {
		t.Errorf("storage after delete should hold only config: %v", keys)
	}
}

func TestAccount_TrustedUserWithoutToken(t *testing.T) {
	b, s, _, _ := fakeBackend(t)
	mustWrite(t, b, s, "accounts/trusted", map[string]interface{}{
		"username": "trust@fake.test", "password": "Fake-Trust-Pass-3",
	})
	if got := mustRead(t, b, s, "accounts/trusted")["security_token_set"]; got != false {
		t.Errorf("security_token_set = %v", got)
	}
}

func TestAccount_UpdateKeepsAndChecks(t *testing.T) {
	b, s, fake, _ := fakeBackend(t)
	mustWrite(t, b, s, "accounts/etl", etlAccount())
	created := mustRead(t, b, s, "accounts/etl")["created_at"]

	// A description change needs no login.
	logins := fake.count("soap.login")
	mustWrite(t, b, s, "accounts/etl", map[string]interface{}{"description": "moved to team B"})
	if fake.count("soap.login") != logins {
		t.Errorf("a description change logged in")
	}
	data := mustRead(t, b, s, "accounts/etl")
	if data["description"] != "moved to team B" || data["created_at"] != created || data["security_token_set"] != true {
		t.Errorf("after update: %v", data)
	}

	// A new password is checked and replaces the old one.
	fake.users["etl@fake.test"].password = "Fake-Etl-Pass-33"
	mustWrite(t, b, s, "accounts/etl", map[string]interface{}{"password": "Fake-Etl-Pass-33"})
	if fake.count("soap.login") != logins+1 {
		t.Errorf("a password change was not checked")
	}
	creds := mustRead(t, b, s, "creds/etl")
	if creds["password"] != "Fake-Etl-Pass-33" || creds["security_token"] != "FAKEETLTOKEN0000000" {
		t.Errorf("creds after password change: user=%v", creds["username"])
	}

	// Same username again is fine; a different one is refused.
	mustWrite(t, b, s, "accounts/etl", map[string]interface{}{"username": "etl@fake.test"})
	before := snapshotStorage(t, s)
	resp, err := request(t, b, s, logical.UpdateOperation, "accounts/etl", map[string]interface{}{"username": "other@fake.test"})
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "username cannot be changed") {
		t.Errorf("username change: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, s))

	// An empty security_token removes the stored token (the login is
	// then refused by the fake, so skip the check).
	mustWrite(t, b, s, "accounts/etl", map[string]interface{}{"security_token": "", "verify": false})
	if mustRead(t, b, s, "accounts/etl")["security_token_set"] != false {
		t.Errorf("token not removed")
	}
}

func TestAccount_RejectedCredentialStoresNothing(t *testing.T) {
	cases := []struct {
		name     string
		data     map[string]interface{}
		code     string
		hintPart string
	}{
		{"wrong password", map[string]interface{}{"username": "etl@fake.test", "password": "Wrong-Pass-999", "security_token": "FAKEETLTOKEN0000000"},
			"INVALID_LOGIN", "locked"},
		{"missing token", map[string]interface{}{"username": "etl@fake.test", "password": "Fake-Etl-Pass-22"},
			"LOGIN_MUST_USE_SECURITY_TOKEN", "set security_token"},
		{"unknown user", map[string]interface{}{"username": "nobody@fake.test", "password": "Whatever-Pass-1"},
			"INVALID_LOGIN", "check username"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, s, fake, _ := fakeBackend(t)
			before := snapshotStorage(t, s)
			resp, err := request(t, b, s, logical.UpdateOperation, "accounts/a", tc.data)
			if statusOf(resp, err) != 400 {
				t.Fatalf("want 400, got %d: %v", statusOf(resp, err), respErr(resp, err))
			}
			msg := respErr(resp, err).Error()
			if !strings.Contains(msg, tc.code) || !strings.Contains(msg, tc.hintPart) || !strings.Contains(msg, "nothing was stored") {
				t.Errorf("message lacks code %s or hint %q: %s", tc.code, tc.hintPart, msg)
			}
			assertSameStorage(t, before, snapshotStorage(t, s))
			// A rejected credential is not tried a second way: each failed
			// login counts toward lockout.
			if fake.count("oauth.password") != 0 {
				t.Errorf("rejected credential was retried with the password grant")
			}
		})
	}
}

func TestAccount_FallsBackWhenSOAPLoginUnavailable(t *testing.T) {
	for _, code := range []string{"UNSUPPORTED_API_VERSION", "API_CURRENTLY_DISABLED"} {
		t.Run(code, func(t *testing.T) {
			b, s, fake, _ := fakeBackend(t)
			fake.soapUnavailableCode = code
			mustWrite(t, b, s, "accounts/etl", etlAccount())
			if fake.count("soap.login") != 1 || fake.count("oauth.password") != 1 {
				t.Errorf("want SOAP then password grant, got soap=%d oauth=%d", fake.count("soap.login"), fake.count("oauth.password"))
			}
			if mustRead(t, b, s, "accounts/etl")["user_id"] != "005000000000002AAA" {
				t.Errorf("user id not learned through the password grant")
			}

			// A credential the fallback rejects is reported with its code.
			before := snapshotStorage(t, s)
			resp, err := request(t, b, s, logical.UpdateOperation, "accounts/etl", map[string]interface{}{"password": "Wrong-Pass-999"})
			if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "invalid_grant") {
				t.Errorf("want 400 invalid_grant, got %d %v", statusOf(resp, err), respErr(resp, err))
			}
			assertSameStorage(t, before, snapshotStorage(t, s))
		})
	}
}

func TestAccount_TransientFailureIs5xx(t *testing.T) {
	b, s, fake, _ := fakeBackend(t)
	fake.failTransient = true
	before := snapshotStorage(t, s)
	resp, err := request(t, b, s, logical.UpdateOperation, "accounts/etl", etlAccount())
	if got := statusOf(resp, err); got != 502 {
		t.Fatalf("want 502, got %d: %v", got, respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, s))
}

func TestAccount_WithoutConfig(t *testing.T) {
	b, s := getTestBackend(t)
	newFakeClient().install(b)
	resp, err := request(t, b, s, logical.UpdateOperation, "accounts/etl", etlAccount())
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "write config first") {
		t.Fatalf("want 400 asking for config, got %d %v", statusOf(resp, err), respErr(resp, err))
	}
	data := etlAccount()
	data["verify"] = false
	resp = mustWrite(t, b, s, "accounts/etl", data)
	if resp == nil || len(resp.Warnings) == 0 {
		t.Errorf("an unchecked credential should come with a warning")
	}
	if got := mustRead(t, b, s, "accounts/etl")["username"]; got != "etl@fake.test" {
		t.Errorf("username = %v", got)
	}
}

func TestAccount_AdminAndDuplicateUsersRefused(t *testing.T) {
	b, s, _ := fakeBackendPasswordGrant(t)
	before := snapshotStorage(t, s)
	resp, err := request(t, b, s, logical.UpdateOperation, "accounts/admin", map[string]interface{}{
		"username": "Admin@Fake.Test", "password": "Fake-Admin-Pass-1", "security_token": "FAKEADMINTOKEN000000",
	})
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "admin user") {
		t.Errorf("admin user as account: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, s))

	mustWrite(t, b, s, "accounts/etl", etlAccount())
	before = snapshotStorage(t, s)
	resp, err = request(t, b, s, logical.UpdateOperation, "accounts/etl-copy", etlAccount())
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "already managed") {
		t.Errorf("duplicate user: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, s))
}

func fakeBackendPasswordGrant(t *testing.T) (*backend, logical.Storage, *fakeClient) {
	t.Helper()
	b, s := getTestBackend(t)
	fake := newFakeClient()
	fake.install(b)
	mustWrite(t, b, s, "config", map[string]interface{}{
		"login_url": "https://fake.my.salesforce.com", "client_id": fakeClientID, "client_secret": fakeClientSecret,
		"username": "admin@fake.test", "password": "Fake-Admin-Pass-1", "security_token": "FAKEADMINTOKEN000000",
	})
	return b, s, fake
}

func TestAccount_NestedNamesAndList(t *testing.T) {
	b, s := getTestBackend(t)
	newFakeClient().install(b)
	names := []string{"etl", "team-a/etl", "team-a/sub/bi.prod", "team-b/x@y"}
	for i, name := range names {
		mustWrite(t, b, s, "accounts/"+name, map[string]interface{}{
			"username": "user" + string(rune('a'+i)) + "@fake.test", "password": "Some-Pass-123", "verify": false,
		})
	}
	list := func(path string) []string {
		resp, err := request(t, b, s, logical.ListOperation, path, nil)
		if respErr(resp, err) != nil {
			t.Fatalf("list %s: %v", path, respErr(resp, err))
		}
		keys, _ := resp.Data["keys"].([]string)
		sort.Strings(keys)
		return keys
	}
	if got, want := list("accounts/"), []string{"etl", "team-a/", "team-b/"}; !reflect.DeepEqual(got, want) {
		t.Errorf("list accounts/ = %v, want %v", got, want)
	}
	if got, want := list("accounts/team-a/"), []string{"etl", "sub/"}; !reflect.DeepEqual(got, want) {
		t.Errorf("list accounts/team-a/ = %v, want %v", got, want)
	}
	if got := mustRead(t, b, s, "accounts/team-a/sub/bi.prod")["username"]; got != "userc@fake.test" {
		t.Errorf("nested read username = %v", got)
	}
	if got := mustRead(t, b, s, "creds/team-a/sub/bi.prod")["password"]; got != "Some-Pass-123" {
		t.Errorf("nested creds password mismatch")
	}
}

func TestAccount_NamePatternLeavesSubpathsToOthers(t *testing.T) {
	b, _ := getTestBackend(t)
	accountPattern := "^accounts/(?P<name>" + accountNameRegex + ")$"
	routesTo := func(path string) string {
		if p := b.Route(path); p != nil {
			return p.Pattern
		}
		return "<none>"
	}
	for _, path := range []string{
		"accounts/etl", "accounts/diagnose", "accounts/security-token", "accounts/a/diagnosed",
		"accounts/a/diagnos", "accounts/a/security-tokens", "accounts/a/security", "accounts/a/b/c",
		"accounts/a/Diagnose", "accounts/x@y.com", "accounts/a/d", "accounts/a/s",
	} {
		if got := routesTo(path); got != accountPattern {
			t.Errorf("%s should be an account path, routes to %s", path, got)
		}
	}
	for path, want := range map[string]string{
		"accounts/a/diagnose":                  "/diagnose$",
		"accounts/team/a/diagnose":             "/diagnose$",
		"accounts/a/security-token":            "/security-token$",
		"accounts/a/security-token/x/diagnose": "/diagnose$",
		"accounts/a/":                          "/)*))?$", // the list of folder a/
		"accounts//a":                          "<none>",
		"accounts/a b":                         "<none>",
	} {
		if got := routesTo(path); !strings.HasSuffix(got, want) {
			t.Errorf("%s routes to %s, want a pattern ending in %s", path, got, want)
		}
	}
}

func TestAccount_BadInputs(t *testing.T) {
	long := strings.Repeat("x", maxDescriptionLength+1)
	type tc struct {
		field  string
		path   string
		data   map[string]interface{}
		create bool
	}
	with := func(field string, v interface{}) map[string]interface{} {
		d := etlAccount()
		d[field] = v
		return d
	}
	without := func(field string) map[string]interface{} {
		d := etlAccount()
		delete(d, field)
		return d
	}
	cases := []tc{
		{"name", "accounts/a/../b", etlAccount(), true},
		{"name", "accounts/./b", etlAccount(), true},
		{"username", "accounts/new", without("username"), true},
		{"username", "accounts/new", with("username", "not-an-email"), true},
		{"username", "accounts/new", with("username", "sp ace@fake.test"), true},
		{"username", "accounts/etl", map[string]interface{}{"username": "other@fake.test"}, false},
		{"username", "accounts/etl", map[string]interface{}{"username": "x"}, false},
		{"password", "accounts/new", without("password"), true},
		{"password", "accounts/new", with("password", ""), true},
		{"password", "accounts/new", with("password", "a\nb"), true},
		{"password", "accounts/etl", map[string]interface{}{"password": ""}, false},
		{"security_token", "accounts/new", with("security_token", "tok-en!"), true},
		{"security_token", "accounts/etl", map[string]interface{}{"security_token": "has space"}, false},
		{"description", "accounts/new", with("description", long), true},
		{"description", "accounts/etl", map[string]interface{}{"description": "bell\a"}, false},
		{"verify", "accounts/new", with("verify", "perhaps"), true},
		{"verify", "accounts/etl", map[string]interface{}{"verify": "perhaps"}, false},
	}
	b, s, fake, _ := fakeBackend(t)
	mustWrite(t, b, s, "accounts/etl", etlAccount())
	logins := fake.count("soap.login")
	for _, c := range cases {
		before := snapshotStorage(t, s)
		resp, err := request(t, b, s, logical.UpdateOperation, c.path, c.data)
		status := statusOf(resp, err)
		msg := ""
		if e := respErr(resp, err); e != nil {
			msg = e.Error()
		}
		if status < 400 || status >= 500 || !strings.Contains(msg, c.field) {
			t.Errorf("%s %s=%.30q: want a 4xx naming %s, got %d %q", c.path, c.field, c.data[c.field], c.field, status, msg)
		}
		assertSameStorage(t, before, snapshotStorage(t, s))
	}
	if fake.count("soap.login") != logins {
		t.Errorf("bad input reached Salesforce: %d logins", fake.count("soap.login")-logins)
	}
}

func TestAccount_EmulatorLifecycle(t *testing.T) {
	b, s, srv, _ := emulatorBackend(t, adminGrantJWTBearer)
	srv.ResetCalls()

	mustWrite(t, b, s, "accounts/integration", map[string]interface{}{
		"username": demoIntegrationUser, "password": demoIntegrationPass, "security_token": demoIntegrationToken,
		"description": "the ETL integration",
	})
	if srv.Calls("soap.login") != 1 || srv.Calls("oauth.token") != 0 {
		t.Errorf("want one SOAP login with the account's own credential, got soap=%d token=%d", srv.Calls("soap.login"), srv.Calls("oauth.token"))
	}
	acct := mustRead(t, b, s, "accounts/integration")
	userID, _ := acct["user_id"].(string)
	if !strings.HasPrefix(userID, "005") || len(userID) != 18 {
		t.Errorf("user_id = %q", userID)
	}
	admin, err := b.adminSession(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if admin.UserID == userID {
		t.Errorf("the account was checked with the admin identity")
	}

	// What an application does with creds/: log in with password_with_token.
	creds := mustRead(t, b, s, "creds/integration")
	client, err := newClient(sfapi.Config{LoginURL: creds["login_url"].(string), APIVersion: "66.0", SOAPAPIVersion: "64.0"})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := client.SOAPLogin(t.Context(), creds["username"].(string), creds["password_with_token"].(string))
	if err != nil || sess.UserID != userID {
		t.Fatalf("login with the served credential: %v", err)
	}

	// A user inside the profile's login IP ranges needs no token.
	mustWrite(t, b, s, "accounts/trusted", map[string]interface{}{"username": demoTrustedUser, "password": demoTrustedPassword})
	if got := mustRead(t, b, s, "creds/trusted")["password_with_token"]; got != demoTrustedPassword {
		t.Errorf("trusted creds: password_with_token should be the bare password")
	}
}

func TestAccount_EmulatorRejectedCredentials(t *testing.T) {
	cases := []struct {
		name string
		data map[string]interface{}
		code string
	}{
		{"wrong password", map[string]interface{}{"username": demoIntegrationUser, "password": "Wrong-Pass-1234", "security_token": demoIntegrationToken}, "INVALID_LOGIN"},
		{"missing token", map[string]interface{}{"username": demoIntegrationUser, "password": demoIntegrationPass}, "LOGIN_MUST_USE_SECURITY_TOKEN"},
		{"wrong token", map[string]interface{}{"username": demoIntegrationUser, "password": demoIntegrationPass, "security_token": "WRONGTOKEN000000000000000"}, "INVALID_LOGIN"},
		{"unknown user", map[string]interface{}{"username": "ghost@acme.demo", "password": "Ghost-Pass-1234"}, "INVALID_LOGIN"},
	}
	b, s, srv, _ := emulatorBackend(t, adminGrantClientCredentials)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv.ResetCalls()
			before := snapshotStorage(t, s)
			resp, err := request(t, b, s, logical.UpdateOperation, "accounts/integration", tc.data)
			if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), tc.code) {
				t.Errorf("want 400 with %s, got %d %v", tc.code, statusOf(resp, err), respErr(resp, err))
			}
			assertSameStorage(t, before, snapshotStorage(t, s))
			if srv.Calls("soap.login") != 1 || srv.Calls("oauth.token") != 0 {
				t.Errorf("a rejected credential must cost exactly one login: soap=%d token=%d", srv.Calls("soap.login"), srv.Calls("oauth.token"))
			}
		})
	}
}

func TestAccount_EmulatorSOAPLoginDisabled(t *testing.T) {
	b, s, srv, _ := emulatorBackend(t, adminGrantClientCredentials)
	srv.SetOrg(func(o *emulator.Org) { o.SOAPLoginDisabled = true })
	srv.ResetCalls()
	mustWrite(t, b, s, "accounts/integration", map[string]interface{}{
		"username": demoIntegrationUser, "password": demoIntegrationPass, "security_token": demoIntegrationToken,
	})
	if srv.Calls("soap.login") != 1 || srv.Calls("oauth.token") != 1 {
		t.Errorf("want SOAP login then the username-password flow, got soap=%d token=%d", srv.Calls("soap.login"), srv.Calls("oauth.token"))
	}
	if id, _ := mustRead(t, b, s, "accounts/integration")["user_id"].(string); !strings.HasPrefix(id, "005") {
		t.Errorf("user_id = %q", id)
	}

	// With the username-password flow blocked too, nothing can check the
	// credential: the write fails and stores nothing.
	srv.SetOrg(func(o *emulator.Org) { o.BlockUsernamePasswordFlow = true })
	before := snapshotStorage(t, s)
	resp, err := request(t, b, s, logical.UpdateOperation, "accounts/integration", map[string]interface{}{"password": "Integ-Pass-5678"})
	if st := statusOf(resp, err); st != 400 {
		t.Errorf("want 400, got %d %v", st, respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, s))
}

func TestAccount_EmulatorOutage(t *testing.T) {
	b, s, srv, _ := emulatorBackend(t, adminGrantJWTBearer)
	srv.InjectFault("soap.login", emulator.Fault{Status: 503, Body: "upstream unavailable"})
	before := snapshotStorage(t, s)
	resp, err := request(t, b, s, logical.UpdateOperation, "accounts/integration", map[string]interface{}{
		"username": demoIntegrationUser, "password": demoIntegrationPass, "security_token": demoIntegrationToken,
	})
	if st := statusOf(resp, err); st < 500 {
		t.Errorf("an outage must not look like a rejected credential: got %d %v", st, respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, s))
}
