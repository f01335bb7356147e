package salesforce

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// A required-token account rotated by hand: the version goes up, Salesforce
// has the new password, the stored token is reported stale until the
// emailed one is written back, and then what Vault serves logs in.
func TestRotate_RequiredAccount_TokenReentry(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegration("etl", nil)
	if got := e.account("etl")["security_token_mode"]; got != tokenModeRequired {
		t.Fatalf("security_token_mode = %v, want required (a token is stored)", got)
	}

	resp := e.mustRotate("etl")
	if resp.Data["outcome"] != outcomeRotated || resp.Data["version"] != 1 {
		t.Fatalf("rotate response = %v, want outcome rotated, version 1", resp.Data)
	}
	if resp.Data["security_token_status"] != tokenStatusStale {
		t.Errorf("security_token_status = %v, want stale", resp.Data["security_token_status"])
	}

	creds := e.creds("etl")
	newPassword := creds["password"].(string)
	if newPassword == rotIntegPassword {
		t.Fatal("creds still serve the old password")
	}
	if got := e.srv.Password(rotIntegUser); got != newPassword {
		t.Fatal("Salesforce's password differs from the one Vault serves")
	}
	if creds["version"] != 1 || creds["security_token_status"] != tokenStatusStale {
		t.Errorf("creds version/status = %v/%v, want 1/stale", creds["version"], creds["security_token_status"])
	}
	credsResp, _ := request(t, e.b, e.s, logical.ReadOperation, "creds/etl", nil)
	if !strings.Contains(strings.Join(credsResp.Warnings, " "), "stale") {
		t.Errorf("creds warnings = %v, want a stale-token warning", credsResp.Warnings)
	}
	if wals, _ := framework.ListWAL(context.Background(), e.s); len(wals) != 0 {
		t.Errorf("%d WAL entries left after a finished rotation", len(wals))
	}

	// A wrong token is refused and nothing is stored.
	resp2, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/etl/security-token", map[string]interface{}{"security_token": rotIntegToken})
	if respErr(resp2, err) == nil {
		t.Fatal("the old (invalidated) token was accepted")
	}
	assertNoSecrets(t, "token rejection", responseText(resp2, err), rotIntegToken, newPassword)
	if e.creds("etl")["security_token"] != rotIntegToken {
		t.Fatal("a rejected token replaced the stored one")
	}

	emailed := e.srv.LatestSecurityToken(rotIntegUser)
	if emailed == "" || emailed == rotIntegToken {
		t.Fatalf("the org emailed no new token (%q)", emailed)
	}
	out := mustWrite(t, e.b, e.s, "accounts/etl/security-token", map[string]interface{}{"security_token": emailed})
	if out.Data["security_token_status"] != tokenStatusCurrent {
		t.Errorf("re-entry response = %v", out.Data)
	}
	if got := e.account("etl")["security_token_status"]; got != tokenStatusCurrent {
		t.Errorf("status after re-entry = %v, want current", got)
	}
	e.assertServedCredentialLogsIn("etl")
	e.assertNoSecretsLogged(rotIntegPassword, newPassword, rotIntegToken, emailed)
	acct := e.account("etl")
	assertNoSecrets(t, "account read", fmt.Sprint(acct), newPassword, emailed)
}

// A token-free account (trusted IP range) rotates and logs in right away.
func TestRotate_NotRequiredAccount(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	if got := e.account("trusted")["security_token_mode"]; got != tokenModeNotRequired {
		t.Fatalf("security_token_mode = %v, want not_required", got)
	}
	resp := e.mustRotate("trusted")
	if _, ok := resp.Data["security_token_status"]; ok {
		t.Errorf("a not_required account reports a token status: %v", resp.Data)
	}
	e.assertServedCredentialLogsIn("trusted")
	if e.creds("trusted")["version"] != 1 {
		t.Error("version not bumped")
	}
	e.mustRotate("trusted")
	if e.creds("trusted")["version"] != 2 {
		t.Error("second rotation did not bump the version")
	}
	e.assertServedCredentialLogsIn("trusted")
}

func TestRotate_UnknownAccount(t *testing.T) {
	e := newRotEnv(t)
	resp, err := e.rotate("nope")
	if statusOf(resp, err) != http.StatusNotFound {
		t.Fatalf("status = %d (%v), want 404", statusOf(resp, err), respErr(resp, err))
	}
}

