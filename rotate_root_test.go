package salesforce

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// newRootEnv is a rotEnv whose config logs in as the demo admin with a
// password from a trusted address, so rotate-root can run. The admin
// password was set an hour ago: a change seconds before a rotate-root
// would make its change mark useless (changeMarkGuard).
func newRootEnv(t *testing.T) *rotEnv {
	e := newRotEnv(t)
	e.srv.SetOrg(func(o *emulator.Org) { o.TrustedIPRanges = []string{"127.0.0.0/8"} })
	e.srv.SetUserState(demoAdminUser, func(u *emulator.User) { u.PasswordChangedAt = u.PasswordChangedAt.Add(-time.Hour) })
	mustWrite(t, e.b, e.s, "config", map[string]interface{}{
		"grant_type": "password", "username": demoAdminUser, "password": demoAdminPassword,
	})
	return e
}

// crashedRootRotation runs a rotate-root that dies at step and returns its
// WAL entry.
func (e *rotEnv) crashedRootRotation(step string) *rootRotationWAL {
	e.t.Helper()
	e.crashAt(step)
	if resp, err := request(e.t, e.b, e.s, logical.UpdateOperation, "rotate-root", nil); respErr(resp, err) == nil {
		e.t.Fatal("crashed rotate-root reported success")
	}
	e.b.rot.testStep = nil
	ctx := context.Background()
	ids, err := framework.ListWAL(ctx, e.s)
	if err != nil || len(ids) != 1 {
		e.t.Fatalf("WAL entries after the crash: %v %v, want one", ids, err)
	}
	entry, err := framework.GetWAL(ctx, e.s, ids[0])
	if err != nil || entry == nil || entry.Kind != rootRotationWALKind {
		e.t.Fatalf("the WAL entry is not a rotate-root's: %+v %v", entry, err)
	}
	w, err := decodeRootRotationWAL(entry.Data)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

// assertConfigPassword checks that config holds want and that Salesforce
// has it.
func (e *rotEnv) assertConfigPassword(want string) {
	e.t.Helper()
	cfg, err := readConfig(context.Background(), e.s)
	if err != nil {
		e.t.Fatal(err)
	}
	if cfg.Password != want || e.srv.Password(demoAdminUser) != want {
		e.t.Fatalf("config holds the expected admin password: %v; Salesforce has it: %v", cfg.Password == want, e.srv.Password(demoAdminUser) == want)
	}
}

// Issue 10 (make chaos, root/before-send/kill-twice): a rotate-root that
// died before its change reached Salesforce is settled with no login as
// the admin. The admin password's change date, read again through the
// session the entry kept, has not moved. A login with the candidate would
// be a failed admin login, and a second crash during it would leave it
// unanswered, so the next recovery would add another, until the admin
// reached max_failed_logins and the entry stayed for good.
func TestRotateRoot_UnsentChangeSettlesWithoutLogin(t *testing.T) {
	e := newRootEnv(t)
	w := e.crashedRootRotation(stepRootWALWritten)
	if w.ChangeMark == nil || w.ChangeMark.AccessToken == "" {
		t.Fatal("the WAL entry has no change mark")
	}

	e.advance(e.settleAge())
	e.srv.ResetCalls()
	e.restart()
	if e.walCount() != 0 {
		t.Fatal("the WAL entry of a change that never reached Salesforce was kept")
	}
	if n := e.srv.Calls("soap.login") + e.srv.Calls("oauth.token"); n != 0 {
		t.Errorf("settling made %d admin logins, want none", n)
	}
	if n := e.failedLogins(demoAdminUser); n != 0 {
		t.Errorf("%d failed admin logins, want none", n)
	}
	e.assertConfigPassword(demoAdminPassword)
	mustWrite(t, e.b, e.s, "rotate-root", nil)
	e.assertNoSecretsLogged(w.Candidate, w.ChangeMark.AccessToken)
}

// When the kept session no longer works (here it expired while Vault was
// down), the change date cannot be read and settling falls back to
// logins: one failed login with the candidate, then the stored password.
func TestRotateRoot_ExpiredMarkSessionSettlesByLogin(t *testing.T) {
	e := newRootEnv(t)
	w := e.crashedRootRotation(stepRootWALWritten)

	e.srv.AdvanceClock(3 * time.Hour)
	e.advance(3 * time.Hour)
	e.restart()
	if e.walCount() != 0 {
		t.Fatal("the WAL entry was kept")
	}
	if n := e.failedLogins(demoAdminUser); n != 1 {
		t.Errorf("%d failed admin logins, want the one with the candidate", n)
	}
	e.assertConfigPassword(demoAdminPassword)
	e.assertNoSecretsLogged(w.Candidate, w.ChangeMark.AccessToken)
}

// A change that landed moves the change date: the candidate is checked
// with one login, which succeeds, and config gets it.
func TestRotateRoot_LandedChangeIsAdopted(t *testing.T) {
	e := newRootEnv(t)
	w := e.crashedRootRotation(stepRootPasswordChanged)
	if e.srv.Password(demoAdminUser) != w.Candidate {
		t.Fatal("setup: Salesforce did not take the candidate")
	}

	e.advance(e.settleAge())
	e.restart()
	if e.walCount() != 0 {
		t.Fatal("the WAL entry was kept")
	}
	if n := e.failedLogins(demoAdminUser); n != 0 {
		t.Errorf("%d failed admin logins, want none", n)
	}
	e.assertConfigPassword(w.Candidate)
}

// While a rotate-root is unsettled, reads of config say so: the admin
// password it holds may not be the one Salesforce has. Once settled, the
// status and the warning are gone.
func TestRotateRoot_ConfigReadShowsPendingRotation(t *testing.T) {
	e := newRootEnv(t)
	w := e.crashedRootRotation(stepRootPasswordChanged)

	e.restart() // too young to settle: Salesforce could still apply a change
	resp, err := request(t, e.b, e.s, logical.ReadOperation, "config", nil)
	if err := respErr(resp, err); err != nil {
		t.Fatal(err)
	}
	if resp.Data["root_rotation_status"] != "pending_reconciliation" || resp.Data["root_rotation_pending_since"] != w.CreatedAt.Format(time.RFC3339) {
		t.Errorf("config read: root_rotation_status %v, root_rotation_pending_since %v, want pending_reconciliation since %s",
			resp.Data["root_rotation_status"], resp.Data["root_rotation_pending_since"], w.CreatedAt.Format(time.RFC3339))
	}
	if len(resp.Warnings) != 1 || !rotContainsAll(resp.Warnings[0], "rotate-root", "may not be the one Salesforce has", "checked after") {
		t.Errorf("config read warnings = %q, want the unsettled rotate-root explained", resp.Warnings)
	}

	e.advance(e.settleAge())
	e.restart()
	e.assertConfigPassword(w.Candidate)
	resp, err = request(t, e.b, e.s, logical.ReadOperation, "config", nil)
	if err := respErr(resp, err); err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Data["root_rotation_status"]; ok || len(resp.Warnings) != 0 {
		t.Errorf("after settling: root_rotation_status %v, warnings %q, want neither", resp.Data["root_rotation_status"], resp.Warnings)
	}
	e.assertNoSecretsLogged(w.Candidate, w.ChangeMark.AccessToken)
}

// The one path that still needs logins: the kept session has expired, so
// settling probes the candidate, and a second crash comes inside that
// login. The next recovery's probe is the admin's second failed login,
// max_failed_logins stops the check with the stored password, and the
// engine keeps the entry rather than risk a lockout: config reads say it
// is pending, and a write of config with the admin's current password
// (which resets the count) lets it settle.
func TestRotateRoot_CrashDuringFallbackProbeStopsSafely(t *testing.T) {
	e := newRootEnv(t)
	w := e.crashedRootRotation(stepRootWALWritten)
	e.srv.AdvanceClock(3 * time.Hour) // the kept session expires
	e.advance(3 * time.Hour)

	// First recovery: its login with the candidate reaches Salesforce and
	// never returns, as if Vault died waiting for the answer.
	inFlight, never := make(chan struct{}), make(chan struct{})
	var first sync.Once
	e.wrapClient(func(c Client) Client {
		return &hookedClient{Client: c, afterGrant: func(secret string) {
			if secret != w.Candidate {
				return
			}
			held := false
			first.Do(func() { close(inFlight); held = true })
			if held {
				<-never
			}
		}}
	})
	e.b.Cleanup(context.Background())
	crashed, _, crashedLogs := getTestBackendWithLogs(t)
	// The dead process makes no further call until the test is over; its
	// cleanup, registered first and so run last, waits for the login.
	t.Cleanup(func() { close(never) })
	e.prepare(crashed)
	if err := crashed.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.s}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inFlight:
	case <-time.After(30 * time.Second):
		t.Fatal("the recovery never logged in with the candidate")
	}

	// Second recovery, on a new backend: a killed process cleans nothing up.
	next, _, logs := getTestBackendWithLogs(t)
	e.prepare(next)
	e.b, e.logs = next, logs
	e.initialize()
	if e.walCount() != 1 {
		t.Fatal("the entry was dropped though the stored password was never checked")
	}
	if n := e.failedLogins(demoAdminUser); n != 2 || e.userLocked(demoAdminUser) {
		t.Errorf("admin: %d failed logins (locked: %v), want 2 and not locked", n, e.userLocked(demoAdminUser))
	}
	resp, err := request(t, e.b, e.s, logical.ReadOperation, "config", nil)
	if err := respErr(resp, err); err != nil || resp.Data["root_rotation_status"] != "pending_reconciliation" {
		t.Fatalf("config read: %v, root_rotation_status %v, want pending_reconciliation", err, resp.Data["root_rotation_status"])
	}

	mustWrite(t, e.b, e.s, "config", map[string]interface{}{"password": demoAdminPassword})
	e.restart()
	if e.walCount() != 0 {
		t.Fatal("the entry was kept after the operator wrote the admin password")
	}
	e.assertConfigPassword(demoAdminPassword)
	if n := e.failedLogins(demoAdminUser); n != 2 {
		t.Errorf("%d failed admin logins after settling, want still 2", n)
	}
	e.assertNoSecretsLogged(w.Candidate, w.ChangeMark.AccessToken)
	e.logs = crashedLogs
	e.assertNoSecretsLogged(w.Candidate, w.ChangeMark.AccessToken)
}

// A config write whose check logs in with config's password settles only
// the entries Salesforce can no longer act on: a younger one's change may
// still land after the check.
func TestRotateRoot_ConfigWriteSettlesOnlyOldEntries(t *testing.T) {
	e := newRootEnv(t)
	e.crashedRootRotation(stepRootWALWritten)
	mustWrite(t, e.b, e.s, "config", map[string]interface{}{"password": demoAdminPassword})
	if e.walCount() != 1 {
		t.Fatal("a config write settled an entry whose change could still land")
	}
	e.advance(e.settleAge())
	mustWrite(t, e.b, e.s, "config", map[string]interface{}{"password": demoAdminPassword})
	if e.walCount() != 0 {
		t.Fatal("a config write whose check logged in kept an entry Salesforce can no longer act on")
	}
	e.assertConfigPassword(demoAdminPassword)
}
