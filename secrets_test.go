package salesforce

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// leakRecorder runs requests and keeps everything a caller or an operator
// could see: responses that must not carry secrets, every error, and (via
// the backend's log buffer) every log line.
type leakRecorder struct {
	t      *testing.T
	b      *backend
	s      logical.Storage
	logs   *logBuffer
	public strings.Builder
}

func (r *leakRecorder) do(op logical.Operation, path string, data map[string]interface{}) (*logical.Response, error) {
	r.t.Helper()
	resp, err := request(r.t, r.b, r.s, op, path, data)
	// creds/ exists to return the account's secrets; everything else is
	// public, and so is every error and warning.
	if !strings.HasPrefix(path, "creds/") || respErr(resp, err) != nil {
		r.public.WriteString(path + ": " + responseText(resp, err) + "\n")
	} else if resp != nil {
		r.public.WriteString(strings.Join(resp.Warnings, " "))
	}
	return resp, err
}

func (r *leakRecorder) check(secrets ...string) {
	r.t.Helper()
	assertNoSecrets(r.t, "responses and errors", r.public.String(), secrets...)
	assertNoSecrets(r.t, "log output", r.logs.String(), secrets...)
}

func TestSecret_NeverInReadsErrorsOrLogs(t *testing.T) {
	coreTestKeys(t)
	b, s, logs := getTestBackendWithLogs(t)
	fake := newFakeClient()
	fake.install(b)
	r := &leakRecorder{t: t, b: b, s: s, logs: logs}

	adminPassword, adminToken := "Fake-Admin-Pass-1", "FAKEADMINTOKEN000000"
	etlPassword, etlToken := "Fake-Etl-Pass-22", "FAKEETLTOKEN0000000"
	wrongPasswords := []string{"Wrong-Pass-Attempt-1", "Wrong-Client-Secret-2"}

	// Config: a rejected client secret, then the password grant, then JWT.
	r.do(logical.UpdateOperation, "config", map[string]interface{}{
		"login_url": "https://fake.my.salesforce.com", "client_id": fakeClientID, "client_secret": wrongPasswords[1],
	})
	r.do(logical.UpdateOperation, "config", map[string]interface{}{
		"login_url": "https://fake.my.salesforce.com", "client_id": fakeClientID, "client_secret": fakeClientSecret,
		"username": "admin@fake.test", "password": adminPassword, "security_token": adminToken,
	})
	r.do(logical.UpdateOperation, "config", map[string]interface{}{"private_key": "junk" + coreTestPKCS1PEM[10:]})
	r.do(logical.UpdateOperation, "config", map[string]interface{}{"private_key": coreTestPKCS1PEM})
	r.do(logical.ReadOperation, "config", nil)
	// Moving logins elsewhere without the stored secrets is refused; the
	// refusal names the fields, never their values.
	if resp, err := r.do(logical.UpdateOperation, "config", map[string]interface{}{
		"login_url": "https://elsewhere.my.salesforce.com", "ca_cert": coreTestCACertPEM,
	}); respErr(resp, err) == nil {
		t.Errorf("login_url moved without the stored secrets")
	}
	r.do(logical.UpdateOperation, "config", map[string]interface{}{"login_url": "https://admin:" + adminPassword + "@fake.my.salesforce.com"})
	r.do(logical.UpdateOperation, "config", map[string]interface{}{"security_token": adminToken + "!"})
	if _, err := b.adminSession(t.Context(), s); err != nil {
		t.Fatal(err)
	}

	// Accounts: rejected, accepted, bad inputs, reads, list.
	r.do(logical.UpdateOperation, "accounts/etl", map[string]interface{}{
		"username": "etl@fake.test", "password": wrongPasswords[0], "security_token": etlToken,
	})
	r.do(logical.UpdateOperation, "accounts/etl", map[string]interface{}{"username": "etl@fake.test", "password": etlPassword})
	r.do(logical.UpdateOperation, "accounts/etl", map[string]interface{}{
		"username": "etl@fake.test", "password": etlPassword, "security_token": etlToken,
	})
	r.do(logical.UpdateOperation, "accounts/etl", map[string]interface{}{"password": etlPassword + "\n"})
	r.do(logical.UpdateOperation, "accounts/etl", map[string]interface{}{"security_token": etlToken + "-x"})
	r.do(logical.UpdateOperation, "accounts/etl", map[string]interface{}{"username": "changed@fake.test", "password": etlPassword})
	fake.failTransient = true
	r.do(logical.UpdateOperation, "accounts/etl", map[string]interface{}{"password": "Transient-Pass-777"})
	fake.failTransient = false
	r.do(logical.ReadOperation, "accounts/etl", nil)
	r.do(logical.ListOperation, "accounts/", nil)
	r.do(logical.ReadOperation, "creds/missing", nil)

	creds, err := r.do(logical.ReadOperation, "creds/etl", nil)
	if respErr(creds, err) != nil {
		t.Fatal(respErr(creds, err))
	}
	if creds.Data["password"] != etlPassword {
		t.Fatalf("creds do not serve the stored password")
	}
	// creds/ serves the account's secret and nothing of the admin's.
	assertNoSecrets(t, "creds/etl", responseText(creds, nil), adminPassword, adminToken, fakeClientSecret, pemBody(coreTestPKCS1PEM))

	secrets := []string{adminPassword, adminToken, fakeClientSecret, etlPassword, etlToken, "Transient-Pass-777", "00Dfake!SESSION"}
	secrets = append(secrets, wrongPasswords...)
	for _, line := range strings.Split(coreTestPKCS1PEM, "\n")[1:5] {
		secrets = append(secrets, line)
	}
	r.check(secrets...)
	if !strings.Contains(logs.String(), "INVALID_LOGIN") {
		t.Errorf("the log should record failed checks (with their code) for operators")
	}
}

