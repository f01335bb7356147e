package salesforce

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// crashAt makes the next rotation stop at step as if Vault died there.
func (e *rotEnv) crashAt(step string) {
	e.b.rot.testStep = func(s string) error {
		if s == step {
			return errSimulatedCrash
		}
		return nil
	}
}

// crashedRotation rotates name with a simulated crash at step, checks that
// the crash is reported as a failure, and lets later calls run normally.
func (e *rotEnv) crashedRotation(name, step string) {
	e.t.Helper()
	e.crashAt(step)
	if resp, err := e.rotate(name); err == nil && (resp == nil || !resp.IsError()) {
		e.t.Fatalf("rotation of %s crashed at %s but was reported as success", name, step)
	}
	e.b.rot.testStep = nil
}

func (e *rotEnv) walCount() int {
	e.t.Helper()
	ids, err := framework.ListWAL(context.Background(), e.s)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(ids)
}

// The crash table: a rotation dies between every pair of its steps; after a
// restart the account logs in with exactly what Vault serves.
func TestRotate_CrashAtEveryStep(t *testing.T) {
	steps := []struct {
		step        string
		wantChanged bool
	}{
		{stepWALWritten, false},
		{stepPasswordChanged, true},
		{stepStored, true},
		{stepWALDeleted, true},
	}
	accounts := []struct {
		name     string
		username string
		add      func(e *rotEnv)
		token    bool
	}{
		{"trusted", rotTrustedUser, func(e *rotEnv) { e.addTrusted("trusted", nil) }, false},
		{"etl", rotIntegUser, func(e *rotEnv) { e.addIntegration("etl", nil) }, true},
	}
	for _, a := range accounts {
		for _, st := range steps {
			t.Run(a.name+"/"+st.step, func(t *testing.T) {
				e := newRotEnv(t)
				a.add(e)
				oldPassword := e.creds(a.name)["password"].(string)
				e.crashAt(st.step)
				if resp, err := e.rotate(a.name); respErr(resp, err) == nil {
					t.Fatal("the crashed rotation reported success")
				}

				// A rejected candidate is conclusive only once the change can
				// no longer be applied (issue 9, defect 16).
				e.advance(e.settleAge())
				e.restart()

				if n := e.walCount(); n != 0 {
					t.Errorf("%d WAL entries left after recovery", n)
				}
				creds := e.creds(a.name)
				served := creds["password"].(string)
				if served != e.srv.Password(a.username) {
					t.Fatalf("Vault serves a password Salesforce does not have")
				}
				if changed := served != oldPassword; changed != st.wantChanged {
					t.Errorf("password changed = %v, want %v", changed, st.wantChanged)
				}
				wantVersion := 0
				if st.wantChanged {
					wantVersion = 1
				}
				if creds["version"] != wantVersion {
					t.Errorf("version = %v, want %d", creds["version"], wantVersion)
				}
				if a.token && st.wantChanged {
					if creds["security_token_status"] != tokenStatusStale {
						t.Errorf("token status = %v, want stale", creds["security_token_status"])
					}
					mustWrite(t, e.b, e.s, "accounts/"+a.name+"/security-token",
						map[string]interface{}{"security_token": e.srv.LatestSecurityToken(a.username)})
				}
				e.assertServedCredentialLogsIn(a.name)

				// And the account rotates normally afterwards.
				e.b.rot.testStep = nil
				e.mustRotate(a.name)
				if e.creds(a.name)["password"] != e.srv.Password(a.username) {
					t.Error("the next rotation after recovery is inconsistent")
				}
			})
		}
	}
}