// Writing not_required for a user that needs a token from Vault's address
// is refused by a real login.
func TestAccount_NotRequiredModeChecked(t *testing.T) {
	e := newRotEnv(t)
	resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/etl", map[string]interface{}{
		"username": rotIntegUser, "password": rotIntegPassword, "security_token": rotIntegToken,
		"security_token_mode": tokenModeNotRequired,
	})
	if err := respErr(resp, err); err == nil || !strings.Contains(err.Error(), "trusted IP") {
		t.Fatalf("err = %v, want a refusal that points to trusted IP ranges", err)
	}
}

// Scheduled rotation of a required-token account needs an explicit opt-in.
func TestAccount_ScheduledRequiredNeedsOptIn(t *testing.T) {
	e := newRotEnv(t)
	resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/etl", map[string]interface{}{
		"username": rotIntegUser, "password": rotIntegPassword, "security_token": rotIntegToken,
		"rotation_period": "720h",
	})
	err = respErr(resp, err)
	if err == nil || !rotContainsAll(err.Error(), "email", "OAuth role", "trusted IP", "allow_scheduled_rotation_with_token") {
		t.Fatalf("err = %v, want the explanation", err)
	}
	e.addIntegration("etl", map[string]interface{}{"rotation_period": "720h", "allow_scheduled_rotation_with_token": true})
	if got := e.account("etl")["rotation_status"]; got != "scheduled" {
		t.Errorf("rotation_status = %v", got)
	}
}

// rotate-root changes the admin password of a password-grant config where
// no security token is needed, and explains why it cannot for the others.
func TestRotateRoot(t *testing.T) {
	e := newRotEnv(t)
	resp, err := request(t, e.b, e.s, logical.UpdateOperation, "rotate-root", nil)
	if err := respErr(resp, err); err == nil || !strings.Contains(err.Error(), "client_secret") {
		t.Errorf("client_credentials: err = %v, want an explanation", err)
	}

	// The admin needs a token from 127.0.0.1: refused, nothing changes.
	mustWrite(t, e.b, e.s, "config", map[string]interface{}{
		"grant_type": "password", "username": "admin@acme.demo",
		"password": "Admin-Pass-1234", "security_token": "ADMINTOKEN0000000000000000",
	})
	resp, err = request(t, e.b, e.s, logical.UpdateOperation, "rotate-root", nil)
	if err := respErr(resp, err); err == nil || !strings.Contains(err.Error(), "email") {
		t.Fatalf("err = %v, want the token explanation", err)
	}
	if e.srv.Password("admin@acme.demo") != "Admin-Pass-1234" {
		t.Fatal("refused rotate-root changed the password")
	}

	// With Vault's address trusted, it rotates and the engine keeps working.
	e.srv.SetOrg(func(o *emulator.Org) { o.TrustedIPRanges = []string{"127.0.0.0/8"} })
	mustWrite(t, e.b, e.s, "config", map[string]interface{}{"security_token": ""})
	mustWrite(t, e.b, e.s, "rotate-root", nil)
	cfg, err := readConfig(context.Background(), e.s)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Password == "Admin-Pass-1234" || cfg.Password != e.srv.Password("admin@acme.demo") {
		t.Fatal("config does not hold the admin password Salesforce has")
	}
	e.addTrusted("trusted", nil)
	e.mustRotate("trusted") // uses a fresh admin session
	if data := mustRead(t, e.b, e.s, "config"); strings.Contains(fmt.Sprint(data), cfg.Password) {
		t.Error("config read shows the rotated password")
	}
	e.assertNoSecretsLogged(cfg.Password)
}

// rotate-root is crash safe: a crash after Salesforce took the new admin
// password is completed at start-up; one before is discarded.
func TestRotateRoot_CrashSafety(t *testing.T) {
	for _, tc := range []struct {
		step    string
		changed bool
	}{
		{stepRootWALWritten, false},
		{stepRootPasswordChanged, true},
		{stepRootStored, true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			e := newRotEnv(t)
			e.srv.SetOrg(func(o *emulator.Org) { o.TrustedIPRanges = []string{"127.0.0.0/8"} })
			mustWrite(t, e.b, e.s, "config", map[string]interface{}{
				"grant_type": "password", "username": "admin@acme.demo", "password": "Admin-Pass-1234",
			})
			e.crashAt(tc.step)
			if resp, err := request(t, e.b, e.s, logical.UpdateOperation, "rotate-root", nil); respErr(resp, err) == nil {
				t.Fatal("crashed rotate-root reported success")
			}
			// A rejected candidate is conclusive only once the change can no
			// longer be applied (issue 9, defect 16).
			e.advance(e.settleAge())
			e.restart()
			if e.walCount() != 0 {
				t.Error("rotate-root WAL left after recovery")
			}
			cfg, err := readConfig(context.Background(), e.s)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Password != e.srv.Password("admin@acme.demo") {
				t.Fatal("config does not hold the admin password Salesforce has")
			}
			if changed := cfg.Password != "Admin-Pass-1234"; changed != tc.changed {
				t.Errorf("changed = %v, want %v", changed, tc.changed)
			}
			e.addTrusted("trusted", nil)
			e.mustRotate("trusted") // the admin session works
		})
	}
}

