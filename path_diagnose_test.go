package salesforce

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

func TestDiagnose(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(e *rotEnv)
		login  string
		fields map[string]interface{}
		want   string
	}{
		{"healthy", func(e *rotEnv) {}, "ok", map[string]interface{}{"user_active": true, "login_locked": false, "password_expired": false}, "logs in"},
		{"locked", func(e *rotEnv) {
			e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.IsPasswordLocked = true; u.LockedAt = time.Now() })
		}, "rejected", map[string]interface{}{"login_locked": true}, "locked out"},
		{"inactive", func(e *rotEnv) {
			e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.IsActive = false })
		}, "rejected", map[string]interface{}{"user_active": false}, "inactive"},
		{"expired", func(e *rotEnv) {
			e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.PasswordExpired = true })
		}, "ok, password expired", map[string]interface{}{"password_expired": true}, "rotate the account"},
		{"changed outside", func(e *rotEnv) {
			e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.Password = "Changed-Outside-99" })
		}, "rejected", map[string]interface{}{"login_error_code": "INVALID_LOGIN"}, "changed outside Vault"},
		{"token needed", func(e *rotEnv) {
			e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.Profile = "Integration" })
		}, "security token needed", nil, "trusted IP ranges"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newRotEnv(t)
			e.addTrusted("trusted", nil)
			tc.setup(e)
			data := mustRead(t, e.b, e.s, "accounts/trusted/diagnose")
			if data["login"] != tc.login {
				t.Errorf("login = %v, want %q", data["login"], tc.login)
			}
			for k, v := range tc.fields {
				if data[k] != v {
					t.Errorf("%s = %v, want %v", k, data[k], v)
				}
			}
			findings := strings.Join(data["findings"].([]string), " | ")
			if !strings.Contains(findings, tc.want) {
				t.Errorf("findings = %s, want %q", findings, tc.want)
			}
			assertNoSecrets(t, "diagnose", fmt.Sprint(data), rotTrustedPass, "Changed-Outside-99")
		})
	}
}

// After a rotation of a required-token account, diagnose says the token is
// stale (the password is right).
func TestDiagnose_StaleToken(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegration("etl", nil)
	e.mustRotate("etl")
	data := mustRead(t, e.b, e.s, "accounts/etl/diagnose")
	findings := strings.Join(data["findings"].([]string), " | ")
	if data["login"] != "security token needed" || !strings.Contains(findings, "stale") || !strings.Contains(findings, "accounts/etl/security-token") {
		t.Errorf("diagnose = %v", data)
	}
	if n := len(data["findings"].([]string)); n != 1 {
		t.Errorf("the stale token should be reported once, got %d findings: %s", n, findings)
	}
}

// The OAuth username-password flow tells apart what SOAP login() lumps
// together: a blocked flow, an exceeded login rate.
func TestDiagnose_PasswordFlow(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	e.srv.SetOrg(func(o *emulator.Org) { o.BlockUsernamePasswordFlow = true })
	data := mustRead(t, e.b, e.s, "accounts/trusted/diagnose")
	if data["login"] != "ok" || data["password_flow"] != "blocked" ||
		!strings.Contains(strings.Join(data["findings"].([]string), " "), "blocked") {
		t.Errorf("blocked flow: %v", data)
	}

	e2 := newRotEnv(t)
	e2.addTrusted("trusted", nil)
	e2.srv.SetOrg(func(o *emulator.Org) { o.LoginRateLimitPerHour = 1 })
	data = mustRead(t, e2.b, e2.s, "accounts/trusted/diagnose")
	if data["password_flow"] != "rate limited" || !strings.Contains(strings.Join(data["findings"].([]string), " "), "login rate") {
		t.Errorf("rate limit: %v", data)
	}
}

// Issue 9, defect 3: diagnose's logins, its username-password-flow login
// included, are budgeted like every other: repeated reads with a wrong
// stored password make at most max_failed_logins failed logins, so an org
// locking users out after 3 never locks the user out through diagnose.
func TestTrust03DiagnoseLoginsAreBudgeted(t *testing.T) {
	e := newRotEnv(t)
	e.srv.SetOrg(func(o *emulator.Org) { o.PasswordPolicy.MaxLoginAttempts = 3 })
	e.addTrusted("trusted", nil)
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.Password = "Changed-Outside-99" })
	var last map[string]interface{}
	for range 5 {
		last = mustRead(t, e.b, e.s, "accounts/trusted/diagnose")
	}
	if n := e.failedLogins(rotTrustedUser); n > defaultMaxFailedLogins {
		t.Errorf("5 diagnose reads made %d failed logins, want at most max_failed_logins (%d)", n, defaultMaxFailedLogins)
	}
	if e.userLocked(rotTrustedUser) {
		t.Fatal("diagnose locked the user out")
	}
	if last["login"] != "not tried" || !strings.Contains(strings.Join(last["findings"].([]string), " "), "max_failed_logins") {
		t.Errorf("the last diagnose does not say why it did not log in: %v", last)
	}
}
