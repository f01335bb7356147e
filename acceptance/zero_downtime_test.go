package acceptance

// Issue 14 in a real Vault: two integration users (no failed login across
// rotations), the parity check, rotation after a read, ending the old
// credential's sessions.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// integration2 (demoInteg2User) is declared beside the login report's
// tests; integration3 has other permission sets than integration.
const (
	demoInteg3User     = "integration3@acme.demo"
	demoInteg3Password = "Integ3-Pass-1234"
	demoInteg3Token    = "INTEG3TOKEN000000000000000"
)

func init() {
	noteSecret(demoInteg3Password, demoInteg3Token)
}

// zdDemoUser puts a demo user in its seed state now and again when the
// test ends: the org is shared by the suite, and earlier tests may have
// rotated the user without putting it back.
func zdDemoUser(t *testing.T, username, password, token string) {
	t.Helper()
	emulatorServer(t).SetUserState(username, func(u *emulator.User) {
		u.Password, u.SecurityToken = password, token
		u.PasswordExpired, u.IsPasswordLocked, u.FailedLoginAttempts = false, false, 0
	})
	rotRestoreDemoUser(t, username, password, token)
}

// appClient is how the test's applications log in to the org: a Salesforce
// client of their own, outside Vault.
func appClient(t *testing.T) *sfapi.Client {
	t.Helper()
	c, err := sfapi.New(sfapi.Config{LoginURL: emulatorURL(t), AllowNonSalesforceURL: true, APIVersion: "66.0", SOAPAPIVersion: demoSOAPAPIVersion, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// zdCreds is what an application keeps of a creds/<name> read.
type zdCreds struct{ username, secret string }

func zdReadCreds(mount, name string, read func(string) (map[string]any, error)) (zdCreds, error) {
	d, err := read(mount + "/creds/" + name)
	if err != nil {
		return zdCreds{}, err
	}
	u, _ := d["username"].(string)
	s, _ := d["password_with_token"].(string)
	if u == "" || s == "" {
		return zdCreds{}, fmt.Errorf("creds/%s without a credential: %v", name, d["username"])
	}
	noteSecret(s)
	return zdCreds{u, s}, nil
}

// Two applications use a dual account through 10 rotations of token-bound
// users: one re-reads creds/<name> before every login, the other re-reads
// only once per rotation period, at a moment of its own, and logs in with
// what it read last in between. Neither ever sees a failed login (nor does
// the org's Login History), while a credential read two rotations ago no
// longer logs in.
func TestDualAccountNoFailedLoginAcrossRotations(t *testing.T) {
	mount := mountPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	emu := emulatorServer(t)
	zdDemoUser(t, demoIntegUser, demoIntegPassword, demoIntegToken)
	zdDemoUser(t, demoInteg2User, demoInteg2Password, demoInteg2Token)
	vaultWriteJSON(t, mount+"/config/rotation", map[string]any{"login_budget_per_hour": 60})
	vaultWriteJSON(t, mount+"/accounts/bg", map[string]any{
		"username": demoIntegUser, "password": demoIntegPassword, "security_token": demoIntegToken,
		"rotation_strategy": "dual_account", "secondary_username": demoInteg2User,
		"secondary_password": demoInteg2Password, "secondary_security_token": demoInteg2Token,
	})
	start := emu.Now()

	api := apiClient(t)
	read := func(path string) (map[string]any, error) {
		s, err := api.Logical().Read(path)
		if err != nil {
			return nil, err
		}
		if s == nil {
			return nil, fmt.Errorf("%s: no data", path)
		}
		return s.Data, nil
	}
	app := appClient(t)
	first, err := zdReadCreds(mount, "bg", read)
	if err != nil {
		t.Fatal(err)
	}

	var (
		stop            = make(chan struct{})
		wg              sync.WaitGroup
		logins, failed  atomic.Int64
		failuresMu      sync.Mutex
		failures        []string
		periodStarted   = make(chan time.Duration, 16)
		laggardReadsMu  sync.Mutex
		laggardReadUser []string
	)
	fail := func(who string, c zdCreds, err error) {
		failed.Add(1)
		failuresMu.Lock()
		defer failuresMu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf("%s as %s: %s", who, c.username, sfapi.ErrorCode(err)))
		}
	}
	login := func(who string, c zdCreds) {
		logins.Add(1)
		if _, err := app.SOAPLogin(context.Background(), c.username, c.secret); err != nil {
			fail(who, c, err)
		}
	}
	// The eager application: reads, then logs in, all the time.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			c, err := zdReadCreds(mount, "bg", read)
			if err != nil {
				fail("eager reader", c, err)
				continue
			}
			login("eager", c)
		}
	}()
	// The lagging application: keeps the credential it read last and
	// re-reads once per rotation period, somewhere in its first half.
	wg.Add(1)
	go func() {
		defer wg.Done()
		held := first
		var reread <-chan time.Time
		for {
			select {
			case <-stop:
				return
			case period := <-periodStarted:
				reread = time.After(time.Duration(rand.Int64N(int64(period / 2))))
			case <-reread:
				reread = nil
				c, err := zdReadCreds(mount, "bg", read)
				if err != nil {
					fail("lagging reader", c, err)
					continue
				}
				held = c
				laggardReadsMu.Lock()
				laggardReadUser = append(laggardReadUser, c.username)
				laggardReadsMu.Unlock()
			case <-time.After(50 * time.Millisecond):
				login("lagging", held)
			}
		}
	}()

	const rotations, period = 10, 1500 * time.Millisecond
	var afterFirst zdCreds
	for i := 1; i <= rotations; i++ {
		out := vaultJSON(t, "write", "-f", mount+"/rotate/bg")
		d := data(t, out)
		rotated, _ := d["rotated_username"].(string)
		if d["outcome"] != "rotated" || d["switch_status"] != "awaiting_security_token" || rotated == "" || rotated == d["active_username"] {
			t.Fatalf("rotation %d answered %v", i, d)
		}
		// The emailed token (the emulator's stand-in for the inbox) makes
		// the rotated user active.
		token := emu.LatestSecurityToken(rotated)
		noteSecret(token)
		sw := data(t, vaultJSON(t, "write", mount+"/accounts/bg/security-token", "security_token="+token, "user="+rotated))
		if sw["active_username"] != rotated {
			t.Fatalf("rotation %d: the token write did not switch to %s: %v", i, rotated, sw)
		}
		if i == 1 {
			if afterFirst, err = zdReadCreds(mount, "bg", read); err != nil {
				t.Fatal(err)
			}
		}
		periodStarted <- period
		time.Sleep(period)
	}
	close(stop)
	wg.Wait()

	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d application logins failed across %d rotations: %v", n, logins.Load(), rotations, failures)
	}
	t.Logf("%d application logins across %d rotations, %d failed", logins.Load(), rotations, failed.Load())
	if logins.Load() < 100 {
		t.Errorf("only %d application logins were made; the test proves little", logins.Load())
	}
	laggardReadsMu.Lock()
	if len(laggardReadUser) < rotations-1 {
		t.Errorf("the lagging application re-read %d times, want one per period", len(laggardReadUser))
	}
	laggardReadsMu.Unlock()
	for _, u := range []string{demoIntegUser, demoInteg2User} {
		for _, row := range emu.LoginHistory(u) {
			// Rejected credentials; "security token required" (the engine's
			// check of a new password) counts for no lockout.
			if row.Flow != "" && row.At.After(start) && (row.Status == "Invalid Password" || row.Status == "Password Lockout") {
				t.Errorf("the org logged a failed login of %s: %s (%s)", u, row.Status, row.Flow)
			}
		}
	}
	// The grace is one period: what was read before the first rotation
	// stopped working at the second, what was read after the last still
	// works.
	if _, err := app.SOAPLogin(context.Background(), first.username, first.secret); err == nil {
		t.Error("the credential read before the first of 10 rotations still logs in")
	}
	if _, err := app.SOAPLogin(context.Background(), afterFirst.username, afterFirst.secret); err == nil {
		t.Error("the credential read after the first of 10 rotations still logs in")
	}
	last, err := zdReadCreds(mount, "bg", read)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.SOAPLogin(context.Background(), last.username, last.secret); err != nil {
		t.Errorf("the credential served after the last rotation does not log in: %v", err)
	}
	acct := data(t, vaultJSON(t, "read", mount+"/accounts/bg"))
	if rotAsInt(acct["version"]) != rotations || acct["rotation_strategy"] != "dual_account" {
		t.Errorf("account after %d rotations: version %v strategy %v", rotations, acct["version"], acct["rotation_strategy"])
	}
}

