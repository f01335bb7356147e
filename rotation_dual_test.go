package salesforce

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// The demo org's second integration users: integration2 has the same
// access as integration (a blue/green pair), integration3 does not; app
// logs in without a token like trusted (a trusted pair).
const (
	rotInteg2User     = "integration2@acme.demo"
	rotInteg2Password = "Integ2-Pass-1234"
	rotInteg2Token    = "INTEG2TOKEN000000000000000"
	rotInteg3User     = "integration3@acme.demo"
	rotInteg3Password = "Integ3-Pass-1234"
	rotInteg3Token    = "INTEG3TOKEN000000000000000"
	rotAppUser        = "app@acme.demo"
	rotAppPassword    = "App-Pass-1234"
)

// addTrustedPair stores a dual account of trusted and app, which log in
// from the test's address without a security token.
func (e *rotEnv) addTrustedPair(name string, extra map[string]interface{}) {
	e.t.Helper()
	data := map[string]interface{}{
		"username": rotTrustedUser, "password": rotTrustedPass,
		"rotation_strategy": strategyDual, "secondary_username": rotAppUser, "secondary_password": rotAppPassword,
	}
	for k, v := range extra {
		data[k] = v
	}
	mustWrite(e.t, e.b, e.s, "accounts/"+name, data)
}

// addIntegrationPair stores a dual account of integration and secondary
// (integration2 or integration3), which need their security tokens.
func (e *rotEnv) addIntegrationPair(name, secondary, password, token string, extra map[string]interface{}) {
	e.t.Helper()
	data := map[string]interface{}{
		"username": rotIntegUser, "password": rotIntegPassword, "security_token": rotIntegToken,
		"rotation_strategy": strategyDual, "secondary_username": secondary, "secondary_password": password, "secondary_security_token": token,
	}
	for k, v := range extra {
		data[k] = v
	}
	mustWrite(e.t, e.b, e.s, "accounts/"+name, data)
}

