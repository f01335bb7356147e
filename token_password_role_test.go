package salesforce

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// Password roles' tokens: a role that logs in with a stored account's
// credential refuses a stale token or a blocked account, and holds a rejected
// credential instead of spending the account's login budget on it.

// After a rotation of a security_token_mode=required account its stored
// token is stale: a password role must not log in with it (each failed
// login counts toward lockout) but say what to do.
func TestEmulatorPasswordRoleRefusesStaleToken(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegration("etl", nil)
	mustWrite(t, e.b, e.s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "etl"})
	e.mustRotate("etl")
	if e.creds("etl")["security_token_status"] != tokenStatusStale {
		t.Fatal("setup: token not stale")
	}
	e.srv.ResetCalls()
	for range 15 {
		resp, err := request(t, e.b, e.s, logical.ReadOperation, "token/pw", nil)
		if statusOf(resp, err) != 400 {
			t.Fatalf("status = %d (%v), want 400", statusOf(resp, err), respErr(resp, err))
		}
		msg := respErr(resp, err).Error()
		for _, want := range []string{`role "pw"`, `account "etl"`, "stale", "accounts/etl/security-token"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("error %q does not name %s", msg, want)
			}
		}
	}
	if n := e.srv.Calls("oauth.token"); n != 0 {
		t.Errorf("15 reads with a known-stale token made %d Salesforce logins", n)
	}
	for _, a := range e.srv.LoginHistory(rotIntegUser) {
		if a.Status == "Password Lockout" {
			t.Fatal("the integration user was locked out")
		}
	}

	// The operator writes the emailed token: reads work again.
	mustWrite(t, e.b, e.s, "accounts/etl/security-token", map[string]interface{}{"security_token": e.srv.LatestSecurityToken(rotIntegUser)})
	readToken(t, e.b, e.s, "pw")
}

func TestPasswordRoleRefusesBlockedAccount(t *testing.T) {
	for reason, fix := range map[string]string{
		"drift":         "accounts/etl/security-token",
		"token_stale":   "accounts/etl/security-token",
		"user_locked":   "unlock",
		"user_inactive": "reactivate",
	} {
		t.Run(reason, func(t *testing.T) {
			b, s, f := tokenTestBackend(t)
			mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "etl"})
			acct, _ := readAccount(context.Background(), s, "etl")
			acct.RotationBlocked = reason
			putAccount(t, b, s, "etl", acct)
			resp, err := request(t, b, s, logical.ReadOperation, "token/pw", nil)
			if statusOf(resp, err) != 400 {
				t.Fatalf("status = %d (%v), want 400", statusOf(resp, err), respErr(resp, err))
			}
			msg := respErr(resp, err).Error()
			for _, want := range []string{`role "pw"`, `account "etl"`, "blocked", fix} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not name %s", msg, want)
				}
			}
			if f.grants() != 0 {
				t.Errorf("grants = %d, want 0: a blocked account's credential was used", f.grants())
			}
		})
	}
}

