package salesforce

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// walCandidate returns the candidate of the account's only WAL entry.
func (e *rotEnv) walCandidate(name string) string {
	e.t.Helper()
	pending, err := accountWALs(context.Background(), e.s, name)
	if err != nil || len(pending) != 1 {
		e.t.Fatalf("WAL entries of %s: %d (%v), want 1", name, len(pending), err)
	}
	return pending[0].w.Candidate
}

// Issue 9, defect 15: Vault dies while a rotation's change is in flight,
// restarts, and dies again right after the WAL probe's login with the
// candidate was rejected (here: the deletes that follow fail). On the next
// start the candidate is not probed again, the count stays below
// max_failed_logins, and the account rotates.
func TestTrust15CrashDuringRecoveryProbesCandidateOnce(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("svc", nil)
	e.crashedRotation("svc", stepWALWritten) // the change never reached Salesforce
	e.advance(e.settleAge())

	hs := &hookStorage{Storage: e.s, failDelete: func(key string) bool { return strings.HasPrefix(key, framework.WALPrefix) }}
	e.s = hs
	e.restart() // probes the candidate, is rejected, "dies" before deleting
	if e.walCount() == 0 {
		t.Fatal("setup: the WAL entry was deleted")
	}
	hs.mu.Lock()
	hs.failDelete = nil
	hs.mu.Unlock()
	e.restart()

	if n := e.failedLogins(rotTrustedUser); n != 1 {
		t.Errorf("%d failed logins, want 1: the rejected candidate was probed again", n)
	}
	if n := e.walCount(); n != 0 {
		t.Errorf("%d WAL entries left", n)
	}
	acct := e.account("svc")
	if acct["rotation_status"] != "manual" || acct["consecutive_failures"] != 0 {
		t.Errorf("a rejected candidate was taken against the stored credential: %v", acct)
	}
	e.mustRotate("svc")
	e.assertServedCredentialLogsIn("svc")
}

// Issue 9, defect 15: an account the login budget blocks shows why, in
// accounts/<name> and in the rotate-fail notification, and its rotation
// fails with the way out instead of a silent 409; reset_failed_logins is
// that way out.
func TestTrust15BlockedAccountShowsWhy(t *testing.T) {
	e := newRotEnv(t)
	hook, url := e.newWebhook(200)
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"max_failed_logins": 1, "webhook_url": url, "webhook_allowed_networks": "127.0.0.0/8,::1/128"})
	e.addTrusted("svc", nil)
	e.crashedRotation("svc", stepWALWritten)
	e.advance(e.settleAge())
	e.restart() // the candidate's rejection reaches max_failed_logins=1

	acct := e.account("svc")
	if acct["rotation_status"] != "blocked" || acct["rotation_blocked"] != "failed_logins" || acct["failed_logins"] != 1 ||
		acct["last_failed_login_credential"] != credCandidate || acct["last_failed_login_code"] != "INVALID_LOGIN" || acct["last_failed_login_at"] == "" {
		t.Errorf("the blocked account does not show why: %v", acct)
	}
	resp, err := e.rotate("svc")
	if statusOf(resp, err) != 400 || !rotContainsAll(respErr(resp, err).Error(), "max_failed_logins", "reset_failed_logins") {
		t.Fatalf("rotate of the blocked account: %d %v, want 400 with the reason and the way out", statusOf(resp, err), respErr(resp, err))
	}
	acct = e.account("svc")
	if acct["consecutive_failures"] != 1 || !strings.Contains(stringOf(acct["last_rotation_error"]), "max_failed_logins") {
		t.Errorf("the refused rotation is not recorded on the account: %v", acct)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev, _, _ := hook.last()
		if ev != nil && ev["event"] == "rotate-fail" {
			if !strings.Contains(stringOf(ev["error"]), "max_failed_logins") {
				t.Errorf("rotate-fail event does not carry the reason: %v", ev)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no rotate-fail event")
		}
		time.Sleep(10 * time.Millisecond)
	}

	mustWrite(t, e.b, e.s, "accounts/svc", map[string]interface{}{"reset_failed_logins": true})
	e.mustRotate("svc")
	e.assertServedCredentialLogsIn("svc")
}

