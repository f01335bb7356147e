package salesforce

import (
	"context"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// assertServedCredentialLogsInWithFlow is assertServedCredentialLogsIn for
// an org without SOAP login(): the username-password flow through the
// env's connected app.
func (e *rotEnv) assertServedCredentialLogsInWithFlow(name string) {
	e.t.Helper()
	c := e.creds(name)
	client, err := newClient(sfapi.Config{LoginURL: e.srv.MyDomainURL(), ClientID: "3MVG9demoClientId", ClientSecret: "demo-client-secret",
		APIVersion: "66.0", SOAPAPIVersion: "64.0", RequestTimeout: 10 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := client.PasswordGrant(context.Background(), c["username"].(string), c["password_with_token"].(string)); err != nil {
		e.t.Fatalf("the credential creds/%s serves does not log in: %v", name, err)
	}
}

// Issue 9, defect 7: in an org with SOAP login() off and the
// username-password flow on, rotation and security-token writes log in
// through the flow, as account writes do.
func TestTrust07LoginWithoutSOAPLogin(t *testing.T) {
	e := newRotEnv(t)
	e.srv.SetOrg(func(o *emulator.Org) { o.SOAPLoginDisabled = true })

	e.addTrusted("trusted", nil)
	e.mustRotate("trusted")
	if e.creds("trusted")["password"] != e.srv.Password(rotTrustedUser) {
		t.Fatal("creds/trusted does not serve the password Salesforce has")
	}
	e.assertServedCredentialLogsInWithFlow("trusted")

	// A required-token account: rotated, then the emailed token written.
	e.addIntegration("etl", nil)
	e.mustRotate("etl")
	token := e.srv.LatestSecurityToken(rotIntegUser)
	mustWrite(t, e.b, e.s, "accounts/etl/security-token", map[string]interface{}{"security_token": token})
	if c := e.creds("etl"); c["security_token_status"] != tokenStatusCurrent {
		t.Errorf("security_token_status = %v, want current", c["security_token_status"])
	}
	e.assertServedCredentialLogsInWithFlow("etl")
	if n := e.failedLogins(rotIntegUser) + e.failedLogins(rotTrustedUser); n != 0 {
		t.Errorf("%d failed logins, want none", n)
	}
	if n := e.srv.Calls("soap.login"); n > 1 {
		t.Errorf("SOAP login() tried %d times after Salesforce said it is off, want at most 1 until config changes", n)
	}
}

// The flow of logins is remembered until config changes.
func TestLoginFlowRememberedUntilConfigChanges(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.srv.SetOrg(func(o *emulator.Org) { o.SOAPLoginDisabled = true })
	e.mustRotate("trusted")
	e.srv.SetOrg(func(o *emulator.Org) { o.SOAPLoginDisabled = false })
	e.srv.ResetCalls()
	e.mustRotate("trusted")
	if n := e.srv.Calls("soap.login"); n != 0 {
		t.Errorf("SOAP login() tried %d times before config changed", n)
	}
	mustWrite(t, e.b, e.s, "config", map[string]interface{}{"request_timeout": 20})
	e.mustRotate("trusted")
	if n := e.srv.Calls("soap.login"); n == 0 {
		t.Error("SOAP login() not tried again after config changed")
	}
}