// A credential Salesforce rejects is not tried again for a minute, and
// after that only until max_failed_logins rejections, which only a
// successful login or an operator write resets.
func TestPasswordRoleHoldsRejectedCredential(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	clock := useFakeClock(b)
	rejected := &sfapi.Error{Op: "oauth token", Code: "invalid_grant", Message: "authentication failure", HTTPStatus: 400, Kind: sfapi.KindCredentials}
	for range 100 {
		f.mintErrs = append(f.mintErrs, rejected)
	}
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "etl"})
	mustWrite(t, b, s, "roles/pw2", map[string]interface{}{"grant_type": "password", "account": "etl", "cache": false})

	readFails := func(role string) string {
		t.Helper()
		resp, err := request(t, b, s, logical.ReadOperation, "token/"+role, nil)
		if statusOf(resp, err) != 400 {
			t.Fatalf("status = %d (%v), want 400", statusOf(resp, err), respErr(resp, err))
		}
		return respErr(resp, err).Error()
	}
	first := readFails("pw")
	if !strings.Contains(first, "invalid_grant") || !strings.Contains(first, "accounts/etl") {
		t.Errorf("first error %q does not give Salesforce's code and the fix", first)
	}
	for range 10 {
		msg := readFails("pw")
		if !strings.Contains(msg, `account "etl"`) || !strings.Contains(msg, "accounts/etl") {
			t.Fatalf("held error %q does not name the account and the fix", msg)
		}
	}
	if f.grants() != 1 {
		t.Fatalf("grants = %d right after a rejection, want 1", f.grants())
	}
	// Held for a minute: 59 seconds later the read still answers without
	// logging in, 61 seconds later it logs in once more.
	clock.Advance(59 * time.Second)
	readFails("pw")
	if f.grants() != 1 {
		t.Fatalf("grants = %d 59s after a rejection, want 1 (still held)", f.grants())
	}
	clock.Advance(2 * time.Second)
	readFails("pw")
	if f.grants() != 2 {
		t.Fatalf("grants = %d 61s after a rejection, want 2 (one new login)", f.grants())
	}

	// Salesforce's failed-login count never decays, so neither does the
	// engine's: an application polling both roles once a minute for over
	// an hour and a half makes no login past max_failed_logins (2). (The
	// fake's tokens expire two hours after real time, hence not longer.)
	var last string
	for range 100 {
		clock.Advance(time.Minute)
		readFails("pw")
		last = readFails("pw2")
	}
	if n := f.grants(); n != 2 {
		t.Errorf("100 minutes of polling made %d failed logins in all, want 2", n)
	}
	for _, want := range []string{`account "etl"`, "max_failed_logins", "accounts/etl", "security-token"} {
		if !strings.Contains(last, want) {
			t.Errorf("error after the limit %q does not name %s", last, want)
		}
	}
	if n := mustRead(t, b, s, "accounts/etl")["failed_logins"]; n != 2 {
		t.Fatalf("stored failed_logins = %v, want 2", n)
	}
	assertNoSecrets(t, "error", first+last, fakeAccountPassword, fakeAccountToken)

	// The operator writes the credential: the count resets and the next
	// read logs in at once.
	f.mu.Lock()
	f.mintErrs = nil
	f.mu.Unlock()
	before := f.grants()
	mustWrite(t, b, s, "accounts/etl", map[string]interface{}{"password": fakeAccountPassword, "verify": false, "reset_failed_logins": true})
	readToken(t, b, s, "pw")
	if f.grants() != before+1 {
		t.Errorf("after the account was written: grants = %d, want %d", f.grants(), before+1)
	}
	if n := mustRead(t, b, s, "accounts/etl")["failed_logins"]; n != 0 {
		t.Errorf("stored failed_logins after the write = %v, want 0", n)
	}
}

// A credential that works is never throttled: the login budget is for
// credentials in doubt, not for busy cache=false roles.
func TestPasswordRoleWorkingCredentialNotThrottled(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	f.mintErrs = []error{&sfapi.Error{Op: "oauth token", Code: "invalid_grant", Message: "authentication failure", HTTPStatus: 400, Kind: sfapi.KindCredentials}}
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "etl", "cache": false})
	request(t, b, s, logical.ReadOperation, "token/pw", nil)
	// A role change drops the held rejection; the login succeeds.
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"ttl": "10m"})
	for range 3 * defaultLoginBudgetPerHour {
		readToken(t, b, s, "pw")
	}
	if n := f.grants(); n != 1+3*defaultLoginBudgetPerHour {
		t.Errorf("grants = %d, want one per read", n)
	}
}

// A password changed outside Vault: a burst of reads makes one failed
// login in Salesforce, not one per read.
func TestEmulatorPasswordRoleRejectedCredentialOneLogin(t *testing.T) {
	b, s, srv, _ := tokenEmulatorBackend(t)
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "integ"})
	srv.SetUserState(demoIntegrationUser, func(u *emulator.User) { u.Password = "Changed-Elsewhere-1" })
	for range 15 {
		request(t, b, s, logical.ReadOperation, "token/pw", nil)
	}
	if n := srv.Calls("oauth.token"); n != 1 {
		t.Errorf("15 reads made %d token calls, want 1", n)
	}
	for _, a := range srv.LoginHistory(demoIntegrationUser) {
		if a.Status == "Password Lockout" {
			t.Fatal("the integration user was locked out")
		}
	}
}