// Issue 9, defect 16: the change of a rotation that crashed reaches
// Salesforce only after the next start probed its candidate. The young
// entry is not taken as failed: reads say the rotation is pending, and once
// the change can no longer be applied the candidate is checked and kept.
func TestTrust16LateChangeAtSalesforceIsNotLost(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("svc", nil)
	e.crashedRotation("svc", stepWALWritten)
	candidate := e.walCandidate("svc")
	e.advance(2 * time.Second)
	e.restart() // half a second after winning, in the cluster

	// The dead node's request lands.
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.Password = candidate })

	resp, err := request(t, e.b, e.s, logical.ReadOperation, "creds/svc", nil)
	if err := respErr(resp, err); err != nil {
		t.Fatal(err)
	}
	if resp.Data["rotation_status"] != "pending_reconciliation" || !strings.Contains(strings.Join(resp.Warnings, " "), "pending reconciliation") {
		t.Errorf("creds/svc does not say the rotation is pending: %v %v", resp.Data["rotation_status"], resp.Warnings)
	}
	if acct := e.account("svc"); acct["rotation_status"] != "pending_reconciliation" || acct["pending_since"] == "" || acct["pending_reason"] == "" {
		t.Errorf("accounts/svc does not say the rotation is pending: %v", acct)
	}
	if resp, err := e.rotate("svc"); statusOf(resp, err) != 409 {
		t.Errorf("a rotation on top of the pending one: %d %v, want 409 (try later)", statusOf(resp, err), respErr(resp, err))
	}

	e.advance(e.settleAge())
	e.tick()
	if n := e.walCount(); n != 0 {
		t.Fatalf("%d WAL entries left once the change could no longer be applied", n)
	}
	if e.creds("svc")["password"] != candidate {
		t.Fatal("the password Salesforce took late was lost")
	}
	e.assertServedCredentialLogsIn("svc")
	if st := e.account("svc")["rotation_status"]; st != "manual" {
		t.Errorf("rotation_status = %v after settling, want manual", st)
	}
	e.assertNoSecretsLogged(candidate, rotTrustedPass)
}

// Issue 9, defect 16: scheduled rotations run under a context that ends
// when the node stops being active (Vault calls Cleanup): a change in
// flight is abandoned, not left to land after another node took over.
func TestTrust16ScheduledRotationCancelledOnStepDown(t *testing.T) {
	e := newRotEnv(t)
	entered := make(chan struct{})
	cancelled := make(chan error, 1)
	var once sync.Once
	e.wrapClient(func(c Client) Client {
		return &hookedClient{Client: c, beforeSetPassword: func(ctx context.Context) {
			once.Do(func() {
				close(entered)
				select {
				case <-ctx.Done():
					cancelled <- ctx.Err()
				case <-time.After(30 * time.Second):
					cancelled <- nil
				}
			})
		}}
	})
	e.b.rot.tickInterval = 10 * time.Millisecond
	e.initialize()
	e.addTrusted("svc", map[string]interface{}{"rotation_period": "1h"})
	e.advance(time.Hour + time.Second)
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the scheduled rotation did not start")
	}
	e.b.Cleanup(context.Background()) // the node steps down
	if err := <-cancelled; err == nil {
		t.Fatal("the scheduled rotation's change was not cancelled when the node stopped being active")
	}
}

