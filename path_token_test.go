package salesforce

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

func revokeLease(t testing.TB, b *backend, s logical.Storage, secret *logical.Secret) error {
	t.Helper()
	req := logical.RevokeRequest("token/x", secret, nil)
	req.Storage = s
	resp, err := b.HandleRequest(context.Background(), req)
	return respErr(resp, err)
}

func renewLease(t testing.TB, b *backend, s logical.Storage, secret *logical.Secret) (*logical.Response, error) {
	t.Helper()
	req := logical.RenewRequest("token/x", secret, nil)
	req.Storage = s
	return b.HandleRequest(context.Background(), req)
}

func TestTokenReadEveryGrantType(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	f.signWith = fakeTokenClientSecret
	mustWrite(t, b, s, "config/jwt-key", nil)
	key, err := b.jwtSigningKey(context.Background(), s)
	if err != nil || key == nil {
		t.Fatalf("jwtSigningKey: %v", err)
	}
	roles := map[string]map[string]interface{}{
		"jwt":     {"grant_type": "jwt_bearer", "username": "etl@acme.test", "scopes": "api,refresh_token"},
		"cc":      {"grant_type": "client_credentials", "scopes": "api"},
		"pw":      {"grant_type": "password", "account": "etl"},
		"refresh": {"grant_type": "refresh_token", "refresh_token": fakeRefreshToken, "scopes": "api"},
	}
	for name, fields := range roles {
		mustWrite(t, b, s, "roles/"+name, fields)
		resp := readToken(t, b, s, name)
		for _, k := range []string{"access_token", "instance_url", "id", "token_type", "scope", "issued_at", "expires_at"} {
			if v, _ := resp.Data[k].(string); v == "" {
				t.Errorf("%s: %s missing from the token read", name, k)
			}
		}
		if resp.Secret == nil || !resp.Secret.Renewable || resp.Secret.TTL <= 0 {
			t.Errorf("%s: token not returned as a renewable lease: %+v", name, resp.Secret)
		}
		if resp.Secret.InternalData["access_token"] != resp.Data["access_token"] {
			t.Errorf("%s: lease does not hold the token revocation needs", name)
		}
	}
	if f.lastPassword != fakeAccountPassword+fakeAccountToken || f.lastUser != "etl@acme.test" {
		t.Error("password grant did not get the account's password plus security token")
	}
	if f.lastRefresh != fakeRefreshToken {
		t.Error("refresh grant did not get the role's refresh token")
	}
	if f.lastKey == nil || !f.lastKey.Equal(key) {
		t.Error("jwt grant did not sign with config/jwt-key's current key")
	}
	for _, kind := range []string{"jwt", "client_credentials", "password", "refresh"} {
		if f.count(kind) != 1 {
			t.Errorf("%s grant calls = %d, want 1", kind, f.count(kind))
		}
	}
}

func TestTokenReadRejectsBadSignature(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	f.signWith = fakeTokenClientSecret
	f.badSignature = true
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	resp, err := request(t, b, s, logical.ReadOperation, "token/cc", nil)
	if statusOf(resp, err) != 502 || !strings.Contains(respErr(resp, err).Error(), "signature") {
		t.Fatalf("bad signature: status %d, %v; want 502 naming the signature", statusOf(resp, err), respErr(resp, err))
	}
	// Not cached: the next read asks again.
	request(t, b, s, logical.ReadOperation, "token/cc", nil)
	if f.grants() != 2 {
		t.Errorf("grants = %d, want 2", f.grants())
	}
}

func TestTokenReadUnknownRoleAndMissingAccount(t *testing.T) {
	b, s, _ := tokenTestBackend(t)
	resp, err := request(t, b, s, logical.ReadOperation, "token/nope", nil)
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), `"nope"`) {
		t.Errorf("unknown role: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "etl"})
	if err := s.Delete(context.Background(), "accounts/etl"); err != nil {
		t.Fatal(err)
	}
	resp, err = request(t, b, s, logical.ReadOperation, "token/pw", nil)
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), `account "etl" does not exist`) {
		t.Errorf("missing account: %d %v", statusOf(resp, err), respErr(resp, err))
	}
}

func TestTokenCredentialErrorNotRetried(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	f.mintErrs = []error{&sfapi.Error{Op: "oauth token", Code: "invalid_grant", Message: "authentication failure", HTTPStatus: 400, Kind: sfapi.KindCredentials}}
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "etl"})
	resp, err := request(t, b, s, logical.ReadOperation, "token/pw", nil)
	if statusOf(resp, err) != 400 {
		t.Fatalf("status = %d, want 400", statusOf(resp, err))
	}
	msg := respErr(resp, err).Error()
	for _, want := range []string{`"pw"`, "invalid_grant", "password"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %s", msg, want)
		}
	}
	if f.grants() != 1 {
		t.Errorf("grants = %d, want 1 (credential errors are never retried)", f.grants())
	}
	assertNoSecrets(t, "error", msg, fakeAccountPassword, fakeAccountToken)
}

