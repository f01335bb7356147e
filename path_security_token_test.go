package salesforce

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// Issue 9, defect 9: a rejected security-token write changes no count
// except to add its own failure, so repeated wrong tokens cannot take the
// user past max_failed_logins into Salesforce's lockout.
func TestTrust09RejectedSecurityTokenWriteKeepsCount(t *testing.T) {
	e := newRotEnv(t)
	e.srv.SetOrg(func(o *emulator.Org) { o.PasswordPolicy.MaxLoginAttempts = 3 })
	e.addIntegration("etl", nil)
	for i, token := range []string{"WRONGTOKEN0000000000000001", "WRONGTOKEN0000000000000002", "WRONGTOKEN0000000000000003"} {
		resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/etl/security-token", map[string]interface{}{"security_token": token})
		if statusOf(resp, err) != 400 {
			t.Fatalf("write %d of a wrong token: status %d (%v), want 400", i+1, statusOf(resp, err), respErr(resp, err))
		}
		if i == 2 && !rotContainsAll(respErr(resp, err).Error(), "max_failed_logins", "reset_failed_logins") {
			t.Errorf("the refused write does not say why and the way out: %v", respErr(resp, err))
		}
	}
	if e.userLocked(rotIntegUser) {
		t.Fatal("wrong security tokens locked the user out")
	}
	if n := e.failedLogins(rotIntegUser); n != defaultMaxFailedLogins {
		t.Errorf("%d failed logins, want max_failed_logins (%d)", n, defaultMaxFailedLogins)
	}
	acct := e.account("etl")
	if acct["failed_logins"] != defaultMaxFailedLogins || acct["rotation_blocked"] != "failed_logins" {
		t.Errorf("account shows failed_logins %v, rotation_blocked %v; want %d, failed_logins", acct["failed_logins"], acct["rotation_blocked"], defaultMaxFailedLogins)
	}

	// The way out: the operator checks Salesforce and says so.
	mustWrite(t, e.b, e.s, "accounts/etl", map[string]interface{}{"reset_failed_logins": true})
	mustWrite(t, e.b, e.s, "accounts/etl/security-token", map[string]interface{}{"security_token": rotIntegToken})
	if acct := e.account("etl"); acct["failed_logins"] != 0 || acct["rotation_status"] == "blocked" {
		t.Errorf("after the reset and a good token: %v", acct)
	}
	e.assertNoSecretsLogged("WRONGTOKEN", rotIntegToken)
}
