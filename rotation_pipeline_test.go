package salesforce

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// scriptedPolicy installs a Vault password policy that returns the given
// passwords in order, then fresh ones.
func (e *rotEnv) scriptedPolicy(name string, passwords ...string) *[]string {
	e.t.Helper()
	var mu sync.Mutex
	queue := append([]string(nil), passwords...)
	var served []string
	sv := e.b.System().(*testSystemView)
	sv.SetPasswordPolicy(name, func() (string, error) {
		mu.Lock()
		defer mu.Unlock()
		var pw string
		if len(queue) > 0 {
			pw, queue = queue[0], queue[1:]
		} else {
			var err error
			if pw, err = generatePassword(20); err != nil {
				return "", err
			}
		}
		served = append(served, pw)
		return pw, nil
	})
	return &served
}

// A candidate Salesforce rejects (password history) is not sent again: the
// next attempt uses a fresh one.
func TestRotate_RejectedCandidateReplacedByFreshOne(t *testing.T) {
	e := newRotEnv(t)
	// The first value is used when the account write checks the policy;
	// the second is the current password, which history forbids.
	e.scriptedPolicy("history", "Check-Only-Pass-1", rotTrustedPass, "Fresh-Pass-7777")
	e.addTrusted("trusted", map[string]interface{}{"password_policy": "history"})
	e.srv.ResetCalls()

	e.mustRotate("trusted")
	if got := e.srv.Calls("rest.password"); got != 2 {
		t.Errorf("password changes sent = %d, want 2 (one rejected, one fresh)", got)
	}
	if got := e.creds("trusted")["password"]; got != "Fresh-Pass-7777" {
		t.Errorf("stored password is not the fresh candidate")
	}
	e.assertServedCredentialLogsIn("trusted")
}

// When Salesforce keeps rejecting, the rotation fails after a bounded
// number of fresh candidates, each sent once, and nothing changes.
func TestRotate_RejectionsAreBounded(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.srv.SetOrg(func(o *emulator.Org) { o.PasswordPolicy.MinLength = 40 })
	e.srv.ResetCalls()

	resp, err := e.rotate("trusted")
	err = respErr(resp, err)
	if err == nil || !strings.Contains(err.Error(), "rejected 3 new passwords") {
		t.Fatalf("err = %v, want a failure after 3 rejected candidates", err)
	}
	if got := e.srv.Calls("rest.password"); got != defaultMaxNewPasswordAttempts {
		t.Errorf("password changes sent = %d, want %d", got, defaultMaxNewPasswordAttempts)
	}
	if e.srv.Password(rotTrustedUser) != rotTrustedPass || e.creds("trusted")["password"] != rotTrustedPass {
		t.Error("a failed rotation changed the password")
	}
	acct := e.account("trusted")
	if acct["consecutive_failures"] != 1 || acct["rotation_status"] != "failing" ||
		!strings.Contains(acct["last_rotation_error"].(string), "rejected") || acct["last_rotation_error_at"] == "" {
		t.Errorf("failure status = %v", acct)
	}
	if acct["version"] != 0 {
		t.Errorf("version = %v after a failed rotation", acct["version"])
	}
	e.assertServedCredentialLogsIn("trusted")
}

// An expired password is repaired by rotating it.
func TestRotate_RepairsExpiredPassword(t *testing.T) {
	for _, method := range []string{rotationMethodAdmin, rotationMethodSelf} {
		t.Run(method, func(t *testing.T) { testRepairsExpiredPassword(t, method) })
	}
}