// loginError logs in to the org as an application would (outside the
// engine, so outside its login budget) and returns Salesforce's answer.
func (e *rotEnv) loginError(username, secret string) error {
	e.t.Helper()
	client, err := newClient(sfapi.Config{LoginURL: e.srv.LoginURL(), AllowNonSalesforceURL: true, APIVersion: "66.0", SOAPAPIVersion: "64.0", RequestTimeout: 10 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = client.SOAPLogin(context.Background(), username, secret)
	return err
}

// heldCredential is what an application read from creds/<name> and keeps.
type heldCredential struct{ username, secret string }

func (e *rotEnv) hold(name string) heldCredential {
	e.t.Helper()
	c := e.creds(name)
	return heldCredential{c["username"].(string), c["password_with_token"].(string)}
}

func (e *rotEnv) assertWorks(what string, h heldCredential) {
	e.t.Helper()
	if err := e.loginError(h.username, h.secret); err != nil {
		e.t.Errorf("%s (%s) no longer logs in: %v", what, h.username, err)
	}
}

func (e *rotEnv) assertDead(what string, h heldCredential) {
	e.t.Helper()
	if err := e.loginError(h.username, h.secret); err == nil {
		e.t.Errorf("%s (%s) still logs in", what, h.username)
	}
}

// A dual account serves one user; a rotation changes the other one's
// password and makes it active, and the credential served before keeps
// working until the next rotation, whose event says who became active.
func TestDual_RotationSwitchesUsersAndKeepsTheOldCredential(t *testing.T) {
	e := newRotEnv(t)
	e.allowLoopbackWebhooks()
	hook, url := e.newWebhook(http.StatusOK)
	e.addTrustedPair("bg", map[string]interface{}{"webhook_url": url, "rotation_period": "24h", "validation_query": "SELECT Id FROM User LIMIT 1"})

	c := e.creds("bg")
	if c["username"] != rotTrustedUser || c["active_user"] != rolePrimary || c["rotation_strategy"] != strategyDual || c["active_since"] == "" {
		t.Fatalf("creds before any rotation: %v", c)
	}
	before := e.hold("bg")

	resp := e.mustRotate("bg")
	if resp.Data["rotated_username"] != rotAppUser || resp.Data["active_user"] != roleSecondary || resp.Data["active_username"] != rotAppUser {
		t.Fatalf("rotate answered %v", resp.Data)
	}
	if len(resp.Warnings) != 0 {
		t.Errorf("warnings: %v", resp.Warnings)
	}
	c = e.creds("bg")
	if c["username"] != rotAppUser || c["password"] != e.srv.Password(rotAppUser) || c["password"] == rotAppPassword || c["version"] != 1 {
		t.Fatalf("after the first rotation creds serve %v %v version %v", c["username"], c["password"] == rotAppPassword, c["version"])
	}
	if c["grace_until"] != c["next_vault_rotation"] || c["grace_until"] == "" {
		t.Errorf("grace_until = %v, want the next rotation %v", c["grace_until"], c["next_vault_rotation"])
	}
	if e.srv.Password(rotTrustedUser) != rotTrustedPass {
		t.Fatal("the rotation changed the active user's password")
	}
	first := e.hold("bg")
	e.assertWorks("the credential served before the rotation", before)
	e.assertWorks("the new credential", first)

	e.b.rot.wg.Wait()
	ev, _, _ := hook.last()
	if ev["event"] != "rotate" || ev["username"] != rotAppUser || ev["active_username"] != rotAppUser || ev["active_user"] != roleSecondary {
		t.Errorf("rotation event %v, want the rotated and now active user app", ev)
	}

	resp = e.mustRotate("bg")
	if resp.Data["rotated_username"] != rotTrustedUser || resp.Data["active_user"] != rolePrimary {
		t.Fatalf("second rotate answered %v", resp.Data)
	}
	second := e.hold("bg")
	if second.username != rotTrustedUser || e.creds("bg")["version"] != 2 {
		t.Fatalf("after the second rotation creds serve %s", second.username)
	}
	e.assertWorks("the credential served after the first rotation", first)
	e.assertWorks("the newest credential", second)
	e.assertDead("the credential read two rotations ago", before)

	acct := e.account("bg")
	if acct["secondary_username"] != rotAppUser || acct["active_user"] != rolePrimary || acct["secondary_user_id"] == "" {
		t.Errorf("account read: %v", acct)
	}
	raw, _ := json.Marshal(acct)
	assertNoSecrets(t, "accounts/bg", string(raw), e.srv.Password(rotAppUser), e.srv.Password(rotTrustedUser), rotAppPassword)
	e.assertNoSecretsLogged(e.srv.Password(rotAppUser), e.srv.Password(rotTrustedUser), rotAppPassword, rotTrustedPass)
}

// With users that need a security token the switch waits until the
// rotated user's emailed token is written: until then creds/<name> keeps
// serving the user that logs in, and no rotation is scheduled.
func TestDual_TokenBoundSwitchWaitsForTheToken(t *testing.T) {
	e := newRotEnv(t)
	e.allowLoopbackWebhooks()
	hook, url := e.newWebhook(http.StatusOK)
	e.addIntegrationPair("bg", rotInteg2User, rotInteg2Password, rotInteg2Token, map[string]interface{}{
		"webhook_url": url, "rotation_period": "24h",
	})
	if a := e.account("bg"); a["secondary_security_token_status"] != tokenStatusCurrent || a["security_token_mode"] != tokenModeRequired {
		t.Fatalf("account: %v", a)
	}
	before := e.hold("bg")

	resp := e.mustRotate("bg")
	if resp.Data["switch_status"] != switchAwaitingToken || resp.Data["active_username"] != rotIntegUser {
		t.Fatalf("rotate answered %v", resp.Data)
	}
	if r, _ := resp.Data["switch_reason"].(string); !strings.Contains(r, "accounts/bg/security-token with user=secondary") {
		t.Errorf("switch_reason %q does not say how to finish the switch", r)
	}
	c := e.creds("bg")
	// Nothing scheduled, no ttl or rotation_period: Vault Agent keeps
	// reading on its interval and picks up the switch.
	if c["username"] != rotIntegUser || c["switch_status"] != switchAwaitingToken || c["next_vault_rotation"] != nil || c["ttl"] != nil || c["rotation_period"] != nil {
		t.Fatalf("creds while the token is awaited: %v", c)
	}
	for _, w := range []string{"stale"} {
		for _, warning := range respWarnings(t, e, "creds/bg") {
			if strings.Contains(warning, w) {
				t.Errorf("creds warn of a %s token: %s", w, warning)
			}
		}
	}
	e.assertWorks("the served credential while the switch waits", before)
	if a := e.account("bg"); a["rotation_status"] != "awaiting_switch" || a["secondary_security_token_status"] != tokenStatusStale {
		t.Errorf("account while the switch waits: status %v, secondary token %v", a["rotation_status"], a["secondary_security_token_status"])
	}

	// Another rotation would make the awaited token useless: refused.
	resp, err := e.rotate("bg")
	if statusOf(resp, err) != http.StatusConflict || !strings.Contains(respErr(resp, err).Error(), "security-token") {
		t.Fatalf("a rotation while the switch waits: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	if e.srv.Password(rotIntegUser) != rotIntegPassword {
		t.Fatal("the refused rotation changed a password")
	}

	// A wrong token switches nothing.
	if resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/bg/security-token", map[string]interface{}{
		"security_token": rotInteg2Token, "user": roleSecondary,
	}); respErr(resp, err) == nil {
		t.Fatal("the stale token was accepted")
	}
	resp = mustWrite(t, e.b, e.s, "accounts/bg/security-token", map[string]interface{}{
		"security_token": e.srv.LatestSecurityToken(rotInteg2User), "user": roleSecondary,
	})
	if resp.Data["active_username"] != rotInteg2User || resp.Data["username"] != rotInteg2User {
		t.Fatalf("token write answered %v", resp.Data)
	}
	c = e.creds("bg")
	if c["username"] != rotInteg2User || c["active_user"] != roleSecondary || c["switch_status"] != nil || c["grace_until"] == nil ||
		c["rotation_period"] != int64(86400) {
		t.Fatalf("creds after the token: %v", c)
	}
	e.assertServedCredentialLogsIn("bg")
	e.assertWorks("the credential served before the switch", before)
	if a := e.account("bg"); a["next_vault_rotation"] == "" {
		t.Error("the account is not scheduled again after the switch")
	}
	e.b.rot.wg.Wait()
	// Events are delivered in the background, in any order.
	ev := hook.find("switch")
	if ev == nil || ev["active_username"] != rotInteg2User || ev["active_user"] != roleSecondary || ev["outcome"] != outcomeSwitched {
		t.Errorf("switch event %v", ev)
	}
	if ev := hook.find("rotate"); ev == nil || ev["username"] != rotInteg2User || ev["active_username"] != rotIntegUser || ev["switch_status"] != switchAwaitingToken {
		t.Errorf("rotate event %v", ev)
	}
}

// Scheduled rotation alternates the users, each keeping a full period.
func TestDual_ScheduledRotation(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	e.addTrustedPair("bg", map[string]interface{}{"rotation_period": "1h"})
	held := e.hold("bg")
	e.advance(time.Hour + time.Second)
	e.tick()
	c := e.creds("bg")
	if c["username"] != rotAppUser || c["version"] != 1 {
		t.Fatalf("after the first scheduled rotation: %v", c)
	}
	graceUntil, _ := time.Parse(time.RFC3339, c["grace_until"].(string))
	if d := graceUntil.Sub(e.now()); d < 59*time.Minute || d > time.Hour {
		t.Errorf("grace_until is %s away, want one period", d)
	}
	e.assertWorks("the credential of the previous period", held)
	e.advance(time.Hour + time.Second)
	e.tick()
	if c := e.creds("bg"); c["username"] != rotTrustedUser || c["version"] != 2 {
		t.Fatalf("after the second scheduled rotation: %v", c)
	}
	e.assertDead("the credential of two periods ago", held)
	e.assertServedCredentialLogsIn("bg")
}

// The login budget is per Salesforce user: the inactive user's failed
// logins block its rotation, never the active user's logins.
func TestDual_LoginBudgetIsPerUser(t *testing.T) {
	e := newRotEnv(t)
	e.addTrustedPair("bg", nil)
	mustWrite(t, e.b, e.s, "roles/bg", map[string]interface{}{"grant_type": "password", "account": "bg"})
	// app's password changes outside Vault: the check before its rotation fails.
	e.srv.SetUserState(rotAppUser, func(u *emulator.User) { u.Password = "Changed-Outside-1" })
	resp, err := e.rotate("bg")
	if respErr(resp, err) == nil {
		t.Fatal("rotation with a drifted inactive user succeeded")
	}
	a := e.account("bg")
	if a["secondary_failed_logins"] != 1 || a["failed_logins"] != 0 || a["rotation_blocked"] != "drift" {
		t.Fatalf("budgets: secondary %v primary %v blocked %v", a["secondary_failed_logins"], a["failed_logins"], a["rotation_blocked"])
	}
	if msg := a["last_rotation_error"].(string); !strings.Contains(msg, "secondary_password") || !strings.Contains(msg, "user=secondary") {
		t.Errorf("the drift of the secondary user does not say how to fix it: %s", msg)
	}
	// The active user is unaffected: creds and tokens of the account work.
	e.assertServedCredentialLogsIn("bg")
	mustRead(t, e.b, e.s, "token/bg")
	// The operator's reset covers both users.
	mustWrite(t, e.b, e.s, "accounts/bg", map[string]interface{}{"reset_failed_logins": true})
	if n := e.account("bg")["secondary_failed_logins"]; n != 0 {
		t.Errorf("secondary_failed_logins after reset_failed_logins = %v", n)
	}
	// The operator's fix clears the block.
	mustWrite(t, e.b, e.s, "accounts/bg", map[string]interface{}{"secondary_password": "Changed-Outside-1"})
	e.mustRotate("bg")
	if e.creds("bg")["username"] != rotAppUser {
		t.Error("no switch after the fix")
	}
}

// find returns the last received event named event.
func (w *rotWebhookRecorder) find(event string) map[string]interface{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.bodies) - 1; i >= 0; i-- {
		var m map[string]interface{}
		if json.Unmarshal(w.bodies[i], &m) == nil && m["event"] == event {
			return m
		}
	}
	return nil
}