// Vault's periodic WALRollback settles a WAL left by a crashed rotation
// without a restart.
func TestWALRollback_RollsForward(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.crashedRotation("trusted", stepPasswordChanged)
	if e.walCount() != 1 {
		t.Fatalf("WALs = %d, want 1", e.walCount())
	}
	e.advance(e.settleAge())
	_, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RollbackOperation, Path: "", Storage: e.s,
		Data: map[string]interface{}{"immediate": true},
	})
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if e.walCount() != 0 {
		t.Errorf("WAL not settled by WALRollback")
	}
	e.assertServedCredentialLogsIn("trusted")
	if e.creds("trusted")["version"] != 1 {
		t.Errorf("version = %v, want 1", e.creds("trusted")["version"])
	}
}

// A WAL entry that Vault's WALRollback rolls forward moves the account in
// the queue to its new next rotation.
func TestWALRollback_RollForwardRequeues(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "24h"})
	e.advance(time.Hour)
	e.crashedRotation("trusted", stepPasswordChanged)
	e.advance(e.settleAge())
	_, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RollbackOperation, Path: "", Storage: e.s,
		Data: map[string]interface{}{"immediate": true},
	})
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if e.version("trusted") != 1 {
		t.Fatalf("version = %d, want 1 (rolled forward)", e.version("trusted"))
	}
	want := e.nextRotation("trusted")
	if at, ok := e.queuedAt("trusted"); !ok || !at.Equal(want) {
		t.Errorf("queued at %v (%v), want the stored next rotation %v", at, ok, want)
	}
}

// A WAL entry of a kind this engine does not know is an error, logged and
// kept, by Vault's WALRollback and at start-up alike: only the engine that
// wrote it knows how to settle it.
func TestWAL_UnknownKindKept(t *testing.T) {
	e := newRotEnv(t)
	ctx := context.Background()
	id, err := framework.PutWAL(ctx, e.s, "salesforceFromTheFuture", map[string]interface{}{"account": "x"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.b.HandleRequest(ctx, &logical.Request{
		Operation: logical.RollbackOperation, Path: "", Storage: e.s,
		Data: map[string]interface{}{"immediate": true},
	})
	if msg := respErr(resp, err); msg == nil || !strings.Contains(msg.Error(), `unknown kind "salesforceFromTheFuture"`) {
		t.Errorf("rollback error = %v, want one naming the unknown kind", msg)
	}
	e.restart()
	if entry, err := framework.GetWAL(ctx, e.s, id); err != nil || entry == nil {
		t.Fatalf("the WAL entry of an unknown kind was deleted (%v)", err)
	}
	if !strings.Contains(e.logs.String(), `unknown kind \"salesforceFromTheFuture\"`) {
		t.Errorf("start-up did not log the unknown WAL kind:\n%s", e.logs.String())
	}
}

// A new rotation first settles an unfinished one, so a password is never
// set on top of an unknown one.
func TestRotate_SettlesUnfinishedFirst(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.crashedRotation("trusted", stepPasswordChanged)
	e.advance(e.settleAge())
	e.mustRotate("trusted")
	if e.walCount() != 0 {
		t.Error("WAL left")
	}
	if v := e.creds("trusted")["version"]; v != 2 {
		t.Errorf("version = %v, want 2 (recovered + new)", v)
	}
	e.assertServedCredentialLogsIn("trusted")
}

// A WAL written under other password rules is discarded: its candidate is
// never reused. A candidate Salesforce already accepted is still adopted,
// since dropping it would leave Vault with a password that no longer works.
func TestWAL_PolicyChange(t *testing.T) {
	for _, tc := range []struct {
		step    string
		adopted bool
	}{
		{stepWALWritten, false},
		{stepPasswordChanged, true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			e := newRotEnv(t)
			e.addTrusted("trusted", nil)
			e.crashAt(tc.step)
			_, _ = e.rotate("trusted")
			e.b.rot.testStep = nil
			mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"password_length": 30})
			e.advance(e.settleAge())
			e.restart()
			if e.walCount() != 0 {
				t.Error("WAL kept after the policy changed")
			}
			if adopted := e.creds("trusted")["version"] == 1; adopted != tc.adopted {
				t.Errorf("adopted = %v, want %v", adopted, tc.adopted)
			}
			e.assertServedCredentialLogsIn("trusted")
		})
	}
}