// OAuth tokens minted with the account's old password are dropped.
func TestRotate_DropsCachedTokens(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.b.tokens.mu.Lock()
	e.b.tokens.entries["role-of-trusted"] = &cachedToken{role: "r", account: "trusted", grantType: "password", session: &sfapi.Session{AccessToken: "x"}}
	e.b.tokens.entries["role-of-other"] = &cachedToken{role: "o", account: "other", grantType: "password", session: &sfapi.Session{AccessToken: "y"}}
	e.b.tokens.mu.Unlock()
	e.mustRotate("trusted")
	e.b.tokens.mu.Lock()
	defer e.b.tokens.mu.Unlock()
	if _, ok := e.b.tokens.entries["role-of-trusted"]; ok {
		t.Error("a token of the rotated account is still cached")
	}
	if _, ok := e.b.tokens.entries["role-of-other"]; !ok {
		t.Error("a token of another account was dropped")
	}
}

// A not_required account that still stores a security token: the rotation
// invalidates that token in Salesforce, so it is reported stale, and
// password_with_token (which must log in) holds the password alone, with a
// warning, until the emailed token is written back.
func TestRotate_NotRequiredWithStoredTokenServesWorkingComposite(t *testing.T) {
	e := newRotEnv(t)
	var tok string
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { tok = u.SecurityToken })
	e.addTrusted("trusted", map[string]interface{}{"security_token": tok, "security_token_mode": "not_required"})
	e.assertServedCredentialLogsIn("trusted")

	rotated := e.mustRotate("trusted")
	if rotated.Data["security_token_status"] != tokenStatusStale {
		t.Errorf("rotate response security_token_status = %v, want stale", rotated.Data["security_token_status"])
	}
	resp, err := request(t, e.b, e.s, logical.ReadOperation, "creds/trusted", nil)
	if err := respErr(resp, err); err != nil {
		t.Fatal(err)
	}
	c := resp.Data
	if c["security_token_status"] != tokenStatusStale || c["password_with_token"] != c["password"] {
		t.Errorf("creds: security_token_status=%v, password_with_token is the password alone: %v", c["security_token_status"], c["password_with_token"] == c["password"])
	}
	if !rotContainsAll(strings.Join(resp.Warnings, " "), "stale", "not_required", "password alone") {
		t.Errorf("warnings = %v, want the stale token and the password-only composite explained", resp.Warnings)
	}
	e.assertServedCredentialLogsIn("trusted")

	// The emailed token written back: the composite has it again.
	newTok := e.srv.LatestSecurityToken(rotTrustedUser)
	if newTok == "" || newTok == tok {
		t.Fatalf("setup: no new token emailed")
	}
	mustWrite(t, e.b, e.s, "accounts/trusted/security-token", map[string]interface{}{"security_token": newTok})
	c = e.creds("trusted")
	if c["security_token_status"] != tokenStatusCurrent || c["password_with_token"] != c["password"].(string)+newTok {
		t.Errorf("after token re-entry: status %v", c["security_token_status"])
	}
	e.assertServedCredentialLogsIn("trusted")
}