// Users whose permission sets differ are never switched: the rotation
// fails before any change, naming the sets that differ.
func TestDualAccountPermissionMismatchBlocksTheSwitch(t *testing.T) {
	mount := mountPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	emu := emulatorServer(t)
	zdDemoUser(t, demoIntegUser, demoIntegPassword, demoIntegToken)
	zdDemoUser(t, demoInteg3User, demoInteg3Password, demoInteg3Token)
	vaultWriteJSON(t, mount+"/accounts/mismatch", map[string]any{
		"username": demoIntegUser, "password": demoIntegPassword, "security_token": demoIntegToken,
		"rotation_strategy": "dual_account", "secondary_username": demoInteg3User,
		"secondary_password": demoInteg3Password, "secondary_security_token": demoInteg3Token,
	})
	out := vaultCLIFails(t, "write", "-f", mount+"/rotate/mismatch")
	for _, want := range []string{
		"permission set Report_Builder is assigned to integration3@acme.demo but not to integration@acme.demo",
		"permission set group Integration_Suite is assigned to integration@acme.demo but not to integration3@acme.demo",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if emu.Password(demoInteg3User) != demoInteg3Password || emu.Password(demoIntegUser) != demoIntegPassword {
		t.Error("the refused rotation changed a password")
	}
	if c := rotReadCreds(t, mount, "mismatch"); c["username"] != demoIntegUser || c["active_user"] != "primary" {
		t.Errorf("creds after the refusal serve %v (%v)", c["username"], c["active_user"])
	}
	acct := data(t, vaultJSON(t, "read", mount+"/accounts/mismatch"))
	if msg, _ := acct["last_rotation_error"].(string); !strings.Contains(msg, "Report_Builder") {
		t.Errorf("last_rotation_error = %q", msg)
	}
}

// rotate_after_read: unread, the password stays; the first read arms a
// rotation cooldown later, a second read does not move it, and the
// rotation comes no sooner than the cooldown.
func TestRotateAfterReadInVault(t *testing.T) {
	mount := mountPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	zdDemoUser(t, demoTrustedUser, demoTrustedPasswd, "TRUSTTOKEN000000000000000")
	vaultWriteJSON(t, mount+"/accounts/glass", map[string]any{
		"username": demoTrustedUser, "password": demoTrustedPasswd, "rotate_after_read": true, "cooldown": "5s",
	})
	// One tick of the rotation queue (5s) passes without a read.
	time.Sleep(6 * time.Second)
	acct := data(t, vaultJSON(t, "read", mount+"/accounts/glass"))
	if rotAsInt(acct["version"]) != 0 || acct["rotation_status"] != "after_read" {
		t.Fatalf("unread account: version %v status %v", acct["version"], acct["rotation_status"])
	}

	c := rotReadCreds(t, mount, "glass")
	readAt := time.Now()
	password := c["password"].(string)
	armed, _ := c["read_rotation_at"].(string)
	due, err := time.Parse(time.RFC3339, armed)
	if err != nil || due.Before(readAt.Add(4*time.Second)) {
		t.Fatalf("the first read armed %q, want about 5s after the read", armed)
	}
	time.Sleep(2 * time.Second)
	if again := rotReadCreds(t, mount, "glass"); again["read_rotation_at"] != armed || again["password"] != password {
		t.Errorf("a second read moved the rotation to %v or changed the password", again["read_rotation_at"])
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		acct = data(t, vaultJSON(t, "read", mount+"/accounts/glass"))
		if rotAsInt(acct["version"]) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not rotated 30s after a read with a 5s cooldown: %v", acct)
		}
		time.Sleep(500 * time.Millisecond)
	}
	rotatedAt, _ := time.Parse(time.RFC3339, acct["last_vault_rotation"].(string))
	if rotatedAt.Before(due) {
		t.Errorf("rotated at %s, before the cooldown ended at %s", rotatedAt, due)
	}
	if status, ok, _ := soapLogin(t, demoTrustedUser, password); ok {
		t.Errorf("the password read before the rotation still logs in (HTTP %d)", status)
	}
	fresh := rotReadCreds(t, mount, "glass")
	noteSecret(fresh["password"].(string))
	if _, ok, _ := soapLogin(t, demoTrustedUser, fresh["password_with_token"].(string)); !ok {
		t.Error("the rotated password does not log in")
	}
	if fresh["read_rotation_at"] == nil {
		t.Error("the read after the rotation did not arm the next one")
	}
}

