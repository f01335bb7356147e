package salesforce

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// ecaConfig is a config for the demo org's "Vault ECA" with the given
// admin grant.
func ecaConfig(srv *emulator.Server, grant string) map[string]interface{} {
	data := map[string]interface{}{
		"login_url":                srv.MyDomainURL(),
		"allow_non_salesforce_url": true,
		"app_type":                 "external_client_app",
		"app_developer_name":       "Vault_ECA",
		"client_id":                emulator.DemoECAClientID,
		"client_secret":            emulator.DemoECAClientSecret,
		"grant_type":               grant,
		// The ECA holds the demo certificate: JWT roles sign with this key.
		"private_key": emulator.DemoPrivateKeyPEM,
	}
	if grant == adminGrantJWTBearer {
		data["username"] = demoAdminUser
	}
	return data
}

func TestExternalClientApp_ServesJWTAndClientCredentials(t *testing.T) {
	for _, grant := range []string{adminGrantClientCredentials, adminGrantJWTBearer} {
		t.Run(grant, func(t *testing.T) {
			srv := emulator.NewTestServer(t, emulator.DefaultSeed())
			b, s := getTestBackend(t)
			mustWrite(t, b, s, "config", ecaConfig(srv, grant)) // verified by an admin login through the ECA
			cfg := mustRead(t, b, s, "config")
			if cfg["app_type"] != "external_client_app" || cfg["app_developer_name"] != "Vault_ECA" || cfg["client_id"] != emulator.DemoECAClientID {
				t.Errorf("config read: %v", cfg)
			}
			mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
			mustWrite(t, b, s, "roles/jwt", map[string]interface{}{"grant_type": "jwt_bearer", "username": demoIntegrationUser})
			for _, role := range []string{"cc", "jwt"} {
				tok := mustRead(t, b, s, "token/"+role)
				if !srv.IsTokenActive(tok["access_token"].(string)) {
					t.Errorf("token/%s: not a live session of the org", role)
				}
			}
			// Login History names the ECA as the application.
			rows := srv.LoginHistory(demoIntegrationUser)
			if last := rows[len(rows)-1]; last.Application != "Vault ECA" {
				t.Errorf("the JWT login went through %q, want the ECA", last.Application)
			}
		})
	}
}

func TestExternalClientApp_RefusesTheUsernamePasswordFlow(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.DefaultSeed())
	b, s := getTestBackend(t)

	// As the admin grant: refused before any login, nothing stored.
	data := ecaConfig(srv, adminGrantPassword)
	data["username"], data["password"], data["security_token"] = demoAdminUser, demoAdminPassword, demoAdminToken
	before := snapshotStorage(t, s)
	calls := srv.Calls("oauth.token")
	resp, err := request(t, b, s, logical.UpdateOperation, "config", data)
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "does not offer the OAuth username-password flow") {
		t.Fatalf("ECA with grant_type=password: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, s))
	if srv.Calls("oauth.token") != calls {
		t.Error("the refused config made a login")
	}
	assertNoSecrets(t, "error", responseText(resp, err), demoAdminPassword, demoAdminToken, emulator.DemoECAClientSecret)

	// A connected app config with a password role cannot become an ECA
	// config while the role exists.
	mustWrite(t, b, s, "config", emulatorConfig(srv, adminGrantPassword))
	if got := mustRead(t, b, s, "config")["app_type"]; got != "connected_app" {
		t.Errorf("default app_type %v", got)
	}
	mustWrite(t, b, s, "accounts/demo", map[string]interface{}{
		"username": demoIntegrationUser, "password": demoIntegrationPass, "security_token": demoIntegrationToken,
	})
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "demo"})
	resp, err = request(t, b, s, logical.UpdateOperation, "config", ecaConfig(srv, adminGrantClientCredentials))
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "roles pw use grant_type=password") {
		t.Fatalf("switching to an ECA with a password role: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	if resp, err := request(t, b, s, logical.DeleteOperation, "roles/pw", nil); respErr(resp, err) != nil {
		t.Fatal(respErr(resp, err))
	}

	// Once config is an ECA, a password role is refused.
	data = ecaConfig(srv, adminGrantClientCredentials)
	data["username"], data["password"], data["security_token"] = "", "", ""
	mustWrite(t, b, s, "config", data)
	resp, err = request(t, b, s, logical.UpdateOperation, "roles/pw2", map[string]interface{}{"grant_type": "password", "account": "demo"})
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "does not offer") {
		t.Fatalf("password role with an ECA config: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	// And so is a later config update to the password grant.
	resp, err = request(t, b, s, logical.UpdateOperation, "config", map[string]interface{}{
		"grant_type": "password", "username": demoAdminUser, "password": demoAdminPassword})
	if statusOf(resp, err) != 400 {
		t.Fatalf("update to grant_type=password: %d %v", statusOf(resp, err), respErr(resp, err))
	}
}

func TestExternalClientApp_FieldValidation(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.DefaultSeed())
	b, s := getTestBackend(t)
	for name, tc := range map[string]struct {
		change map[string]interface{}
		want   string
	}{
		"unknown app type":          {map[string]interface{}{"app_type": "canvas_app"}, "app_type must be"},
		"developer name, no ECA":    {map[string]interface{}{"app_type": "connected_app"}, "set app_type=external_client_app"},
		"developer name with space": {map[string]interface{}{"app_developer_name": "Vault ECA"}, "API name"},
		"double underscore":         {map[string]interface{}{"app_developer_name": "Vault__c"}, "API name"},
		"starts with a digit":       {map[string]interface{}{"app_developer_name": "1Vault"}, "API name"},
	} {
		data := ecaConfig(srv, adminGrantClientCredentials)
		for k, v := range tc.change {
			data[k] = v
		}
		resp, err := request(t, b, s, logical.UpdateOperation, "config", data)
		if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), tc.want) {
			t.Errorf("%s: %d %v, want 400 with %q", name, statusOf(resp, err), respErr(resp, err), tc.want)
		}
	}
	// "" clears the developer name.
	mustWrite(t, b, s, "config", ecaConfig(srv, adminGrantClientCredentials))
	mustWrite(t, b, s, "config", map[string]interface{}{"app_developer_name": ""})
	if got := mustRead(t, b, s, "config")["app_developer_name"]; got != "" {
		t.Errorf("app_developer_name after clearing: %q", got)
	}
}