// Issue 9, defect 17 and issue 10 §1: start-up never waits for Salesforce.
// The mount is initialized while the settling login hangs (or Salesforce is
// down), reads say which accounts await reconciliation and why, and the
// entry is settled when Salesforce answers.
func TestTrust17StartupDoesNotWaitForSalesforce(t *testing.T) {
	t.Run("slow", func(t *testing.T) {
		e := newRotEnv(t)
		e.addTrusted("svc", nil)
		e.crashedRotation("svc", stepPasswordChanged)
		sfPassword := e.srv.Password(rotTrustedUser)
		e.advance(e.settleAge())

		gate, entered := make(chan struct{}), make(chan struct{})
		var once sync.Once
		e.clientWrap = func(c Client) Client {
			return &hookedClient{Client: c, beforeSOAPLogin: func(context.Context) {
				once.Do(func() { close(entered); <-gate })
			}}
		}
		e.b.Cleanup(context.Background())
		b, _, logs := getTestBackendWithLogs(t)
		e.prepare(b)
		e.b, e.logs = b, logs
		initDone := make(chan error, 1)
		go func() {
			initDone <- e.b.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.s})
		}()
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			close(gate)
			t.Fatal("the settling login never started")
		}
		select {
		case err := <-initDone:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Initialize waits for Salesforce")
			close(gate)
			<-initDone
			return
		}

		// Serving while Salesforce is slow.
		resp, err := request(t, e.b, e.s, logical.ReadOperation, "creds/svc", nil)
		if err := respErr(resp, err); err != nil {
			t.Fatal(err)
		}
		if resp.Data["rotation_status"] != "pending_reconciliation" || len(resp.Warnings) == 0 {
			t.Errorf("creds/svc does not say it awaits reconciliation: %v %v", resp.Data, resp.Warnings)
		}
		if reason := stringOf(e.account("svc")["pending_reason"]); reason == "" {
			t.Error("accounts/svc does not say why it awaits reconciliation")
		}

		close(gate)
		e.waitSettled()
		resp, err = request(t, e.b, e.s, logical.ReadOperation, "creds/svc", nil)
		if err := respErr(resp, err); err != nil {
			t.Fatal(err)
		}
		if resp.Data["password"] != sfPassword || resp.Data["rotation_status"] != nil || len(resp.Warnings) != 0 {
			t.Errorf("after settling: password is Salesforce's: %v, status %v, warnings %v",
				resp.Data["password"] == sfPassword, resp.Data["rotation_status"], resp.Warnings)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		e := newRotEnv(t)
		e.addTrusted("svc", nil)
		e.crashedRotation("svc", stepPasswordChanged)
		sfPassword := e.srv.Password(rotTrustedUser)
		e.advance(e.settleAge())
		e.srv.InjectFault("soap.login", emulator.Fault{Status: 503, Body: "Service Unavailable"})
		e.restart()
		if !strings.Contains(e.logs.String(), "awaiting") || !strings.Contains(e.logs.String(), "svc") {
			t.Errorf("start-up does not log which accounts await reconciliation:\n%s", e.logs.String())
		}
		if st := e.account("svc")["rotation_status"]; st != "pending_reconciliation" {
			t.Errorf("rotation_status = %v while Salesforce is down, want pending_reconciliation", st)
		}
		// Salesforce returns: the next pass settles it.
		e.srv.ClearFaults()
		e.advance(walRetryInterval)
		e.tick()
		if e.walCount() != 0 || e.creds("svc")["password"] != sfPassword {
			t.Fatal("not settled once Salesforce returned")
		}
	})
}

// A rotation whose change failed in transit leaves its WAL entry: reads
// say so, and the ticker settles it once the change can no longer be
// applied, without waiting for the account's next rotation.
func TestWAL_TransientChangeSettledByTicker(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	e.addTrusted("svc", nil)
	e.srv.InjectFault("rest.password", emulator.Fault{Status: 503, Body: `[{"message":"down","errorCode":"SERVER_UNAVAILABLE"}]`, Times: 1})
	if resp, err := e.rotate("svc"); statusOf(resp, err) != 502 {
		t.Fatalf("rotation with the change failing in transit: %d %v, want 502", statusOf(resp, err), respErr(resp, err))
	}
	if st := e.account("svc")["rotation_status"]; st != "pending_reconciliation" {
		t.Errorf("rotation_status = %v, want pending_reconciliation", st)
	}
	e.tick()
	if e.walCount() != 1 {
		t.Fatal("settled before the change could no longer be applied")
	}
	e.advance(e.settleAge())
	e.tick()
	if e.walCount() != 0 {
		t.Fatal("the ticker did not settle the entry")
	}
	if acct := e.account("svc"); acct["rotation_status"] != "failing" || acct["failed_logins"] != 1 {
		t.Errorf("after settling: %v", acct)
	}
	e.mustRotate("svc")
	e.assertServedCredentialLogsIn("svc")
	if n := e.account("svc")["failed_logins"]; n != 0 {
		t.Errorf("failed_logins = %v after the stored password logged in, want 0", n)
	}
}