func TestTokenTransientErrorsRetried(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	transient := &sfapi.Error{Op: "oauth token", Message: "503 Service Unavailable", HTTPStatus: 503, Kind: sfapi.KindTransient}
	f.mintErrs = []error{transient, transient}
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	readToken(t, b, s, "cc")
	if f.grants() != 3 {
		t.Errorf("grants = %d, want 3 (two retries)", f.grants())
	}

	// An outage longer than the retries comes back as 503.
	f.mintErrs = []error{transient, transient, transient, transient, transient}
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"ttl": "5m"})
	resp, err := request(t, b, s, logical.ReadOperation, "token/cc", nil)
	if statusOf(resp, err) != 503 {
		t.Errorf("status = %d (%v), want 503", statusOf(resp, err), respErr(resp, err))
	}
	if got := f.grants() - 3; got != sfapi.RetryAttempts {
		t.Errorf("attempts = %d, want %d", got, sfapi.RetryAttempts)
	}
}

// tokenEmulatorBackend is a backend against a fresh emulated org (admin
// grant client_credentials on the My Domain host), with the integration
// user stored as account "integ" and the demo JWT key imported. Call
// counters start at zero.
func tokenEmulatorBackend(t testing.TB) (*backend, logical.Storage, *emulator.Server, *logBuffer) {
	t.Helper()
	b, s, srv, logs := emulatorBackend(t, adminGrantClientCredentials)
	mustWrite(t, b, s, "accounts/integ", map[string]interface{}{
		"username": demoIntegrationUser, "password": demoIntegrationPass, "security_token": demoIntegrationToken,
	})
	mustWrite(t, b, s, "config/jwt-key", map[string]interface{}{"private_key": emulator.DemoPrivateKeyPEM})
	srv.ResetCalls()
	return b, s, srv, logs
}

func TestEmulatorTokenEveryGrantType(t *testing.T) {
	b, s, srv, logs := tokenEmulatorBackend(t)
	refresh := srv.IssueRefreshToken(demoClientID, demoIntegrationUser)
	roles := map[string]map[string]interface{}{
		"jwt":     {"grant_type": "jwt_bearer", "username": demoIntegrationUser, "scopes": "api"},
		"cc":      {"grant_type": "client_credentials"},
		"pw":      {"grant_type": "password", "account": "integ"},
		"refresh": {"grant_type": "refresh_token", "refresh_token": refresh},
	}
	var secrets []string
	for name, fields := range roles {
		t.Run(name, func(t *testing.T) {
			mustWrite(t, b, s, "roles/"+name, fields)
			before := srv.Calls("oauth.token")
			resp := readToken(t, b, s, name)
			if srv.Calls("oauth.token") != before+1 {
				t.Errorf("token calls = %d, want 1", srv.Calls("oauth.token")-before)
			}
			token := resp.Data["access_token"].(string)
			secrets = append(secrets, token)
			if !srv.IsTokenActive(token) {
				t.Fatal("emulator does not know the token")
			}
			if resp.Data["instance_url"] != srv.MyDomainURL() || !strings.Contains(resp.Data["id"].(string), "/id/") || resp.Data["token_type"] != "Bearer" {
				t.Errorf("token read = %v", resp.Data)
			}
			// The demo app may introspect: the expiry is Salesforce's.
			expires, err := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
			if err != nil || time.Until(expires) > 2*time.Hour+time.Minute || time.Until(expires) < time.Hour {
				t.Errorf("expires_at = %v (%v), want about the org's 2h session", resp.Data["expires_at"], err)
			}
			if err := revokeLease(t, b, s, resp.Secret); err != nil {
				t.Fatal(err)
			}
			if srv.IsTokenActive(token) {
				t.Error("lease revoke did not revoke the token in Salesforce")
			}
		})
	}
	if srv.Calls("oauth.revoke") != 4 {
		t.Errorf("oauth.revoke calls = %d, want 4", srv.Calls("oauth.revoke"))
	}
	if !srv.IsTokenActive(refresh) {
		t.Error("revoking the lease revoked the role's refresh token")
	}
	assertNoSecrets(t, "logs", logs.String(), append(secrets, refresh, demoIntegrationPass, demoIntegrationToken, demoClientSecret)...)
}