// rotFailingStorage fails writes of accounts while fail is set, like a
// storage backend outage after Salesforce accepted the new password.
type rotFailingStorage struct {
	logical.Storage
	fail bool
}

func (f *rotFailingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if f.fail && len(e.Key) > len(accountStoragePrefix) && e.Key[:len(accountStoragePrefix)] == accountStoragePrefix {
		return errors.New("storage unavailable")
	}
	return f.Storage.Put(ctx, e)
}

// Storage fails right after Salesforce took the new password: the error is
// returned (never success), the WAL keeps the candidate, and the next
// rotation first adopts it.
func TestRotate_StorageFailureAfterChange(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	fs := &rotFailingStorage{Storage: e.s, fail: true}
	e.s = fs
	resp, err := e.rotate("trusted")
	if respErr(resp, err) == nil {
		t.Fatal("a rotation whose result could not be stored reported success")
	}
	if e.walCount() != 1 {
		t.Fatalf("WALs = %d, want the candidate kept", e.walCount())
	}
	fs.fail = false
	e.advance(e.settleAge())
	e.mustRotate("trusted")
	if e.walCount() != 0 || e.version("trusted") != 2 {
		t.Errorf("WALs %d, version %d; want 0, 2", e.walCount(), e.version("trusted"))
	}
	e.assertServedCredentialLogsIn("trusted")
}

// Salesforce answers INVALID_LOGIN for a locked-out user whatever the
// password. A rotation interrupted after Salesforce took the new password,
// checked while integrations holding the old one locked the user out, must
// keep the new password (the only copy) and say so, without logging in
// again while the user stays locked; once unlocked, it is settled.
func TestWAL_LockedUserKeepsCandidate(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.crashedRotation("trusted", stepPasswordChanged)
	sfPassword := e.srv.Password(rotTrustedUser)
	if sfPassword == rotTrustedPass {
		t.Fatal("setup: password not changed")
	}
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.IsPasswordLocked = true })
	e.advance(e.settleAge())
	e.restart()

	if e.walCount() != 1 {
		t.Fatalf("the WAL holding the password Salesforce has was discarded while the user was locked out (WALs: %d)", e.walCount())
	}
	acct := e.account("trusted")
	// Pending reconciliation, said first (issue 10 §1), with the reason.
	if acct["rotation_status"] != "pending_reconciliation" || !rotContainsAll(acct["last_rotation_error"].(string), "interrupted rotation", "locked out") {
		t.Errorf("account status = %v / %q, want pending_reconciliation with the reason", acct["rotation_status"], acct["last_rotation_error"])
	}
	resp, err := request(t, e.b, e.s, logical.ReadOperation, "creds/trusted", nil)
	if err := respErr(resp, err); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(resp.Warnings, " "), "interrupted rotation") {
		t.Errorf("creds warnings = %v, want the unsettled rotation named", resp.Warnings)
	}

	// Still locked: a rotation asks the admin and does not log in as the user.
	e.srv.ResetCalls()
	if resp, err := e.rotate("trusted"); respErr(resp, err) == nil {
		t.Fatal("a rotation on top of an unsettled one succeeded")
	}
	if n := e.srv.Calls("soap.login"); n != 0 {
		t.Errorf("%d logins as a user known to be locked out, want 0", n)
	}
	if e.walCount() != 1 || e.srv.Password(rotTrustedUser) != sfPassword {
		t.Fatal("the unsettled rotation was lost or overwritten")
	}

	// Unlocked: the candidate is settled, then the rotation runs.
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.IsPasswordLocked = false; u.FailedLoginAttempts = 0 })
	e.mustRotate("trusted")
	if e.walCount() != 0 || e.version("trusted") != 2 {
		t.Errorf("after unlocking: WALs %d, version %d; want 0, 2 (rolled forward, then rotated)", e.walCount(), e.version("trusted"))
	}
	e.assertServedCredentialLogsIn("trusted")
	e.assertNoSecretsLogged(sfPassword, rotTrustedPass)
}

