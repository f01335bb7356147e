package acceptance

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// configureEmulatorOAuth writes a config on the org's My Domain host
// (client_credentials only works there), a stored account for the
// password grant, and the demo connected app's key as the JWT key.
func configureEmulatorOAuth(t *testing.T, mount string) {
	t.Helper()
	srv := emulatorServer(t)
	vaultWriteJSON(t, mount+"/config", map[string]any{
		"login_url":                srv.MyDomainURL(),
		"allow_non_salesforce_url": true,
		"client_id":                demoClientID,
		"client_secret":            demoClientSecret,
		"grant_type":               "password",
		"username":                 demoAdminUser,
		"password":                 demoAdminPassword,
		"security_token":           demoAdminToken,
	})
	vaultWriteJSON(t, mount+"/accounts/integ", map[string]any{
		"username":       demoIntegUser,
		"password":       demoIntegPassword,
		"security_token": demoIntegToken,
	})
	out := vaultWriteJSON(t, mount+"/config/jwt-key", map[string]any{"private_key": emulator.DemoPrivateKeyPEM})
	if strings.Contains(out, "PRIVATE KEY") {
		t.Fatalf("writing config/jwt-key echoed the private key")
	}
}

// tokenLease is `vault read -format=json MOUNT/token/ROLE`.
type tokenLease struct {
	LeaseID       string `json:"lease_id"`
	LeaseDuration int    `json:"lease_duration"`
	Renewable     bool   `json:"renewable"`
	Data          struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
		ID          string `json:"id"`
		TokenType   string `json:"token_type"`
		IssuedAt    string `json:"issued_at"`
		ExpiresAt   string `json:"expires_at"`
	} `json:"data"`
}

func readTokenLease(t *testing.T, mount, role string) tokenLease {
	t.Helper()
	lease := vaultJSONAs[tokenLease](t, "read", mount+"/token/"+role)
	if lease.LeaseID == "" || lease.Data.AccessToken == "" || lease.Data.InstanceURL == "" || lease.Data.ExpiresAt == "" {
		t.Fatalf("vault read %s/token/%s: incomplete answer %+v", mount, role, lease)
	}
	noteSecret(lease.Data.AccessToken)
	return lease
}

// eventually polls cond for up to 15 s: Vault revokes leases in the
// background.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestOAuthTokensCLI reads a token for each grant type with the vault CLI,
// renews and revokes its lease, and checks the emulator saw the revoke.
func TestOAuthTokensCLI(t *testing.T) {
	need(t)
	srv := emulatorServer(t)
	mount := mountPlugin(t, versionNew)
	configureEmulatorOAuth(t, mount)
	refresh := srv.IssueRefreshToken(demoClientID, demoIntegUser)
	noteSecret(refresh)

	vaultCLI(t, "write", mount+"/roles/jwt", "grant_type=jwt_bearer", "username="+demoIntegUser, "scopes=api", "ttl=10m")
	vaultCLI(t, "write", mount+"/roles/cc", "grant_type=client_credentials", "ttl=10m")
	written := vaultJSON(t, "write", mount+"/roles/pw", "grant_type=password", "account=integ", "ttl=10m")
	if warnings, _ := json.Marshal(written["warnings"]); !strings.Contains(string(warnings), "username-password flow") {
		t.Errorf("password role written without the blocked-flow warning: %v", written)
	}
	vaultWriteJSON(t, mount+"/roles/refresh", map[string]any{"grant_type": "refresh_token", "refresh_token": refresh, "ttl": "10m"})
	if roles := vaultJSONAs[[]string](t, "list", mount+"/roles"); len(roles) != 4 {
		t.Errorf("vault list %s/roles = %v, want 4 roles", mount, roles)
	}
	if out := vaultCLI(t, "read", mount+"/roles/refresh"); strings.Contains(out, refresh) {
		t.Error("vault read roles/refresh shows the refresh token")
	}

	for _, role := range []string{"jwt", "cc", "pw", "refresh"} {
		t.Run(role, func(t *testing.T) {
			lease := readTokenLease(t, mount, role)
			if !lease.Renewable || lease.LeaseDuration <= 0 || lease.LeaseDuration > 600 {
				t.Errorf("lease renewable=%v duration=%d, want renewable, at most the role's 10m", lease.Renewable, lease.LeaseDuration)
			}
			if !srv.IsTokenActive(lease.Data.AccessToken) {
				t.Fatal("the emulator does not know the token Vault returned")
			}
			// A second read is served from the cache.
			calls := srv.Calls("oauth.token")
			again := readTokenLease(t, mount, role)
			if again.Data.AccessToken != lease.Data.AccessToken || srv.Calls("oauth.token") != calls {
				t.Error("second read minted a new token instead of using the cache")
			}

			renewed := vaultJSON(t, "lease", "renew", lease.LeaseID)
			if d, _ := renewed["lease_duration"].(float64); d <= 0 {
				t.Errorf("vault lease renew: %v", renewed)
			}

			revokes := srv.Calls("oauth.revoke")
			// -sync: the revocation has run when the command returns.
			vaultCLI(t, "lease", "revoke", "-sync", lease.LeaseID)
			// Another lease still holds the shared token: it must live on.
			if !srv.IsTokenActive(lease.Data.AccessToken) {
				t.Fatal("revoking one lease killed the token another lease holds")
			}
			vaultCLI(t, "lease", "revoke", again.LeaseID)
			if !eventually(func() bool { return !srv.IsTokenActive(lease.Data.AccessToken) }) {
				t.Fatal("token still active after its last lease was revoked")
			}
			if srv.Calls("oauth.revoke") != revokes+1 {
				t.Errorf("oauth.revoke calls = %d, want 1", srv.Calls("oauth.revoke")-revokes)
			}
		})
	}
	if !srv.IsTokenActive(refresh) {
		t.Error("revoking leases revoked the role's refresh token")
	}
}