func testRepairsExpiredPassword(t *testing.T, method string) {
	e := newRotEnv(t)
	e.addTrusted("trusted", map[string]interface{}{"rotation_method": method})
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.PasswordExpired = true })

	resp := e.mustRotate("trusted")
	if !strings.Contains(strings.Join(resp.Warnings, " "), "expired") {
		t.Errorf("warnings = %v, want a note that the expired password was repaired", resp.Warnings)
	}
	c, err := newClient(sfapi.Config{LoginURL: e.srv.LoginURL(), AllowNonSalesforceURL: true, APIVersion: "66.0", SOAPAPIVersion: "64.0", RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.SOAPLogin(t.Context(), rotTrustedUser, e.creds("trusted")["password"].(string))
	if err != nil || sess.PasswordExpired {
		t.Fatalf("after the repair: err=%v expired=%v", err, sess != nil && sess.PasswordExpired)
	}
}

// A password changed outside Vault is reported as drift, not overwritten;
// locked and inactive users are reported as such.
func TestRotate_DriftLockedInactive(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*emulator.User)
		want   []string
		code   string
	}{
		{"drift", func(u *emulator.User) { u.Password = "Changed-Outside-99" }, []string{"no longer logs in", "outside Vault"}, "drift"},
		{"locked", func(u *emulator.User) { u.IsPasswordLocked = true; u.LockedAt = time.Now() }, []string{"locked out"}, "user_locked"},
		{"inactive", func(u *emulator.User) { u.IsActive = false }, []string{"inactive"}, "user_inactive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newRotEnv(t)
			e.addTrusted("trusted", nil)
			e.srv.SetUserState(rotTrustedUser, tc.mutate)
			before := e.srv.Password(rotTrustedUser)
			e.srv.ResetCalls()

			resp, err := e.rotate("trusted")
			err = respErr(resp, err)
			if err == nil || !rotContainsAll(err.Error(), tc.want...) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if e.srv.Password(rotTrustedUser) != before {
				t.Error("the password was changed despite the failed check")
			}
			acct := e.account("trusted")
			if acct["rotation_status"] != "blocked" || acct["rotation_blocked"] != tc.code {
				t.Errorf("status = %v / %v, want blocked / %s", acct["rotation_status"], acct["rotation_blocked"], tc.code)
			}
			e.assertNoSecretsLogged(rotTrustedPass, "Changed-Outside-99")
		})
	}
}

// rotation_method=self changes the password with the account's own
// session; the org's minimum lifetime is respected.
func TestRotate_SelfMethod(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", map[string]interface{}{"rotation_method": "self"})
	e.srv.ResetCalls()
	e.mustRotate("trusted")
	if e.srv.Calls("soap.changeOwnPassword") != 1 || e.srv.Calls("rest.password") != 0 {
		t.Errorf("changeOwnPassword=%d rest.password=%d, want 1/0",
			e.srv.Calls("soap.changeOwnPassword"), e.srv.Calls("rest.password"))
	}
	e.assertServedCredentialLogsIn("trusted")

	// A second self-service change the same day is refused before it
	// reaches Salesforce.
	e.srv.ResetCalls()
	resp, err := e.rotate("trusted")
	if statusOf(resp, err) != http.StatusConflict || !strings.Contains(respErr(resp, err).Error(), "minimum password lifetime") {
		t.Fatalf("second rotation: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	if e.srv.Calls("soap.changeOwnPassword") != 0 || e.srv.Calls("soap.login") != 0 {
		t.Error("the refused rotation reached Salesforce")
	}
	// The operator says the org does not enforce it.
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"min_password_lifetime": false})
	e.mustRotate("trusted")
	if e.creds("trusted")["version"] != 2 {
		t.Error("second self rotation did not happen")
	}
	e.assertServedCredentialLogsIn("trusted")
}

func TestAccount_SelfMethodShortPeriodRefused(t *testing.T) {
	e := newRotEnv(t)
	for _, data := range []map[string]interface{}{
		{"rotation_period": "12h"},
		{"rotation_schedule": "0 */6 * * *"},
	} {
		data["username"], data["password"], data["rotation_method"] = rotTrustedUser, rotTrustedPass, "self"
		resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/trusted", data)
		if err := respErr(resp, err); err == nil || !strings.Contains(err.Error(), "24h") {
			t.Errorf("%v: err = %v, want a refusal naming 24h", data, err)
		}
	}
	e.addTrusted("trusted", map[string]interface{}{"rotation_method": "self", "rotation_schedule": "0 3 * * *"})
}

