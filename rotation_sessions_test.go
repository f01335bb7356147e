package salesforce

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// appSession is a session an application opened with a credential.
func (e *rotEnv) appSession(username, secret string) (*sfapi.Session, Client) {
	e.t.Helper()
	client, err := newClient(sfapi.Config{LoginURL: e.srv.LoginURL(), AllowNonSalesforceURL: true, APIVersion: "66.0", SOAPAPIVersion: "64.0", RequestTimeout: 10 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := client.SOAPLogin(context.Background(), username, secret)
	if err != nil {
		e.t.Fatalf("application login as %s: %v", username, err)
	}
	return s, client
}

func sessionAlive(c Client, s *sfapi.Session) bool {
	_, err := c.Query(context.Background(), s, "SELECT Id FROM User LIMIT 1")
	return err == nil
}

// With end_sessions_on_rotation a rotation ends the sessions the old
// password opened and revokes the user's OAuth tokens, reports both in the
// answer, the event and reads, and never ends the engine's own sessions.
func TestEndSessions_OldCredentialSessionsEndOnRotation(t *testing.T) {
	e := newRotEnv(t)
	e.allowLoopbackWebhooks()
	hook, url := e.newWebhook(http.StatusOK)
	e.addTrusted("trusted", map[string]interface{}{"end_sessions_on_rotation": true, "webhook_url": url})
	s1, c1 := e.appSession(rotTrustedUser, rotTrustedPass)
	s2, c2 := e.appSession(rotTrustedUser, rotTrustedPass)
	refresh := e.srv.IssueRefreshToken(emulator.DemoClientID, rotTrustedUser)
	adminSessions := len(e.srv.SessionIDs(emulator.DemoAdminUsername))
	// The app's two and the one of the account write's check: all opened
	// with the old password.
	before := len(e.srv.SessionIDs(rotTrustedUser))
	if before != 3 {
		t.Fatalf("%d sessions before the rotation, want 3", before)
	}

	resp := e.mustRotate("trusted")
	// None of the rotation's own (its check before the change and its new
	// login after it) is ended.
	if resp.Data["sessions_ended"] != before || resp.Data["oauth_tokens_revoked"] != 1 {
		t.Fatalf("rotate answered %v", resp.Data)
	}
	if sessionAlive(c1, s1) || sessionAlive(c2, s2) {
		t.Error("a session of the old password is still alive")
	}
	if n := len(e.srv.SessionIDs(rotTrustedUser)); n != 2 {
		t.Errorf("%d sessions of the user left, want the engine's 2", n)
	}
	if n := len(e.srv.SessionIDs(emulator.DemoAdminUsername)); n < adminSessions || n == 0 {
		t.Errorf("admin sessions %d -> %d: the engine's admin session was ended", adminSessions, n)
	}
	client, _ := newClient(sfapi.Config{LoginURL: e.srv.MyDomainURL(), AllowNonSalesforceURL: true, APIVersion: "66.0", ClientID: emulator.DemoClientID,
		ClientSecret: emulator.DemoClientSecret, RequestTimeout: 10 * time.Second})
	if _, err := client.RefreshTokenGrant(context.Background(), refresh, nil); err == nil {
		t.Error("the refresh token granted before the rotation still works")
	}
	a := e.account("trusted")
	if a["last_sessions_ended"] != before || a["last_oauth_tokens_revoked"] != 1 || a["last_sessions_ended_username"] != rotTrustedUser {
		t.Errorf("account read: %v", a)
	}
	e.b.rot.wg.Wait()
	ev, raw, _ := hook.last()
	if ev["sessions_ended"] != float64(before) || ev["oauth_tokens_revoked"] != 1.0 {
		t.Errorf("event %s", raw)
	}
	assertNoSecrets(t, "event", string(raw), refresh, s1.AccessToken)
	e.assertNoSecretsLogged(refresh, s1.AccessToken, s2.AccessToken)
	// The new credential logs in and is left alone by the next read.
	e.assertServedCredentialLogsIn("trusted")

	// Without the setting nothing is ended.
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"end_sessions_on_rotation": false})
	c := e.creds("trusted")
	s3, c3 := e.appSession(rotTrustedUser, c["password"].(string))
	resp = e.mustRotate("trusted")
	if _, ok := resp.Data["sessions_ended"]; ok || !sessionAlive(c3, s3) {
		t.Errorf("a rotation without end_sessions_on_rotation ended sessions: %v", resp.Data)
	}
}