// last_updated of a dual account follows the credential creds/<name>
// serves: a new password or token of the inactive user, and the rotation
// that changes it while the switch awaits its token, leave it; the switch
// moves it, and so does a new password of the active user.
func TestDual_LastUpdatedMovesAtTheSwitch(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegrationPair("bg", rotInteg2User, rotInteg2Password, rotInteg2Token, map[string]interface{}{"rotation_period": "24h"})
	write := func(data map[string]interface{}) func() {
		return func() { mustWrite(t, e.b, e.s, "accounts/bg", data) }
	}
	e.srv.SetUserState(rotInteg2User, func(u *emulator.User) { u.Password = "Integ2-Pass-5678" })
	e.assertLastUpdated("bg", "a new password of the inactive secondary", false, write(map[string]interface{}{"secondary_password": "Integ2-Pass-5678"}))
	e.assertLastUpdated("bg", "the rotation of the inactive user, awaiting its token", false, func() {
		if resp := e.mustRotate("bg"); resp.Data["switch_status"] != switchAwaitingToken {
			t.Fatalf("rotate answered %v", resp.Data)
		}
	})
	e.assertLastUpdated("bg", "the token write that switches", true, func() {
		resp := mustWrite(t, e.b, e.s, "accounts/bg/security-token", map[string]interface{}{
			"security_token": e.srv.LatestSecurityToken(rotInteg2User), "user": roleSecondary,
		})
		if resp.Data["active_username"] != rotInteg2User {
			t.Fatalf("token write answered %v", resp.Data)
		}
	})
	e.srv.SetUserState(rotIntegUser, func(u *emulator.User) { u.Password = "Integ-Pass-5678" })
	e.assertLastUpdated("bg", "a new password of the now inactive primary", false, write(map[string]interface{}{"password": "Integ-Pass-5678"}))
	e.srv.SetUserState(rotInteg2User, func(u *emulator.User) { u.Password = "Integ2-Pass-9012" })
	e.assertLastUpdated("bg", "a new password of the active secondary", true, write(map[string]interface{}{"secondary_password": "Integ2-Pass-9012"}))
}

