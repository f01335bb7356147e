package salesforce

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// Salesforce answers repeated JWT bearer mints for one user, app and scope
// with the same access token. Two roles may therefore hand out leases on
// one session: ending one lease must not revoke the session the other
// lease still holds, and the last lease to end revokes it.
func TestJWTReusedSessionSharedAcrossRoles(t *testing.T) {
	for _, order := range [][2]string{{"uncached", "cached"}, {"cached", "uncached"}} {
		t.Run(order[0]+"_first", func(t *testing.T) {
			b, s, srv, logs := tokenEmulatorBackend(t)
			srv.SetOrg(func(o *emulator.Org) { o.ReuseSessions = true })
			for name, cache := range map[string]bool{"cached": true, "uncached": false} {
				mustWrite(t, b, s, "roles/"+name, map[string]interface{}{
					"grant_type": "jwt_bearer", "username": demoIntegrationUser, "scopes": "api",
					"cache": cache, "revoke_on_lease_end": true,
				})
			}
			leases := map[string]*logical.Response{}
			for _, role := range []string{"cached", "uncached"} {
				resp, err := request(t, b, s, logical.ReadOperation, "token/"+role, nil)
				if err != nil || resp == nil || resp.IsError() || resp.Secret == nil {
					t.Fatalf("read token/%s: %v", role, respErr(resp, err))
				}
				leases[role] = resp
			}
			token, _ := leases["cached"].Data["access_token"].(string)
			if token == "" || leases["uncached"].Data["access_token"] != token {
				t.Fatal("the two roles did not get the same reused session; the test's premise does not hold")
			}
			if srv.Calls("oauth.token") != 2 {
				t.Errorf("oauth.token calls = %d, want 2 (one mint per role)", srv.Calls("oauth.token"))
			}

			if err := revokeLease(t, b, s, leases[order[0]].Secret); err != nil {
				t.Fatalf("revoking the %s lease: %v", order[0], err)
			}
			if !srv.IsTokenActive(token) || srv.Calls("oauth.revoke") != 0 {
				t.Fatalf("ending the %s lease revoked the session the %s lease holds (revoke calls %d)", order[0], order[1], srv.Calls("oauth.revoke"))
			}
			if err := revokeLease(t, b, s, leases[order[1]].Secret); err != nil {
				t.Fatalf("revoking the %s lease: %v", order[1], err)
			}
			if srv.IsTokenActive(token) || srv.Calls("oauth.revoke") != 1 {
				t.Fatalf("the last lease did not revoke the session (revoke calls %d)", srv.Calls("oauth.revoke"))
			}
			assertNoSecrets(t, "logs", logs.String(), token, demoIntegrationPass, demoIntegrationToken)
		})
	}
}