// Issue 10: a rotation that crashed before its change reached Salesforce
// is settled without any login: the user's LastPasswordChangeDate, read by
// the admin before the change and again when settling, has not moved. A
// probe with the candidate would be a failed login, and a crash during it
// a second one, which would block the account at max_failed_logins.
func TestWAL_UnchangedPasswordSettlesWithoutLogin(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("svc", nil)
	old := e.srv.Password(rotTrustedUser)
	e.advance(2 * changeMarkGuard) // the seed's password is not recent
	e.crashedRotation("svc", stepWALWritten)
	e.advance(e.settleAge())
	logins := len(e.srv.LoginHistory(rotTrustedUser))
	e.restart()
	if n := len(e.srv.LoginHistory(rotTrustedUser)) - logins; n != 0 {
		t.Errorf("%d logins as the user while settling a change that never reached Salesforce, want none", n)
	}
	if n := e.failedLogins(rotTrustedUser); n != 0 {
		t.Errorf("%d failed logins, want 0", n)
	}
	if n := e.walCount(); n != 0 {
		t.Errorf("%d WAL entries left", n)
	}
	if e.creds("svc")["password"] != old {
		t.Error("the stored password changed")
	}
	e.mustRotate("svc")
	e.assertServedCredentialLogsIn("svc")
}

// The same reading, moved: the change landed, the candidate is probed and
// rolled forward.
func TestWAL_ChangedPasswordIsProbed(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("svc", nil)
	e.advance(2 * changeMarkGuard)
	e.crashedRotation("svc", stepPasswordChanged)
	sfPassword := e.srv.Password(rotTrustedUser)
	e.advance(e.settleAge())
	e.restart()
	if n := e.walCount(); n != 0 {
		t.Errorf("%d WAL entries left", n)
	}
	if e.creds("svc")["password"] != sfPassword {
		t.Error("the change Salesforce applied was not rolled forward")
	}
	if n := e.failedLogins(rotTrustedUser); n != 0 {
		t.Errorf("%d failed logins, want 0", n)
	}
}

// When Salesforce cannot be reached for that reading, the entry is kept
// with that reason, and no login is tried (it could not get through
// either); once Salesforce answers, the next pass settles it.
func TestWAL_UnreachableChangeReadingKeepsEntry(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("svc", nil)
	old := e.srv.Password(rotTrustedUser)
	e.advance(2 * changeMarkGuard)
	e.crashedRotation("svc", stepWALWritten)
	e.advance(e.settleAge())
	logins := len(e.srv.LoginHistory(rotTrustedUser))
	e.srv.InjectFault("rest.query", emulator.Fault{Status: 503, Body: `[{"message":"down","errorCode":"SERVER_UNAVAILABLE"}]`})
	e.restart()
	if n := e.walCount(); n != 1 {
		t.Fatalf("%d WAL entries while Salesforce is down, want 1", n)
	}
	if n := len(e.srv.LoginHistory(rotTrustedUser)) - logins; n != 0 {
		t.Errorf("%d logins as the user while Salesforce is down, want none", n)
	}
	e.srv.ClearFaults()
	e.advance(walRetryInterval)
	e.tick()
	if e.walCount() != 0 || e.creds("svc")["password"] != old {
		t.Fatal("not settled with the stored password once Salesforce answered")
	}
	if n := len(e.srv.LoginHistory(rotTrustedUser)) - logins; n != 0 {
		t.Errorf("%d logins as the user, want none", n)
	}
}