// A candidate refused for a user the admin sees active and not locked
// really is wrong: its WAL is discarded and the stored password kept.
func TestWAL_RefusedCandidateOfUsableUserDiscarded(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.crashedRotation("trusted", stepWALWritten)
	e.advance(e.settleAge())
	e.restart()
	if e.walCount() != 0 {
		t.Fatalf("WALs = %d, want the never-sent candidate discarded", e.walCount())
	}
	if st := e.account("trusted")["rotation_status"]; st != "manual" {
		t.Errorf("rotation_status = %v, want manual (nothing failed)", st)
	}
	e.assertServedCredentialLogsIn("trusted")
}

// When the admin cannot tell whether the user is locked (its own login is
// refused), a refused candidate is not proof either: the WAL stays.
func TestWAL_UnknownUserStateKeepsCandidate(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.crashedRotation("trusted", stepPasswordChanged)
	sfPassword := e.srv.Password(rotTrustedUser)
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.IsPasswordLocked = true })
	e.srv.InjectFault("oauth.token", emulator.Fault{Status: 400, Body: `{"error":"invalid_client","error_description":"invalid client credentials"}`})
	e.advance(e.settleAge())
	e.restart()
	if e.walCount() != 1 {
		t.Fatal("the WAL was discarded although the user's state was unknown")
	}
	if msg := e.account("trusted")["last_rotation_error"].(string); !strings.Contains(msg, "could not tell") {
		t.Errorf("last_rotation_error = %q, want the unknown state explained", msg)
	}

	e.srv.ClearFaults()
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.IsPasswordLocked = false; u.FailedLoginAttempts = 0 })
	e.restart()
	if e.walCount() != 0 || e.creds("trusted")["password"] != sfPassword {
		t.Fatal("not settled once the user could log in")
	}
	e.assertServedCredentialLogsIn("trusted")
}

// A WAL belongs to the user it was written for: when the account is
// replaced by another Salesforce user before the restart, its candidate is
// never tried on (nor applied to) the new user.
func TestWAL_ReplacedAccountUserNotApplied(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("svc", nil)
	e.crashedRotation("svc", stepPasswordChanged)
	if e.walCount() != 1 {
		t.Fatalf("WALs = %d, want 1", e.walCount())
	}
	candidate := e.srv.Password(rotTrustedUser)

	// The operator replaces the account with another user before the
	// restart.
	if resp, err := request(t, e.b, e.s, logical.DeleteOperation, "accounts/svc", nil); respErr(resp, err) != nil {
		t.Fatal(respErr(resp, err))
	}
	if e.walCount() != 1 {
		t.Fatalf("WALs after the delete = %d, want 1 (the test needs the WAL to outlive the account)", e.walCount())
	}
	mustWrite(t, e.b, e.s, "accounts/svc", map[string]interface{}{
		"username": rotIntegUser, "password": rotIntegPassword, "security_token": rotIntegToken,
	})
	integLogins := len(e.srv.LoginHistory(rotIntegUser))

	e.restart()

	if n := e.walCount(); n != 0 {
		t.Errorf("%d WAL entries left after recovery", n)
	}
	if n := len(e.srv.LoginHistory(rotIntegUser)); n != integLogins {
		t.Errorf("recovery logged in as the new user %d times, want 0: the old user's candidate was tried on it", n-integLogins)
	}
	creds := e.creds("svc")
	if creds["username"] != rotIntegUser || creds["password"] != rotIntegPassword {
		t.Errorf("creds = %v/%s, want the new user with the password the operator wrote", creds["username"], map[bool]string{true: "candidate", false: "other"}[creds["password"] == candidate])
	}
	if e.srv.Password(rotIntegUser) != rotIntegPassword {
		t.Error("the new user's password changed in Salesforce")
	}
	e.assertServedCredentialLogsIn("svc")
}