func TestEmulatorJWTWithVaultGeneratedKey(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.DefaultSeed())
	b, s := getTestBackend(t)
	mustWrite(t, b, s, "config", emulatorConfig(srv, adminGrantClientCredentials))
	gen := mustWrite(t, b, s, "config/jwt-key", map[string]interface{}{"common_name": "vault-acme"})
	mustWrite(t, b, s, "roles/jwt", map[string]interface{}{"grant_type": "jwt_bearer", "username": demoIntegrationUser})

	// Before the certificate is uploaded Salesforce refuses the assertion.
	resp, err := request(t, b, s, logical.ReadOperation, "token/jwt", nil)
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "invalid_grant") {
		t.Fatalf("before upload: %d %v, want 400 invalid_grant", statusOf(resp, err), respErr(resp, err))
	}
	if err := srv.SetConnectedAppCertificate(demoClientID, gen.Data["certificate"].(string)); err != nil {
		t.Fatal(err)
	}
	readToken(t, b, s, "jwt")

	// Rotation: the operator uploads the pending certificate before
	// confirming; reads keep working throughout.
	rot := mustWrite(t, b, s, "config/jwt-key/rotate", nil)
	if err := srv.SetConnectedAppCertificate(demoClientID, rot.Data["pending_certificate"].(string)); err != nil {
		t.Fatal(err)
	}
	b.invalidateTokensForRole("jwt") // force a mint with the old key first
	readToken(t, b, s, "jwt")
	mustWrite(t, b, s, "config/jwt-key/confirm", nil)
	srv.ResetCalls()
	readToken(t, b, s, "jwt")
	if srv.Calls("oauth.token") != 1 {
		t.Errorf("after confirm: token calls = %d, want 1 (new key accepted first time)", srv.Calls("oauth.token"))
	}
}

func TestEmulatorTransientRetriedCredentialNot(t *testing.T) {
	b, s, srv, _ := tokenEmulatorBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	srv.InjectFault("oauth.token", emulator.Fault{Status: 503, Times: 2})
	readToken(t, b, s, "cc")
	if n := srv.Calls("oauth.token"); n != 3 {
		t.Errorf("token calls = %d, want 3 (two 503s retried)", n)
	}

	srv.ClearFaults()
	srv.ResetCalls()
	srv.SetUserState(demoIntegrationUser, func(u *emulator.User) { u.Password = "Changed-Elsewhere-1" })
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "integ"})
	resp, err := request(t, b, s, logical.ReadOperation, "token/pw", nil)
	if statusOf(resp, err) != 400 {
		t.Fatalf("status = %d (%v), want 400", statusOf(resp, err), respErr(resp, err))
	}
	msg := respErr(resp, err).Error()
	if !strings.Contains(msg, `"pw"`) || !strings.Contains(msg, "invalid_grant") {
		t.Errorf("error %q does not name the role and Salesforce's code", msg)
	}
	if n := srv.Calls("oauth.token"); n != 1 {
		t.Errorf("token calls = %d, want 1 (credential errors never retried)", n)
	}
}

func TestEmulatorPasswordFlowBlocked(t *testing.T) {
	b, s, srv, _ := tokenEmulatorBackend(t)
	srv.SetOrg(func(o *emulator.Org) { o.BlockUsernamePasswordFlow = true })
	resp := mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "integ"})
	if resp == nil || len(resp.Warnings) == 0 {
		t.Error("no warning about the blocked flow")
	}
	r, err := request(t, b, s, logical.ReadOperation, "token/pw", nil)
	if statusOf(r, err) != 400 || !strings.Contains(respErr(r, err).Error(), `role "pw"`) {
		t.Errorf("blocked flow: %d %v", statusOf(r, err), respErr(r, err))
	}
}

// TestEmulatorTenThousandReads counts Salesforce token calls for 10,000
// reads of one role (the number the issue asks for).
func TestEmulatorTenThousandReads(t *testing.T) {
	b, s, srv, _ := tokenEmulatorBackend(t)
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	const reads = 10000
	for range reads {
		readToken(t, b, s, "cc")
	}
	t.Logf("%d reads of one role: %d oauth.token calls, %d oauth.introspect calls", reads, srv.Calls("oauth.token"), srv.Calls("oauth.introspect"))
	if n := srv.Calls("oauth.token"); n != 1 {
		t.Errorf("oauth.token calls = %d, want 1", n)
	}
}

// The OpenAPI document marks the access token sensitive, so the UI and
// generated clients mask it.
func TestTokenOpenAPIMarksAccessTokenSensitive(t *testing.T) {
	b, s := getTestBackend(t)
	resp, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: "token/x", Storage: s})
	if err != nil || resp == nil {
		t.Fatalf("help: %v", err)
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		t.Fatalf("no OpenAPI document in the help response: %T", resp.Data["openapi"])
	}
	found := false
	for name, schema := range doc.Components.Schemas {
		field := schema.Properties["access_token"]
		if field == nil {
			continue
		}
		found = true
		if field.DisplayAttrs == nil || !field.DisplayAttrs.Sensitive {
			t.Errorf("%s: access_token is not marked sensitive", name)
		}
	}
	if !found {
		t.Error("the token read's response schema has no access_token field")
	}
}
