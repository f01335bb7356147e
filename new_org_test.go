package salesforce

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// Orgs created Winter '26 or later have SOAP login() switched off, and orgs
// created Summer '23 or later block the OAuth username-password flow. With
// both, the plugin has no way to check an account's password by logging in.

func newOrgAccountData() map[string]interface{} {
	return map[string]interface{}{
		"username":       demoIntegrationUser,
		"password":       demoIntegrationPass,
		"security_token": demoIntegrationToken,
	}
}

func TestNewOrgAccountWriteRefusedWithoutLoginFlows(t *testing.T) {
	// With a client secret the plugin can try the username-password flow;
	// with a JWT-only config it cannot. The operator's answer is the same.
	for _, grant := range []string{adminGrantClientCredentials, adminGrantJWTBearer} {
		t.Run(grant, func(t *testing.T) {
			b, s, srv, logs := emulatorBackend(t, grant)
			srv.SetOrg(func(o *emulator.Org) {
				o.SOAPLoginDisabled = true
				o.BlockUsernamePasswordFlow = true
			})
			before := snapshotStorage(t, s)
			resp, err := request(t, b, s, logical.CreateOperation, "accounts/x", newOrgAccountData())
			if got := statusOf(resp, err); got != 400 {
				t.Fatalf("status %d, want 400: %v", got, respErr(resp, err))
			}
			assertSameStorage(t, before, snapshotStorage(t, s))
			msg := respErr(resp, err).Error()
			assertNoSecrets(t, "error", msg, demoIntegrationPass, demoIntegrationToken)
			assertNoSecrets(t, "logs", logs.String(), demoIntegrationPass, demoIntegrationToken)
			lower := strings.ToLower(msg)
			// The operator must learn that no login flow is available (not
			// just that the credential was rejected) and how to go on.
			if !strings.Contains(lower, "neither") || !strings.Contains(lower, "login()") || !strings.Contains(lower, "username-password") {
				t.Errorf("message does not say that neither login flow is available: %s", msg)
			}
			if !strings.Contains(msg, "verify=false") || !strings.Contains(lower, "enabl") {
				t.Errorf("message does not suggest verify=false or enabling a flow: %s", msg)
			}
		})
	}
}

func TestNewOrgAccountStoredWithVerifyFalse(t *testing.T) {
	b, s, srv, logs := emulatorBackend(t, adminGrantJWTBearer)
	srv.SetOrg(func(o *emulator.Org) {
		o.SOAPLoginDisabled = true
		o.BlockUsernamePasswordFlow = true
	})
	srv.ResetCalls()
	data := newOrgAccountData()
	data["verify"] = false
	mustWrite(t, b, s, "accounts/x", data)
	if n := srv.Calls("soap.login") + srv.Calls("oauth.token"); n != 0 {
		t.Errorf("verify=false still logged in %d times", n)
	}
	creds := mustRead(t, b, s, "creds/x")
	if creds["username"] != demoIntegrationUser || creds["password"] != demoIntegrationPass {
		t.Fatalf("creds/x serves username %v and a password that does not match what was stored", creds["username"])
	}
	assertNoSecrets(t, "logs", logs.String(), demoIntegrationPass, demoIntegrationToken)
}

func TestAccountWriteWithoutUseAnyAPIAuth(t *testing.T) {
	b, s, srv, logs := emulatorBackend(t, adminGrantClientCredentials)
	// A Winter '26 org: login() is on (enabled by the admin) but needs the
	// permission, and the username-password flow is blocked by default, so
	// there is no fallback that would hide the missing permission.
	srv.SetOrg(func(o *emulator.Org) {
		o.EnforceUseAnyAPIAuth = true
		o.BlockUsernamePasswordFlow = true
		for i := range o.Profiles {
			if o.Profiles[i].Name == "Integration" {
				o.Profiles[i].UseAnyAPIAuth = false
			}
		}
	})
	before := snapshotStorage(t, s)
	resp, err := request(t, b, s, logical.CreateOperation, "accounts/x", newOrgAccountData())
	if got := statusOf(resp, err); got != 400 {
		t.Fatalf("status %d, want 400: %v", got, respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, s))
	msg := respErr(resp, err).Error()
	if !strings.Contains(msg, "INSUFFICIENT_ACCESS") || !strings.Contains(msg, "Use Any API Auth") {
		t.Errorf("message does not name INSUFFICIENT_ACCESS and the permission: %s", msg)
	}
	assertNoSecrets(t, "error", msg, demoIntegrationPass, demoIntegrationToken)
	assertNoSecrets(t, "logs", logs.String(), demoIntegrationPass, demoIntegrationToken)
}