// TestOAuthSecretsDisableRevokesLeases checks that disabling the mount
// revokes the tokens of outstanding leases.
func TestOAuthSecretsDisableRevokesLeases(t *testing.T) {
	need(t)
	srv := emulatorServer(t)
	mount := mountPlugin(t, versionNew)
	configureEmulatorOAuth(t, mount)
	vaultCLI(t, "write", mount+"/roles/cc", "grant_type=client_credentials")
	vaultCLI(t, "write", mount+"/roles/fresh", "grant_type=password", "account=integ", "cache=false")

	tokens := []string{
		readTokenLease(t, mount, "cc").Data.AccessToken,
		readTokenLease(t, mount, "fresh").Data.AccessToken,
		readTokenLease(t, mount, "fresh").Data.AccessToken,
	}
	if tokens[1] == tokens[2] {
		t.Error("cache=false returned the same token twice")
	}
	vaultCLI(t, "secrets", "disable", mount+"/")
	for i, tok := range tokens {
		if !eventually(func() bool { return !srv.IsTokenActive(tok) }) {
			t.Errorf("token %d still active after vault secrets disable", i)
		}
	}
}

// TestOAuthTokenErrorsCLI checks what a caller sees when Salesforce
// refuses the credential: the role and Salesforce's code, and no retry.
func TestOAuthTokenErrorsCLI(t *testing.T) {
	need(t)
	srv := emulatorServer(t)
	mount := mountPlugin(t, versionNew)
	configureEmulatorOAuth(t, mount)
	// A user the connected app has not pre-authorised.
	vaultCLI(t, "write", mount+"/roles/stranger", "grant_type=jwt_bearer", "username=nobody@acme.demo")
	calls := srv.Calls("oauth.token")
	out := vaultCLIFails(t, "read", mount+"/token/stranger")
	if !strings.Contains(out, `role "stranger"`) || !strings.Contains(out, "invalid_grant") || !strings.Contains(out, "Code: 400") {
		t.Errorf("vault read of a refused role:\n%s\nwant a 400 naming the role and invalid_grant", out)
	}
	if n := srv.Calls("oauth.token") - calls; n != 1 {
		t.Errorf("token calls = %d, want 1 (credential errors are not retried)", n)
	}

	out = vaultCLIFails(t, "write", mount+"/roles/bad", "grant_type=password", "account=ghost")
	if !strings.Contains(out, `account "ghost" does not exist`) {
		t.Errorf("role with an unknown account:\n%s", out)
	}

	key := vaultJSON(t, "read", mount+"/config/jwt-key")
	raw, _ := json.Marshal(key)
	if strings.Contains(string(raw), "PRIVATE KEY") {
		t.Error("vault read config/jwt-key shows the private key")
	}
}

// TestOAuthSharedTokenSurvivesPluginReload checks that the leases sharing
// a cached token are known after the plugin restarts: ending one of them
// leaves the token alive for the other, and the last one revokes it.
func TestOAuthSharedTokenSurvivesPluginReload(t *testing.T) {
	need(t)
	srv := emulatorServer(t)
	mount := mountPlugin(t, versionNew)
	configureEmulatorOAuth(t, mount)
	vaultCLI(t, "write", mount+"/roles/cc", "grant_type=client_credentials", "ttl=10m")
	one := readTokenLease(t, mount, "cc")
	two := readTokenLease(t, mount, "cc")
	if one.Data.AccessToken != two.Data.AccessToken {
		t.Fatal("setup: the two reads did not share the cached token")
	}

	vaultCLI(t, "plugin", "reload", "-mounts="+mount+"/")
	vaultCLI(t, "lease", "revoke", "-sync", one.LeaseID)
	if !srv.IsTokenActive(one.Data.AccessToken) {
		t.Fatal("after a plugin reload, ending one lease revoked the token the other lease still holds")
	}
	vaultCLI(t, "lease", "revoke", "-sync", two.LeaseID)
	if !eventually(func() bool { return !srv.IsTokenActive(two.Data.AccessToken) }) {
		t.Fatal("token still active after its last lease was revoked")
	}
}

// TestOAuthPasswordRoleStaleTokenCLI checks that after a rotation of an
// account whose logins need the security token, a password role refuses
// to log in with the stale token and tells the operator what to write.
func TestOAuthPasswordRoleStaleTokenCLI(t *testing.T) {
	need(t)
	srv := emulatorServer(t)
	mount := mountPlugin(t, versionNew)
	configureEmulatorOAuth(t, mount)
	vaultCLI(t, "write", mount+"/roles/pw", "grant_type=password", "account=integ")
	readTokenLease(t, mount, "pw")
	vaultCLI(t, "write", "-f", mount+"/rotate/integ")

	calls := srv.Calls("oauth.token")
	for range 5 {
		out := vaultCLIFails(t, "read", mount+"/token/pw")
		for _, want := range []string{`role "pw"`, `account "integ"`, "Code: 400", "accounts/integ/security-token"} {
			if !strings.Contains(out, want) {
				t.Fatalf("vault read token/pw after a rotation:\n%s\nwant it to name %s", out, want)
			}
		}
	}
	if n := srv.Calls("oauth.token") - calls; n != 0 {
		t.Errorf("reads with a stale security token made %d Salesforce logins, want 0", n)
	}
}
