package salesforce

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
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
	if n := e.account("svc")["failed_logins"]; n != 2 {
		t.Fatalf("stored failed_logins = %v, want 2", n)
	}

	// The operator checks Salesforce and writes the right credential with
	// reset_failed_logins: counts reset, logins work.
	mustWrite(t, e.b, e.s, "accounts/svc", map[string]interface{}{"password": outside, "reset_failed_logins": true})
	if _, failed := userState(); failed != 0 {
		t.Errorf("Salesforce still counts %d failed logins after the operator's write", failed)
	}
	if n := e.account("svc")["failed_logins"]; n != 0 {
		t.Errorf("stored failed_logins after the write = %v, want 0", n)
	}
	// The org issues tokens on its own (real) clock: come back to it.
	e.setClock(time.Now().UTC())
	readToken(t, e.b, e.s, "pw")
}

// The failed-login count has no time window: it stays until a success or
// reset, and is taken from storage when memory does not know it.
func TestLoginBudgetFailedCountNeverDecays(t *testing.T) {
	b, s := getTestBackend(t)
	clock := useFakeClock(b)
	ctx := context.Background()
	who := loginUser{account: "a", username: "a@example.com"}
	rejected := &sfapi.Error{Code: "INVALID_LOGIN", Kind: sfapi.KindCredentials}
	for range 2 {
		slot, err := b.reserveLogin(ctx, s, who, purposeCheck, credStored)
		if err != nil {
			t.Fatal(err)
		}
		slot.done(ctx, rejected)
	}
	clock.Advance(48 * time.Hour)
	if _, err := b.reserveLogin(ctx, s, who, purposeCheck, credStored); !isFailedLoginsCap(err) {
		t.Errorf("two days later: %v, want refused by the failed-login limit", err)
	}
	if err := b.resetFailedLogins(ctx, s, who); err != nil {
		t.Fatal(err)
	}
	slot, err := b.reserveLogin(ctx, s, who, purposeCheck, credStored)
	if err != nil {
		t.Fatalf("refused after a reset: %v", err)
	}
	slot.done(ctx, rejected)
	slot, err = b.reserveLogin(ctx, s, who, purposeCheck, credStored)
	if err != nil {
		t.Fatal(err)
	}
	slot.done(ctx, rejected)
	// After a restart memory is empty: the stored count decides.
	b2 := newBackend(&logical.BackendConfig{})
	b2.clock = clock.Now
	if _, err := b2.reserveLogin(ctx, s, who, purposeCheck, credStored); !isFailedLoginsCap(err) {
		t.Errorf("stored count 2 after a restart: %v, want refused", err)
	}
}

// Issue 9, defect 1: a token read of a password role whose login is
// rejected while a rotation of its account runs must not write back the
// account entry it read before the rotation stored the new password. The
// test makes the worst interleaving happen: the read's rejection is
// handled between the rotation's change at Salesforce and its store, and
// any read of the account the token path makes then returns only after
// the rotation stored.
func TestTrust01TokenReadDuringRotationKeepsNewPassword(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("svc", nil)
	mustWrite(t, e.b, e.s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "svc", "cache": false})

	grantGate, grantEntered := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.wrapClient(func(c Client) Client {
		return &hookedClient{Client: c, beforeGrant: func(context.Context) {
			once.Do(func() { close(grantEntered); <-grantGate })
		}}
	})
	hs := &hookStorage{Storage: e.s}
	e.s = hs

	// The token read reads the account (old password) and waits at
	// Salesforce's door.
	tokenDone := make(chan error, 1)
	go func() {
		resp, err := request(t, e.b, hs, logical.ReadOperation, "token/pw", nil)
		tokenDone <- respErr(resp, err)
	}()
	<-grantEntered

	// The rotation changes the password at Salesforce and stops before
	// storing it.
	changed, proceed, stored := make(chan struct{}), make(chan struct{}), make(chan struct{})
	e.b.rot.testStep = func(step string) error {
		switch step {
		case stepPasswordChanged:
			close(changed)
			<-proceed
		case stepStored:
			close(stored)
		}
		return nil
	}
	rotDone := make(chan error, 1)
	go func() {
		resp, err := request(t, e.b, hs, logical.UpdateOperation, "rotate/svc", nil)
		rotDone <- respErr(resp, err)
	}()
	<-changed

	// From now until the rotation goes on, a read of the account comes from
	// the token read: it returns what it read only once the rotation stored.
	hookHit := make(chan struct{})
	var hit sync.Once
	hs.mu.Lock()
	hs.onGet = func(key string) {
		if key != accountStoragePrefix+"svc" {
			return
		}
		hit.Do(func() {
			close(hookHit)
			close(proceed)
			<-stored
		})
	}
	hs.mu.Unlock()
	close(grantGate) // the old password reaches Salesforce after the change

	var tokenErr error
	select {
	case <-hookHit:
		tokenErr = <-tokenDone
	case tokenErr = <-tokenDone:
		hit.Do(func() { close(proceed) })
	}
	if err := <-rotDone; err != nil {
		t.Fatalf("rotation: %v", err)
	}
	hs.mu.Lock()
	hs.onGet = nil
	hs.mu.Unlock()
	if tokenErr == nil {
		t.Fatal("the token read with the replaced password succeeded")
	}

	if n := e.walCount(); n != 0 {
		t.Errorf("%d WAL entries left: the rotation reported success without finishing", n)
	}
	if e.creds("svc")["password"] != e.srv.Password(rotTrustedUser) {
		t.Fatal("creds/svc serves a password Salesforce no longer has: the token read wrote back the account it read before the rotation")
	}
	e.assertServedCredentialLogsIn("svc")
}