func TestSecret_EmulatorFlowLeaksNothing(t *testing.T) {
	for _, grant := range []string{adminGrantJWTBearer, adminGrantClientCredentials, adminGrantPassword} {
		t.Run(grant, func(t *testing.T) {
			srv := emulator.NewTestServer(t, emulator.DefaultSeed())
			b, s, logs := getTestBackendWithLogs(t)
			r := &leakRecorder{t: t, b: b, s: s, logs: logs}

			bad := emulatorConfig(srv, grant)
			bad["client_secret"], bad["password"] = "Bad-Client-Secret-9", "Bad-Admin-Pass-9"
			r.do(logical.UpdateOperation, "config", bad)
			if resp, err := r.do(logical.UpdateOperation, "config", emulatorConfig(srv, grant)); respErr(resp, err) != nil {
				t.Fatal(respErr(resp, err))
			}
			r.do(logical.ReadOperation, "config", nil)
			admin, err := b.adminSession(t.Context(), s)
			if err != nil {
				t.Fatal(err)
			}

			account := map[string]interface{}{"username": demoIntegrationUser, "password": "Wrong-Integ-Pass-9", "security_token": demoIntegrationToken}
			r.do(logical.UpdateOperation, "accounts/integration", account)
			account["password"] = demoIntegrationPass
			delete(account, "security_token")
			r.do(logical.UpdateOperation, "accounts/integration", account)
			account["security_token"] = demoIntegrationToken
			if resp, err := r.do(logical.UpdateOperation, "accounts/integration", account); respErr(resp, err) != nil {
				t.Fatal(respErr(resp, err))
			}
			srv.InjectFault("soap.login", emulator.Fault{Status: 503, Times: 1})
			r.do(logical.UpdateOperation, "accounts/integration", map[string]interface{}{"password": "Outage-Pass-777"})
			r.do(logical.ReadOperation, "accounts/integration", nil)
			r.do(logical.ListOperation, "accounts/", nil)
			creds, err := r.do(logical.ReadOperation, "creds/integration", nil)
			if respErr(creds, err) != nil || creds.Data["password"] != demoIntegrationPass {
				t.Fatalf("creds: %v", respErr(creds, err))
			}

			secrets := []string{
				demoClientSecret, demoAdminPassword, demoAdminToken, demoIntegrationPass, demoIntegrationToken,
				"Bad-Client-Secret-9", "Bad-Admin-Pass-9", "Wrong-Integ-Pass-9", "Outage-Pass-777", admin.AccessToken,
			}
			for _, line := range strings.Split(emulator.DemoPrivateKeyPEM, "\n")[1:5] {
				secrets = append(secrets, line)
			}
			r.check(secrets...)
			assertNoSecrets(t, "creds/integration", responseText(creds, nil), demoClientSecret, demoAdminPassword, demoAdminToken, admin.AccessToken)
		})
	}
}