// A self rotation of a required account with a stale token is blocked
// until the emailed token is written back.
func TestRotate_SelfNeedsCurrentToken(t *testing.T) {
	e := newRotEnv(t)
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"min_password_lifetime": false})
	e.addIntegration("etl", map[string]interface{}{"rotation_method": "self"})
	e.mustRotate("etl")
	resp, err := e.rotate("etl")
	if err := respErr(resp, err); err == nil || !strings.Contains(err.Error(), "security-token") {
		t.Fatalf("err = %v, want a pointer to accounts/etl/security-token", err)
	}
	mustWrite(t, e.b, e.s, "accounts/etl/security-token", map[string]interface{}{"security_token": e.srv.LatestSecurityToken(rotIntegUser)})
	e.mustRotate("etl")
	if e.creds("etl")["version"] != 2 {
		t.Error("rotation after token re-entry did not happen")
	}
}

// An expired admin session is replaced once; a refusal (no permission) is
// reported, leaves no WAL and changes nothing.
func TestRotate_AdminSessionAndPermission(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.srv.InjectFault("rest.password", emulator.Fault{Status: 401, Times: 1,
		Body: `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`})
	e.mustRotate("trusted")
	e.assertServedCredentialLogsIn("trusted")

	e.srv.InjectFault("rest.password", emulator.Fault{Status: 403,
		Body: `[{"message":"You do not have permission to view this record.","errorCode":"INSUFFICIENT_ACCESS"}]`})
	before := e.srv.Password(rotTrustedUser)
	resp, err := e.rotate("trusted")
	if statusOf(resp, err) != http.StatusBadRequest || !strings.Contains(respErr(resp, err).Error(), "INSUFFICIENT_ACCESS") {
		t.Fatalf("refused change: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	if e.walCount() != 0 || e.srv.Password(rotTrustedUser) != before {
		t.Error("a refused change left a WAL or changed the password")
	}
}

// A password changed outside Vault between the login check and the change
// makes Salesforce answer changeOwnPassword with INVALID_OLD_PASSWORD.
// That is drift: the change is not sent again with the same wrong old
// password, and the account is blocked with a message that says so.
func TestRotate_InvalidOldPasswordIsDrift(t *testing.T) {
	e := newRotEnv(t)
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"min_password_lifetime": false})
	e.addTrusted("trusted", map[string]interface{}{"rotation_method": "self"})
	var once sync.Once
	e.srv.SetCallHook(func(ci emulator.CallInfo) {
		// The hook runs after the emulator released its lock and before
		// the client has the answer: the password changes right after the
		// login check.
		if ci.Endpoint == "soap.login" && ci.Status == 200 {
			once.Do(func() {
				e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.Password = "Changed-Elsewhere-9" })
			})
		}
	})
	defer e.srv.SetCallHook(nil)
	e.srv.ResetCalls()
	resp, err := e.rotate("trusted")
	err = respErr(resp, err)
	if err == nil || !rotContainsAll(err.Error(), "INVALID_OLD_PASSWORD", "changed outside Vault") {
		t.Fatalf("err = %v, want drift named", err)
	}
	if n := e.srv.Calls("soap.changeOwnPassword"); n != 1 {
		t.Errorf("changeOwnPassword sent %d times with a wrong old password, want 1", n)
	}
	acct := e.account("trusted")
	if acct["rotation_status"] != "blocked" || acct["rotation_blocked"] != "drift" {
		t.Errorf("status = %v / %v, want blocked / drift", acct["rotation_status"], acct["rotation_blocked"])
	}
	if e.srv.Password(rotTrustedUser) != "Changed-Elsewhere-9" || e.creds("trusted")["password"] != rotTrustedPass {
		t.Error("the password was changed or the stored one replaced")
	}
	e.assertNoSecretsLogged(rotTrustedPass, "Changed-Elsewhere-9")
}