// end_sessions_on_rotation: a session opened with the old password ends at
// the rotation, and the answer says how many ended.
func TestEndSessionsOnRotationInVault(t *testing.T) {
	mount := mountPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	emu := emulatorServer(t)
	zdDemoUser(t, demoTrustedUser, demoTrustedPasswd, "TRUSTTOKEN000000000000000")
	vaultWriteJSON(t, mount+"/accounts/ended", map[string]any{
		"username": demoTrustedUser, "password": demoTrustedPasswd, "end_sessions_on_rotation": true,
	})
	app := appClient(t)
	old, err := app.SOAPLogin(context.Background(), demoTrustedUser, demoTrustedPasswd)
	if err != nil {
		t.Fatal(err)
	}
	noteSecret(old.AccessToken)
	refresh := emu.IssueRefreshToken(emulator.DemoClientID, demoTrustedUser)
	noteSecret(refresh)
	if _, err := app.Query(context.Background(), old, "SELECT Id FROM User LIMIT 1"); err != nil {
		t.Fatalf("the application's session does not work before the rotation: %v", err)
	}
	d := data(t, vaultJSON(t, "write", "-f", mount+"/rotate/ended"))
	if rotAsInt(d["sessions_ended"]) < 1 || rotAsInt(d["oauth_tokens_revoked"]) != 1 {
		t.Errorf("rotate answered %v, want sessions_ended and oauth_tokens_revoked", d)
	}
	if _, err := app.Query(context.Background(), old, "SELECT Id FROM User LIMIT 1"); sfapi.ErrorCode(err) != "INVALID_SESSION_ID" {
		t.Errorf("the old password's session after the rotation: %v, want INVALID_SESSION_ID", err)
	}
	c := rotReadCreds(t, mount, "ended")
	noteSecret(c["password"].(string))
	if _, ok, _ := soapLogin(t, demoTrustedUser, c["password_with_token"].(string)); !ok {
		t.Error("the new password does not log in")
	}
	acct := data(t, vaultJSON(t, "read", mount+"/accounts/ended"))
	if rotAsInt(acct["last_sessions_ended"]) != rotAsInt(d["sessions_ended"]) {
		t.Errorf("accounts read: last_sessions_ended %v", acct["last_sessions_ended"])
	}
}
