package salesforce

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// lastUpdated reads last_updated of an account and checks that creds/<name>
// says the same.
func (e *rotEnv) lastUpdated(name string) string {
	e.t.Helper()
	got, _ := e.account(name)["last_updated"].(string)
	if creds := e.creds(name)["last_updated"]; creds != got {
		e.t.Errorf("accounts/%s says last_updated %v, creds/%s %v", name, got, name, creds)
	}
	if got == "" {
		e.t.Fatalf("accounts/%s has no last_updated", name)
	}
	return got
}

// assertLastUpdated checks, after the clock moved on and step ran, that
// last_updated moved to the clock's time (moved) or stayed as it was.
func (e *rotEnv) assertLastUpdated(name, what string, moved bool, step func()) {
	e.t.Helper()
	before := e.lastUpdated(name)
	e.advance(time.Minute)
	step()
	after := e.lastUpdated(name)
	switch {
	case moved && after != formatTime(e.now()):
		e.t.Errorf("%s: last_updated = %s, want %s (the credential changed)", what, after, formatTime(e.now()))
	case !moved && after != before:
		e.t.Errorf("%s: last_updated moved from %s to %s, but the credential did not change", what, before, after)
	}
}

// last_updated of accounts: every writer that changes the credential
// creds/<name> serves moves it, and nothing else does.
func TestLastUpdated_AccountWrites(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegration("etl", nil)
	if got := e.lastUpdated("etl"); got != formatTime(e.now()) || got != e.account("etl")["created_at"] {
		t.Errorf("a new account's last_updated = %s, want its creation %s", got, formatTime(e.now()))
	}
	write := func(data map[string]interface{}) func() {
		return func() { mustWrite(t, e.b, e.s, "accounts/etl", data) }
	}
	e.assertLastUpdated("etl", "description", false, write(map[string]interface{}{"description": "nightly"}))
	e.assertLastUpdated("etl", "settings", false, write(map[string]interface{}{"unlock_after_rotation": true, "validation_query": "SELECT Id FROM Account LIMIT 1"}))
	e.assertLastUpdated("etl", "reset_failed_logins", false, write(map[string]interface{}{"reset_failed_logins": true}))
	e.assertLastUpdated("etl", "the same password again", false, write(map[string]interface{}{"password": rotIntegPassword}))

	e.srv.SetUserState(rotIntegUser, func(u *emulator.User) { u.Password = "Integ-Pass-5678" })
	e.assertLastUpdated("etl", "a new password", true, write(map[string]interface{}{"password": "Integ-Pass-5678"}))
	e.assertLastUpdated("etl", "the token removed", true, write(map[string]interface{}{"security_token": "", "verify": false}))
	e.assertLastUpdated("etl", "a token written", true, write(map[string]interface{}{"security_token": rotIntegToken}))
}

func TestLastUpdated_RotationAndSecurityTokenWrite(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegration("etl", nil)
	e.assertLastUpdated("etl", "rotation", true, func() { e.mustRotate("etl") })
	token := e.srv.LatestSecurityToken(rotIntegUser)
	e.assertLastUpdated("etl", "security-token write", true, func() {
		mustWrite(t, e.b, e.s, "accounts/etl/security-token", map[string]interface{}{"security_token": token})
	})
	// The same token again changes nothing.
	e.assertLastUpdated("etl", "the same security token again", false, func() {
		mustWrite(t, e.b, e.s, "accounts/etl/security-token", map[string]interface{}{"security_token": token})
	})
}

// A not_required account's stale token is left out of password_with_token;
// writing the new one puts it back: a change of the served credential.
func TestLastUpdated_SecurityTokenOfNotRequiredAccount(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", map[string]interface{}{"security_token": "TRUSTTOKEN000000000000000", "security_token_mode": "not_required"})
	e.mustRotate("trusted")
	e.assertLastUpdated("trusted", "security-token write", true, func() {
		mustWrite(t, e.b, e.s, "accounts/trusted/security-token", map[string]interface{}{"security_token": e.srv.LatestSecurityToken(rotTrustedUser)})
	})
}

// Failed rotations and the scheduler's bookkeeping record status, not a
// new credential.
func TestLastUpdated_FailuresAndBookkeeping(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "1h"})
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.Password = "Changed-Outside-99" })
	e.assertLastUpdated("trusted", "failed rotation (drift)", false, func() {
		if resp, err := e.rotate("trusted"); respErr(resp, err) == nil {
			t.Fatal("the rotation of a drifted account succeeded")
		}
	})
	e.assertLastUpdated("trusted", "scheduler skipping a blocked account", false, func() {
		e.advance(2 * time.Hour)
		e.tick()
	})
}

// Completing a rotation that a crash interrupted after Salesforce took the
// new password (the WAL's roll-forward) is a rotation: last_updated moves.
func TestLastUpdated_WALRollForward(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.assertLastUpdated("trusted", "crashed rotation", false, func() { e.crashedRotation("trusted", stepPasswordChanged) })
	e.assertLastUpdated("trusted", "roll-forward", true, func() {
		e.advance(e.settleAge())
		_, err := e.b.HandleRequest(context.Background(), &logical.Request{
			Operation: logical.RollbackOperation, Storage: e.s, Data: map[string]interface{}{"immediate": true},
		})
		if err != nil {
			t.Fatalf("rollback: %v", err)
		}
		if e.walCount() != 0 {
			t.Fatal("the WAL entry was not settled")
		}
	})
	e.assertServedCredentialLogsIn("trusted")
}