// A manual rotation of an account blocked on drift does not log in again
// with the credential known not to work: an orchestrator retrying rotate/
// must not lock the user out (an org may lock after 3 failed logins).
// force=true tries once more, within the failed-login budget; writing the
// current password clears the block.
func TestRotate_BlockedAccountNotRetriedWithoutForce(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.srv.SetOrg(func(o *emulator.Org) { o.PasswordPolicy.MaxLoginAttempts = 3 })
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.Password = "Changed-Elsewhere-1" })
	for i := 0; i < 4; i++ {
		resp, err := e.rotate("trusted")
		err = respErr(resp, err)
		if err == nil {
			t.Fatalf("rotate %d succeeded", i)
		}
		if i > 0 && !rotContainsAll(err.Error(), "blocked", "force=true", "accounts/trusted") {
			t.Errorf("rotate %d: %v, want the block and the way out named", i, err)
		}
	}
	for i := 0; i < 3; i++ {
		resp, err := request(t, e.b, e.s, logical.UpdateOperation, "rotate/trusted", map[string]interface{}{"force": true})
		if respErr(resp, err) == nil {
			t.Fatal("forced rotation of a drifted account succeeded")
		}
	}
	failed, locked := 0, 0
	for _, a := range e.srv.LoginHistory(rotTrustedUser) {
		switch a.Status {
		case "Invalid Password":
			failed++
		case "Password Lockout":
			locked++
		}
	}
	if failed+locked >= 3 || locked > 0 {
		t.Fatalf("manual rotations of a drifted account made %d failed logins and %d lockout answers in one hour", failed, locked)
	}
	if st := e.account("trusted")["consecutive_failures"]; st == 0 {
		t.Error("the forced attempts were not recorded")
	}

	// The failed logins reached max_failed_logins: the operator, having
	// checked Salesforce, says so (issue 9's way out).
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"password": "Changed-Elsewhere-1", "reset_failed_logins": true})
	e.mustRotate("trusted")
	e.assertServedCredentialLogsIn("trusted")
}

// After a rotation of a required-token account, the creds read warns that
// the token is stale and tells the operator the exact path to write the
// emailed one to.
func TestRotate_StaleTokenWarningNamesThePath(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegration("team-a/etl", nil)
	e.mustRotate("team-a/etl")
	resp, err := request(t, e.b, e.s, logical.ReadOperation, "creds/team-a/etl", nil)
	if err != nil || resp == nil || resp.IsError() {
		t.Fatalf("read creds: %v", respErr(resp, err))
	}
	if w := strings.Join(resp.Warnings, " "); !strings.Contains(w, "stale") || !strings.Contains(w, "accounts/team-a/etl/security-token") {
		t.Errorf("warnings = %v, want the stale token and accounts/team-a/etl/security-token", resp.Warnings)
	}
}

// A rotation makes only the calls it needs: the login check with the stored
// password (whose answer names the user id, so an account stored with
// verify=false needs no lookup by the admin), the admin's reading of the
// user's LastPasswordChangeDate (which lets a WAL entry left by a crash be
// settled without a login, rotation_settle.go), the change, and the login
// with the new password.
func TestRotationCallsOnlyWhatItNeeds(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("warm", nil)
	e.mustRotate("warm") // the admin session is made once per mount
	e.addTrusted("svc", map[string]interface{}{"username": rotIntegUser, "password": rotIntegPassword, "security_token": rotIntegToken, "verify": false})
	e.srv.ResetCalls()
	e.mustRotate("svc")
	calls := map[string]int{}
	for _, ep := range []string{"soap.login", "rest.password", "rest.query", "oauth.token"} {
		calls[ep] = e.srv.Calls(ep)
	}
	if calls["soap.login"] != 2 || calls["rest.password"] != 1 || calls["rest.query"] != 1 || calls["oauth.token"] != 0 {
		t.Errorf("calls of one rotation = %v, want soap.login 2 (check, new login), rest.password 1, rest.query 1 (LastPasswordChangeDate), nothing else", calls)
	}
	if id := e.account("svc")["user_id"]; id == "" || id == nil {
		t.Error("the user id learned from the login check was not stored")
	}
}
