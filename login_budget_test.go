package salesforce

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// Salesforce's failed-login count never decays (only a successful login
// resets it), so after a password change outside Vault neither polling
// token reads nor scheduled rotations may add up to a lockout, however
// long they go on, and across a restart. The operator's write of the
// right credential resets the count.
func TestFailedLoginsNeverLockUserOut(t *testing.T) {
	e := newRotEnv(t)
	e.srv.SetOrg(func(o *emulator.Org) { o.PasswordPolicy.MaxLoginAttempts = 3 })
	e.addTrusted("svc", map[string]interface{}{"rotation_period": "1h"})
	e.initialize()
	mustWrite(t, e.b, e.s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "svc", "cache": false})
	readToken(t, e.b, e.s, "pw")

	const outside = "Changed-Outside-Vault-77"
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.Password = outside })

	userState := func() (locked bool, failed int) {
		e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { locked, failed = u.IsPasswordLocked, u.FailedLoginAttempts })
		return locked, failed
	}
	var lastErr string
	for minute := 1; minute <= 6*60; minute++ {
		e.advance(time.Minute)
		if minute == 3*60 {
			// A restart must not forget how close the user is to lockout.
			e.restart()
		}
		resp, err := request(t, e.b, e.s, logical.ReadOperation, "token/pw", nil)
		if respErr(resp, err) == nil {
			t.Fatalf("minute %d: token/pw succeeded with a password Salesforce no longer has", minute)
		}
		lastErr = respErr(resp, err).Error()
		e.tick()
		if locked, failed := userState(); locked || failed >= 3 {
			t.Fatalf("minute %d: user locked = %v after %d failed logins", minute, locked, failed)
		}
	}
	failedLogins := 0
	for _, a := range e.srv.LoginHistory(rotTrustedUser) {
		if a.Status != "Success" {
			failedLogins++
		}
	}
	if failedLogins > 2 {
		t.Errorf("six hours made %d failed logins, want at most 2 (max_failed_logins)", failedLogins)
	}
	if _, failed := userState(); failed != 2 {
		t.Errorf("Salesforce counts %d failed logins, want 2: the engine should use, not exceed, max_failed_logins", failed)
	}
	for _, want := range []string{`account "svc"`, "accounts/svc"} {
		if !strings.Contains(lastErr, want) {
			t.Errorf("error %q does not name %s", lastErr, want)
		}
	}
	assertNoSecrets(t, "token/pw error", lastErr, outside, rotTrustedPass)
	e.assertNoSecretsLogged(outside, rotTrustedPass)
	acct, err := readAccount(context.Background(), e.s, "svc")
	if err != nil || acct.FailedLogins != 2 {
		t.Fatalf("stored failed_logins = %+v (%v), want 2", acct.FailedLogins, err)
	}

	// The operator writes the right credential: counts reset, logins work.
	mustWrite(t, e.b, e.s, "accounts/svc", map[string]interface{}{"password": outside})
	if _, failed := userState(); failed != 0 {
		t.Errorf("Salesforce still counts %d failed logins after the operator's write", failed)
	}
	acct, err = readAccount(context.Background(), e.s, "svc")
	if err != nil || acct.FailedLogins != 0 {
		t.Errorf("stored failed_logins after the write = %d (%v), want 0", acct.FailedLogins, err)
	}
	// The org issues tokens on its own (real) clock: come back to it.
	e.setClock(time.Now().UTC())
	readToken(t, e.b, e.s, "pw")
}

// The failed-login count has no time window: it stays until a success or
// reset, and is taken from storage when memory does not know it.
func TestLoginBudgetFailedCountNeverDecays(t *testing.T) {
	l := newLoginBudget()
	now := time.Now()
	l.recordFailed("a", 0)
	l.recordFailed("a", 0)
	if ok, _, failed := l.takeLogin("a", 20, 2, 0, now.Add(48*time.Hour)); ok || !failed {
		t.Errorf("two days later: ok = %v, failed = %v, want refused by the failed-login limit", ok, failed)
	}
	l.resetFailed("a")
	if ok, _, _ := l.takeLogin("a", 20, 2, 0, now); !ok {
		t.Error("refused after a reset")
	}
	// After a restart memory is empty: the stored count decides.
	if ok, _, failed := l.takeLogin("b", 20, 2, 2, now); ok || !failed {
		t.Errorf("stored count 2: ok = %v, failed = %v, want refused", ok, failed)
	}
}
