package salesforce

import (
	"fmt"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// A crash at every step of a dual rotation loses nothing: after a restart
// the served credential logs in, the credential served before the crash
// still does, and the switch is finished (once the token is written, for
// users that need one).
func TestDual_CrashAtEveryStep(t *testing.T) {
	steps := []struct {
		step        string
		wantChanged bool
	}{
		{stepWALWritten, false},
		{stepPasswordChanged, true},
		{stepStored, true},
		{stepWALDeleted, true},
		{stepSwitched, true},
	}
	pairs := []struct {
		name      string
		add       func(e *rotEnv)
		secondary string
		token     bool
	}{
		{"trusted", func(e *rotEnv) { e.addTrustedPair("bg", nil) }, rotAppUser, false},
		{"integration", func(e *rotEnv) { e.addIntegrationPair("bg", rotInteg2User, rotInteg2Password, rotInteg2Token, nil) }, rotInteg2User, true},
	}
	for _, p := range pairs {
		for _, st := range steps {
			if p.token && st.step == stepSwitched {
				// A token-bound rotation switches only when the token is
				// written, outside the rotation.
				continue
			}
			t.Run(p.name+"/"+st.step, func(t *testing.T) {
				e := newRotEnv(t)
				p.add(e)
				before := e.hold("bg")
				secondaryBefore := e.srv.Password(p.secondary)
				e.crashedRotation("bg", st.step)

				e.advance(e.settleAge())
				e.restart()
				if n := e.walCount(); n != 0 {
					t.Errorf("%d WAL entries left after recovery", n)
				}
				e.assertWorks("the credential served before the crash", before)
				e.assertServedCredentialLogsIn("bg")
				changed := e.srv.Password(p.secondary) != secondaryBefore
				if changed != st.wantChanged {
					t.Fatalf("secondary password changed = %v, want %v", changed, st.wantChanged)
				}
				if e.srv.Password(rotIntegUser) != rotIntegPassword && p.token || e.srv.Password(rotTrustedUser) != rotTrustedPass && !p.token {
					t.Fatal("the crashed rotation changed the active user's password")
				}
				a := e.account("bg")
				if !st.wantChanged {
					if a["active_user"] != rolePrimary || a["switch_status"] != nil || a["version"] != 0 {
						t.Errorf("nothing changed, yet the account reads %v", a)
					}
				} else if p.token {
					if a["switch_status"] != switchAwaitingToken || a["active_user"] != rolePrimary || a["version"] != 1 {
						t.Fatalf("after recovery: switch %v active %v version %v", a["switch_status"], a["active_user"], a["version"])
					}
					mustWrite(t, e.b, e.s, "accounts/bg/security-token", map[string]interface{}{
						"security_token": e.srv.LatestSecurityToken(p.secondary), "user": roleSecondary})
				}
				if st.wantChanged {
					c := e.creds("bg")
					if c["username"] != p.secondary || c["password"] != e.srv.Password(p.secondary) || c["version"] != 1 {
						t.Fatalf("after recovery creds serve %v version %v (switch %v)", c["username"], c["version"], c["switch_status"])
					}
					e.assertServedCredentialLogsIn("bg")
					e.assertWorks("the credential served before the crash", before)
				}

				// And the account rotates normally afterwards.
				e.mustRotate("bg")
				c := e.creds("bg")
				if c["password"] != e.srv.Password(c["username"].(string)) {
					t.Error("the rotation after recovery is inconsistent")
				}
			})
		}
	}
}

// A crash after the awaited security token is stored and before the
// switch it allows loses no switch: the restart finishes it.
func TestDual_CrashBetweenTokenWriteAndSwitch(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegrationPair("bg", rotInteg2User, rotInteg2Password, rotInteg2Token, map[string]interface{}{"rotation_period": "24h"})
	before := e.hold("bg")
	if resp := e.mustRotate("bg"); resp.Data["switch_status"] != switchAwaitingToken {
		t.Fatalf("rotate answered %v", resp.Data)
	}
	e.crashAt(stepTokenStored)
	resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/bg/security-token", map[string]interface{}{
		"security_token": e.srv.LatestSecurityToken(rotInteg2User), "user": roleSecondary,
	})
	if respErr(resp, err) == nil {
		t.Fatal("the crashed token write was reported as success")
	}
	e.b.rot.testStep = nil
	if c := e.creds("bg"); c["username"] != rotIntegUser {
		t.Fatalf("before the restart creds serve %v", c["username"])
	}

	e.restart()
	c := e.creds("bg")
	if c["username"] != rotInteg2User || c["switch_status"] != nil || c["next_vault_rotation"] == nil {
		t.Fatalf("after the restart creds serve %v (switch %v, next rotation %v)", c["username"], c["switch_status"], c["next_vault_rotation"])
	}
	e.assertServedCredentialLogsIn("bg")
	e.assertWorks("the credential served before the switch", before)
}

// On a mount in use (its indexes built), a start finds the switch a crash
// left unfinished from the unfinished-work index, without reading every
// account, and finishes it; the entry goes with the work.
func TestDual_StartFinishesSwitchFromIndex(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	e.addTrustedPair("bg", nil)
	e.addTrusted("single", map[string]interface{}{"username": rotIntegUser, "password": rotIntegPassword, "security_token": rotIntegToken})
	e.crashedRotation("bg", stepWALDeleted)
	if got := storedKeys(t, e.s, unfinishedIndexPrefix); fmt.Sprint(got) != "[unfinished/bg]" {
		t.Fatalf("unfinished-work index after the crash = %v", got)
	}

	e.advance(e.settleAge())
	e.restart()
	c := e.creds("bg")
	if c["username"] != rotAppUser || c["switch_status"] != nil {
		t.Fatalf("after the restart creds serve %v (switch %v)", c["username"], c["switch_status"])
	}
	e.assertServedCredentialLogsIn("bg")
	waitFor(t, func() bool { return len(storedKeys(t, e.s, unfinishedIndexPrefix)) == 0 })
}