// Issue 9, defect 2: concurrent token reads of a password role whose
// stored password is wrong make at most max_failed_logins failed logins,
// however many run at once, with and without the cache.
func TestTrust02ConcurrentTokenReadsStayWithinMaxFailedLogins(t *testing.T) {
	for _, cache := range []bool{true, false} {
		t.Run(fmt.Sprintf("cache=%v", cache), func(t *testing.T) {
			e := newRotEnv(t)
			e.srv.SetOrg(func(o *emulator.Org) { o.PasswordPolicy.MaxLoginAttempts = 3 })
			e.addTrusted("svc", nil)
			mustWrite(t, e.b, e.s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "svc", "cache": cache})
			e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.Password = "Changed-Outside-Vault-2" })
			// Slow answers, so that the reads overlap.
			e.srv.InjectFault("oauth.token", emulator.Fault{Latency: 200 * time.Millisecond})

			var wg sync.WaitGroup
			for range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := request(t, e.b, e.s, logical.ReadOperation, "token/pw", nil)
					if respErr(resp, err) == nil {
						t.Error("a token read with a wrong password succeeded")
					}
				}()
			}
			wg.Wait()
			if n := e.failedLogins(rotTrustedUser); n > defaultMaxFailedLogins {
				t.Errorf("6 concurrent reads made %d failed logins, want at most max_failed_logins (%d)", n, defaultMaxFailedLogins)
			}
			if e.userLocked(rotTrustedUser) {
				t.Error("the user was locked out by token reads")
			}
		})
	}
}

// The reservation holds whatever the concurrency: 20 logins at once, all
// rejected, reach Salesforce at most max_failed_logins times.
func TestLoginBudgetReservesBeforeSend(t *testing.T) {
	b, s := getTestBackend(t)
	ctx := context.Background()
	who := loginUser{account: "a", username: "a@example.com"}
	rejected := &sfapi.Error{Code: "INVALID_LOGIN", Kind: sfapi.KindCredentials}
	var mu sync.Mutex
	sent := 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slot, err := b.reserveLogin(ctx, s, who, purposeOperator, credStored)
			if err != nil {
				return
			}
			mu.Lock()
			sent++
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			slot.done(ctx, rejected)
		}()
	}
	wg.Wait()
	if sent != defaultMaxFailedLogins {
		t.Errorf("%d logins were sent, want max_failed_logins (%d)", sent, defaultMaxFailedLogins)
	}
}

// A login in flight when the node dies may have reached Salesforce: the
// next node counts it as failed.
func TestLoginBudgetPendingAtCrashCountsAsFailed(t *testing.T) {
	b, s := getTestBackend(t)
	ctx := context.Background()
	who := loginUser{account: "a", username: "a@example.com"}
	if _, err := b.reserveLogin(ctx, s, who, purposeCheck, credStored); err != nil {
		t.Fatal(err)
	}
	// The node dies with the login in flight; another one takes over.
	b2, _ := getTestBackend(t)
	slot, err := b2.reserveLogin(ctx, s, who, purposeCheck, credStored)
	if err != nil {
		t.Fatal(err)
	}
	slot.done(ctx, &sfapi.Error{Code: "INVALID_LOGIN", Kind: sfapi.KindCredentials})
	if _, err := b2.reserveLogin(ctx, s, who, purposeCheck, credStored); !isFailedLoginsCap(err) {
		t.Errorf("after a login lost in a crash and one rejected: %v, want max_failed_logins (2) reached", err)
	}
}

// Accounts are written only through their lock: a write after the lock
// was given up is refused.
func TestAccountWriteOnlyUnderItsLock(t *testing.T) {
	b, s := getTestBackend(t)
	txn := b.lockAccount(s, "a")
	txn.unlock()
	if err := txn.put(context.Background(), &account{Username: "a@example.com"}); err == nil {
		t.Fatal("an account was written outside its lock")
	}
}