// A rotate-root interrupted after Salesforce took the new admin password,
// settled while the admin user is locked out (every login refused): the
// WAL keeps the new password until a login can tell, then config gets it.
func TestRotateRoot_LockedAdminKeepsCandidate(t *testing.T) {
	e := newRotEnv(t)
	e.srv.SetOrg(func(o *emulator.Org) { o.TrustedIPRanges = []string{"127.0.0.0/8"} })
	mustWrite(t, e.b, e.s, "config", map[string]interface{}{
		"grant_type": "password", "username": demoAdminUser, "password": demoAdminPassword,
	})
	e.crashAt(stepRootPasswordChanged)
	if resp, err := request(t, e.b, e.s, logical.UpdateOperation, "rotate-root", nil); respErr(resp, err) == nil {
		t.Fatal("crashed rotate-root reported success")
	}
	sfPassword := e.srv.Password(demoAdminUser)
	e.srv.SetUserState(demoAdminUser, func(u *emulator.User) { u.IsPasswordLocked = true })
	// A rejected candidate is conclusive only once the change can no longer
	// be applied (issue 9, defect 16).
	e.advance(e.settleAge())
	e.restart()
	if e.walCount() != 1 {
		t.Fatalf("the rotate-root WAL holding the admin password Salesforce has was discarded while the admin was locked out")
	}

	e.srv.SetUserState(demoAdminUser, func(u *emulator.User) { u.IsPasswordLocked = false; u.FailedLoginAttempts = 0 })
	// The logins against the locked admin reached max_failed_logins: the
	// operator, having unlocked it, says so by writing config (issue 9).
	mustWrite(t, e.b, e.s, "config", map[string]interface{}{"verify": false})
	e.restart()
	cfg, err := readConfig(context.Background(), e.s)
	if err != nil {
		t.Fatal(err)
	}
	if e.walCount() != 0 || cfg.Password != sfPassword {
		t.Fatalf("after unlocking: WALs %d, config holds Salesforce's password: %v", e.walCount(), cfg.Password == sfPassword)
	}
	e.assertNoSecretsLogged(sfPassword)
}

// Issue 9, defect 10: a rotate-root retried after Salesforce's answer to
// its changeOwnPassword was lost settles its own pending WAL first: it
// never sends the stale old password, never tells the operator to write a
// password only the WAL knows, and once the entry can be settled config
// gets the password Salesforce has.
func TestTrust10RotateRootSettlesItsWALFirst(t *testing.T) {
	e := newRotEnv(t)
	e.srv.SetOrg(func(o *emulator.Org) { o.TrustedIPRanges = []string{"127.0.0.0/8"} })
	mustWrite(t, e.b, e.s, "config", map[string]interface{}{
		"grant_type": "password", "username": demoAdminUser, "password": demoAdminPassword,
	})
	lost := true
	e.wrapClient(func(c Client) Client {
		return &hookedClient{Client: c, afterChangeOwn: func(err error) error {
			if err == nil && lost {
				lost = false
				return &sfapi.Error{Op: "soap changeOwnPassword", Message: "connection reset", Kind: sfapi.KindTransient}
			}
			return err
		}}
	})
	if resp, err := request(t, e.b, e.s, logical.UpdateOperation, "rotate-root", nil); respErr(resp, err) == nil {
		t.Fatal("rotate-root whose answer was lost reported success")
	}
	sfPassword := e.srv.Password(demoAdminUser)
	if sfPassword == demoAdminPassword {
		t.Fatal("setup: Salesforce did not take the new admin password")
	}

	// Retried at once: Salesforce may still apply a change in flight, so
	// the entry is not settled yet, and nothing is sent.
	e.srv.ResetCalls()
	resp, err := request(t, e.b, e.s, logical.UpdateOperation, "rotate-root", nil)
	msg := ""
	if err := respErr(resp, err); err != nil {
		msg = err.Error()
	}
	if strings.Contains(msg, "write the current password to config") || strings.Contains(msg, "INVALID_OLD_PASSWORD") {
		t.Errorf("the retry sent the stale password or asks for a password only the WAL knows: %s", msg)
	}
	if n := e.srv.Calls("soap.changeOwnPassword"); n != 0 {
		t.Errorf("the retry sent %d password changes on top of an unsettled one", n)
	}

	// Later the retry settles the entry first, then rotates.
	e.advance(e.settleAge())
	if resp, err := request(t, e.b, e.s, logical.UpdateOperation, "rotate-root", nil); respErr(resp, err) != nil {
		t.Fatalf("rotate-root after the entry could be settled: %v", respErr(resp, err))
	}
	cfg, err := readConfig(context.Background(), e.s)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Password != e.srv.Password(demoAdminUser) || cfg.Password == sfPassword {
		t.Fatal("config does not hold the admin password Salesforce has after settling and rotating")
	}
	if e.walCount() != 0 {
		t.Errorf("%d WAL entries left", e.walCount())
	}
	e.assertNoSecretsLogged(sfPassword, cfg.Password)
}