// A crash after the password change and before the sessions ended leaves
// them to the recovery: nothing the old password opened survives.
func TestEndSessions_CrashBeforeEndingIsFinishedOnRecovery(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", map[string]interface{}{"end_sessions_on_rotation": true})
	s1, c1 := e.appSession(rotTrustedUser, rotTrustedPass)
	e.crashedRotation("trusted", stepWALDeleted)
	if !sessionAlive(c1, s1) {
		t.Fatal("the session ended before the crash point")
	}
	e.restart()
	if sessionAlive(c1, s1) {
		t.Error("the recovery did not end the old password's session")
	}
	if a := e.account("trusted"); a["last_sessions_ended"] == nil {
		t.Errorf("account after recovery: %v", a)
	}
	e.assertServedCredentialLogsIn("trusted")
}

// When Salesforce refuses to end a session the rotation still succeeds,
// says so, and the ending is tried again until it is done.
func TestEndSessions_FailureIsRetried(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", map[string]interface{}{"end_sessions_on_rotation": true})
	s1, c1 := e.appSession(rotTrustedUser, rotTrustedPass)
	e.srv.InjectFault("rest.sobject", emulator.Fault{Status: http.StatusServiceUnavailable, Body: `[{"errorCode":"SERVER_UNAVAILABLE","message":"down"}]`})
	resp := e.mustRotate("trusted")
	if len(resp.Warnings) == 0 {
		t.Error("no warning that the sessions could not be ended")
	}
	if !sessionAlive(c1, s1) {
		t.Fatal("the session ended despite the fault")
	}
	e.srv.ClearFaults()
	e.b.settlePass(context.Background(), e.s)
	if sessionAlive(c1, s1) {
		t.Error("the retry did not end the session")
	}
	e.assertServedCredentialLogsIn("trusted")
}

// In a dual account the rotated user is the one that was active a period
// ago: its sessions end, the active user's stay.
func TestEndSessions_DualEndsTheRotatedUsersSessions(t *testing.T) {
	e := newRotEnv(t)
	e.addTrustedPair("bg", map[string]interface{}{"end_sessions_on_rotation": true})
	old, oldClient := e.appSession(rotTrustedUser, rotTrustedPass)
	e.mustRotate("bg") // app becomes active; its sessions (none) end
	c := e.creds("bg")
	active, activeClient := e.appSession(c["username"].(string), c["password"].(string))
	if !sessionAlive(oldClient, old) {
		t.Fatal("the first rotation ended the still valid user's session")
	}
	// trusted's password changes: its sessions end (the app's and the
	// account write's check).
	want := len(e.srv.SessionIDs(rotTrustedUser))
	resp := e.mustRotate("bg")
	if resp.Data["rotated_username"] != rotTrustedUser || resp.Data["sessions_ended"] != want || want != 2 {
		t.Fatalf("rotate answered %v", resp.Data)
	}
	if sessionAlive(oldClient, old) {
		t.Error("the rotated user's old session is alive")
	}
	if !sessionAlive(activeClient, active) {
		t.Error("the other user's session was ended")
	}
}

// An admin that may not end sessions never holds rotations back: each
// rotation warns, the ending stays pending, and turning the option off
// drops it.
func TestEndSessions_PermissionRefusalNeverBlocksRotation(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", map[string]interface{}{"end_sessions_on_rotation": true})
	e.appSession(rotTrustedUser, rotTrustedPass)
	e.srv.InjectFault("rest.sobject", emulator.Fault{Status: http.StatusForbidden,
		Body: `[{"errorCode":"INSUFFICIENT_ACCESS","message":"insufficient access rights on object id"}]`})
	for v := 1; v <= 2; v++ {
		resp := e.mustRotate("trusted")
		if resp.Data["version"] != v || len(resp.Warnings) == 0 {
			t.Fatalf("rotation %d: %v, warnings %v", v, resp.Data, resp.Warnings)
		}
	}
	e.b.rot.mu.Lock()
	_, marked := e.b.rot.unfinished["trusted"]
	e.b.rot.mu.Unlock()
	if marked {
		t.Error("a permission refusal is retried every minute")
	}
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"end_sessions_on_rotation": false})
	acct, _ := readAccount(context.Background(), e.s, "trusted")
	if !acct.EndSessionsPendingSince.IsZero() || acct.unfinishedWork() {
		t.Error("turning end_sessions_on_rotation off left the ending pending")
	}
}