// vault list -detailed accounts/ says which user of a pair is served and
// that a switch waits, as the account's read does.
func TestDual_ListKeyInfo(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegrationPair("bg", rotInteg2User, rotInteg2Password, rotInteg2Token, map[string]interface{}{"rotation_period": "24h"})
	e.addTrusted("single", nil)
	e.mustRotate("bg")
	_, info, resp := listAccounts(t, e.b, e.s, "")
	bg, a := info["bg"], e.account("bg")
	if bg["username"] != rotIntegUser || bg["active_username"] != rotIntegUser || bg["switch_status"] != switchAwaitingToken ||
		bg["rotation_status"] != "awaiting_switch" || bg["rotation_status"] != a["rotation_status"] {
		t.Errorf("key_info of the pair awaiting its token: %v (read: %v)", bg, a["rotation_status"])
	}
	if _, ok := info["single"]["active_username"]; ok {
		t.Errorf("key_info of a single-user account: %v", info["single"])
	}
	mustWrite(t, e.b, e.s, "accounts/bg/security-token", map[string]interface{}{
		"security_token": e.srv.LatestSecurityToken(rotInteg2User), "user": roleSecondary,
	})
	_, info, _ = listAccounts(t, e.b, e.s, "")
	if bg := info["bg"]; bg["active_username"] != rotInteg2User || bg["switch_status"] != nil || bg["rotation_status"] != "scheduled" {
		t.Errorf("key_info after the switch: %v", bg)
	}
	raw, _ := json.Marshal(resp.Data)
	assertNoSecrets(t, "accounts list", string(raw), e.srv.Password(rotInteg2User), rotIntegPassword, rotInteg2Token, rotIntegToken)
}
