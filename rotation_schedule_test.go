package salesforce

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

func (e *rotEnv) version(name string) int {
	e.t.Helper()
	return e.account(name)["version"].(int)
}

func (e *rotEnv) nextRotation(name string) time.Time {
	e.t.Helper()
	raw := e.account(name)["next_vault_rotation"].(string)
	if raw == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

func (e *rotEnv) queued(name string) bool {
	e.b.rot.mu.Lock()
	defer e.b.rot.mu.Unlock()
	if e.b.rot.queue == nil {
		return false
	}
	item, err := e.b.rot.queue.PopByKey(name)
	if err != nil || item == nil {
		return false
	}
	_ = e.b.rot.queue.Push(item)
	return true
}

// queuedAt is when the queue holds the account for; ok is false when it
// does not hold it.
func (e *rotEnv) queuedAt(name string) (at time.Time, ok bool) {
	e.b.rot.mu.Lock()
	defer e.b.rot.mu.Unlock()
	if e.b.rot.queue == nil {
		return time.Time{}, false
	}
	item, err := e.b.rot.queue.PopByKey(name)
	if err != nil || item == nil {
		return time.Time{}, false
	}
	_ = e.b.rot.queue.Push(item)
	return time.Unix(item.Priority, 0).UTC(), true
}

// A scheduled account rotates when due and only then; restarts (crash,
// reload, new version) rotate nothing that is not due.
func TestSchedule_PeriodAndRestarts(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "24h"})
	created := e.now()
	if got := e.nextRotation("trusted"); !got.Equal(created.Add(24 * time.Hour)) {
		t.Fatalf("next_vault_rotation = %v, want created + 24h", got)
	}

	// skip_import_rotation defaults to true: nothing happens on import, nor
	// after restarts before the period ends.
	for i := 0; i < 3; i++ {
		e.advance(time.Hour)
		e.restart()
		e.tick()
	}
	if v := e.version("trusted"); v != 0 {
		t.Fatalf("version = %d after restarts with nothing due, want 0", v)
	}
	if e.srv.Password(rotTrustedUser) != rotTrustedPass {
		t.Fatal("the password changed although nothing was due")
	}

	e.setClock(created.Add(24*time.Hour + time.Second))
	e.tick()
	if v := e.version("trusted"); v != 1 {
		t.Fatalf("version = %d after the period, want 1", v)
	}
	e.assertServedCredentialLogsIn("trusted")
	want := e.now().Add(24 * time.Hour)
	if got := e.nextRotation("trusted"); !got.Equal(want) {
		t.Errorf("next_vault_rotation = %v, want %v", got, want)
	}
	creds := e.creds("trusted")
	if ttl := creds["ttl"].(int64); ttl != int64((24 * time.Hour).Seconds()) {
		t.Errorf("creds ttl = %d, want a day", ttl)
	}

	// Restart right after: still version 1.
	e.restart()
	e.tick()
	e.advance(time.Hour)
	e.tick()
	if v := e.version("trusted"); v != 1 {
		t.Errorf("version = %d after a restart, want 1", v)
	}
	if !e.queued("trusted") {
		t.Error("the account is not in the rebuilt queue")
	}
}

func TestSchedule_ImportRotationAndNextRotation(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	e.addTrusted("now", map[string]interface{}{"rotation_period": "720h", "skip_import_rotation": false})
	e.tick()
	if v := e.version("now"); v != 1 {
		t.Errorf("skip_import_rotation=false: version = %d, want 1", v)
	}

	at := e.now().Add(2 * time.Hour)
	mustWrite(t, e.b, e.s, "accounts/now", map[string]interface{}{"next_rotation": at.Format(time.RFC3339)})
	if got := e.nextRotation("now"); !got.Equal(at) {
		t.Fatalf("next_vault_rotation = %v, want %v", got, at)
	}
	e.advance(time.Hour)
	e.tick()
	if v := e.version("now"); v != 1 {
		t.Errorf("rotated before next_rotation")
	}
	e.advance(time.Hour)
	e.tick()
	if v := e.version("now"); v != 2 {
		t.Errorf("not rotated at next_rotation")
	}
	if got := e.nextRotation("now"); !got.Equal(at.Add(720 * time.Hour)) {
		t.Errorf("after next_rotation the period resumes: next = %v", got)
	}
	resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/now", map[string]interface{}{"next_rotation": "tomorrow"})
	if err := respErr(resp, err); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("bad next_rotation: %v", err)
	}
}

// Failing scheduled rotations back off exponentially with jitter up to the
// cap; the account stays queued and shows as failing, and recovers.
func TestSchedule_BackoffAndFailingStatus(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{
		"failure_backoff_base": 60, "failure_backoff_cap": 240, "login_budget_per_hour": 30,
	})
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "24h"})
	// Salesforce is down at the login check, before anything changes (an
	// outage during the change itself leaves a WAL entry, which is settled
	// first: rotation_settle_test.go).
	e.srv.InjectFault("soap.login", emulator.Fault{Status: 503, Body: "Service Unavailable"})

	e.advance(24*time.Hour + time.Second)
	var delays []time.Duration
	for i := 1; i <= 4; i++ {
		e.tick()
		acct := e.account("trusted")
		if acct["consecutive_failures"] != i || acct["rotation_status"] != "failing" || acct["last_rotation_error"] == "" {
			t.Fatalf("after failure %d: %v", i, acct)
		}
		if !e.queued("trusted") {
			t.Fatalf("failing account dropped from the queue")
		}
		next := e.nextRotation("trusted")
		delays = append(delays, next.Sub(e.now()))
		e.setClock(next)
	}
	wantMax := []time.Duration{60 * time.Second, 120 * time.Second, 240 * time.Second, 240 * time.Second}
	for i, d := range delays {
		if d > wantMax[i] || d < wantMax[i]*4/5-time.Second {
			t.Errorf("delay %d = %s, want within [80%%, 100%%] of %s", i+1, d, wantMax[i])
		}
	}
	if e.srv.Password(rotTrustedUser) != rotTrustedPass {
		t.Fatal("password changed although every change failed")
	}

	e.srv.ClearFaults()
	e.tick()
	acct := e.account("trusted")
	if acct["version"] != 1 || acct["consecutive_failures"] != 0 || acct["rotation_status"] != "scheduled" {
		t.Errorf("after recovery: %v", acct)
	}
	e.assertServedCredentialLogsIn("trusted")
}

// A blocked account (drift) is not retried against Salesforce: every
// retry would be a failed login towards lockout.
func TestSchedule_BlockedAccountMakesNoLogins(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "24h"})
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.Password = "Changed-Outside-99" })
	e.advance(24*time.Hour + time.Second)
	e.tick()
	if got := e.account("trusted")["rotation_blocked"]; got != "drift" {
		t.Fatalf("rotation_blocked = %v, want drift", got)
	}
	e.srv.ResetCalls()
	for i := 0; i < 5; i++ {
		e.setClock(e.nextRotation("trusted"))
		e.tick()
	}
	if n := e.srv.Calls("soap.login"); n != 0 {
		t.Errorf("%d logins while blocked, want 0", n)
	}
	if !e.queued("trusted") {
		t.Error("blocked account dropped from the queue")
	}
	// The operator writes the current password: rotation resumes.
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.FailedLoginAttempts = 0 })
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"password": "Changed-Outside-99"})
	if got, blocked := e.account("trusted")["rotation_blocked"]; blocked {
		t.Errorf("still blocked after the credential was fixed: %v", got)
	}
	e.mustRotate("trusted")
	e.assertServedCredentialLogsIn("trusted")
}

// A scheduled rotation whose window passed is skipped visibly and waits
// for the next scheduled time.
func TestSchedule_MissedWindow(t *testing.T) {
	e := newRotEnv(t)
	day := time.Date(2031, 3, 4, 1, 0, 0, 0, time.UTC)
	e.setClock(day)
	e.initialize()
	e.addTrusted("trusted", map[string]interface{}{"rotation_schedule": "0 3 * * *", "rotation_window": "1h"})
	if got := e.nextRotation("trusted"); !got.Equal(day.Add(2 * time.Hour)) {
		t.Fatalf("next = %v, want 03:00", got)
	}
	e.setClock(day.Add(4*time.Hour + time.Minute)) // 05:01, window ended 04:00
	e.tick()
	acct := e.account("trusted")
	if acct["version"] != 0 || acct["rotation_status"] != "missed_window" || acct["missed_rotation_at"] != "2031-03-04T03:00:00Z" {
		t.Fatalf("after a missed window: %v", acct)
	}
	if got := e.nextRotation("trusted"); !got.Equal(day.Add(26 * time.Hour)) {
		t.Errorf("next = %v, want the next day 03:00", got)
	}
	e.setClock(day.Add(26*time.Hour + 10*time.Minute))
	e.tick()
	if acct := e.account("trusted"); acct["version"] != 1 || acct["rotation_status"] != "scheduled" {
		t.Errorf("inside the window: %v", acct)
	}
}

// Only the active node of a primary (or a local mount) runs the queue.
func TestSchedule_NotOnStandbyOrSecondary(t *testing.T) {
	for _, state := range []consts.ReplicationState{consts.ReplicationPerformanceStandby, consts.ReplicationPerformanceSecondary} {
		e := newRotEnv(t)
		e.b.System().(*testSystemView).ReplicationStateVal = state
		e.initialize()
		if e.b.rot.queue != nil {
			t.Errorf("state %v: queue started", state)
		}
	}
	e := newRotEnv(t)
	sv := e.b.System().(*testSystemView)
	sv.ReplicationStateVal = consts.ReplicationPerformanceSecondary
	sv.LocalMountVal = true
	e.initialize()
	if e.b.rot.queue == nil {
		t.Error("local mount on a secondary: queue not started")
	}
	// Standbys cannot write storage, whatever the mount.
	for _, state := range []consts.ReplicationState{
		consts.ReplicationPerformanceStandby,
		consts.ReplicationPerformanceSecondary | consts.ReplicationPerformanceStandby,
		consts.ReplicationDRSecondary,
	} {
		e := newRotEnv(t)
		sv := e.b.System().(*testSystemView)
		sv.ReplicationStateVal = state
		sv.LocalMountVal = true
		e.initialize()
		if e.b.rot.queue != nil {
			t.Errorf("local mount in state %v: queue started on a node that cannot write storage", state)
		}
	}
}

// adminLoginFailures counts the failed logins of the config's admin user.
func (e *rotEnv) adminLoginFailures() (failed, lockouts int) {
	for _, a := range e.srv.LoginHistory(demoAdminUser) {
		switch a.Status {
		case "Invalid Password":
			failed++
		case "Password Lockout":
			lockouts++
		}
	}
	return failed, lockouts
}

// With the password admin grant, an admin password changed outside Vault
// is refused once; scheduled rotations then stop trying (each try would be
// a failed admin login, up to the admin's lockout), every account says why,
// and writing a working config resumes them.
func TestSchedule_RefusedAdminLoginStopsRotations(t *testing.T) {
	e := newRotEnv(t)
	cfg := emulatorConfig(e.srv, adminGrantPassword)
	mustWrite(t, e.b, e.s, "config", cfg)
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": 3600})
	e.addTrusted("manual", map[string]interface{}{"username": rotIntegUser, "password": rotIntegPassword, "security_token": rotIntegToken})
	e.initialize()
	e.srv.SetUserState(demoAdminUser, func(u *emulator.User) { u.Password = "Changed-Outside-Vault-1" })
	for i := 0; i < 6*60; i++ { // six hours, one tick a minute
		e.advance(time.Minute)
		e.tick()
	}
	if failed, lockouts := e.adminLoginFailures(); failed > 1 || lockouts > 0 {
		t.Fatalf("six hours of scheduled rotations made %d failed admin logins (%d lockout answers), want at most 1", failed, lockouts)
	}
	for _, name := range []string{"trusted", "manual"} {
		acct := e.account(name)
		if acct["rotation_status"] != "blocked" || acct["rotation_blocked"] != "admin_login_refused" ||
			!rotContainsAll(acct["admin_login_error"].(string), "refused", "invalid_grant", "until config is written") {
			t.Errorf("%s: status %v / %v / %v, want blocked on the refused admin login", name, acct["rotation_status"], acct["rotation_blocked"], acct["admin_login_error"])
		}
	}
	if msg := e.account("trusted")["last_rotation_error"].(string); !strings.Contains(msg, "admin login") {
		t.Errorf("last_rotation_error = %q, want the refused admin login", msg)
	}
	// A manual rotation does not log in as the admin either.
	e.srv.ResetCalls()
	if resp, err := e.rotate("trusted"); respErr(resp, err) == nil || !strings.Contains(respErr(resp, err).Error(), "admin login") {
		t.Errorf("manual rotation: %v, want the refused admin login", respErr(resp, err))
	}
	if n := e.srv.Calls("oauth.token") + e.srv.Calls("soap.login"); n != 0 {
		t.Errorf("%d logins while the admin login is known refused, want 0", n)
	}
	e.assertNoSecretsLogged("Changed-Outside-Vault-1", demoAdminPassword)

	// The operator writes the current admin password: rotations resume.
	cfg["password"] = "Changed-Outside-Vault-1"
	mustWrite(t, e.b, e.s, "config", cfg)
	if acct := e.account("trusted"); acct["rotation_blocked"] != nil || acct["admin_login_error"] != nil {
		t.Errorf("still blocked after config was fixed: %v / %v", acct["rotation_blocked"], acct["admin_login_error"])
	}
	e.setClock(e.nextRotation("trusted"))
	e.tick()
	if acct := e.account("trusted"); acct["version"] != 1 || acct["rotation_status"] != "scheduled" {
		t.Errorf("after fixing config: version %v, status %v", acct["version"], acct["rotation_status"])
	}
}

// The schedule fields: period and schedule exclude each other, an update
// may switch between them, disable_automated_rotation stops the queue.
func TestSchedule_Fields(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/trusted", map[string]interface{}{
		"username": rotTrustedUser, "password": rotTrustedPass, "rotation_period": "24h", "rotation_schedule": "0 3 * * *",
	})
	if err := respErr(resp, err); err == nil || !strings.Contains(err.Error(), "mutually exclusive") {
		t.Errorf("both: %v", err)
	}
	for _, bad := range []map[string]interface{}{
		{"rotation_period": "2s"},
		{"rotation_schedule": "not cron"},
		{"rotation_schedule": "0 3 * * *", "rotation_window": "10m"},
		{"next_rotation": "2031-01-01T00:00:00Z"},
	} {
		bad["username"], bad["password"] = rotTrustedUser, rotTrustedPass
		if resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/trusted", bad); respErr(resp, err) == nil {
			t.Errorf("%v accepted", bad)
		}
	}

	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "24h"})
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"rotation_schedule": "0 3 * * *"})
	acct := e.account("trusted")
	if _, hasPeriod := acct["rotation_period"]; hasPeriod || acct["rotation_schedule"] != "0 3 * * *" {
		t.Errorf("switch to schedule: %v", acct)
	}
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"disable_automated_rotation": true})
	acct = e.account("trusted")
	if acct["next_vault_rotation"] != "" || acct["rotation_status"] != "manual" || e.queued("trusted") {
		t.Errorf("disabled: %v, queued %v", acct, e.queued("trusted"))
	}
	if _, ok := e.creds("trusted")["ttl"]; ok {
		t.Error("creds of an unscheduled account have a ttl")
	}
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"disable_automated_rotation": false})
	if !e.queued("trusted") || e.nextRotation("trusted").IsZero() {
		t.Error("re-enabled account not queued")
	}
	if resp, err := request(t, e.b, e.s, logical.DeleteOperation, "accounts/trusted", nil); respErr(resp, err) != nil {
		t.Fatal(respErr(resp, err))
	}
	if e.queued("trusted") {
		t.Error("deleted account still queued")
	}
}

// The rotation pipeline leaves the queue to its callers: after a manual
// rotation the queue holds the account at its new stored time.
func TestSchedule_ManualRotationRequeues(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "24h"})
	e.advance(time.Hour)
	e.mustRotate("trusted")
	want := e.now().Add(24 * time.Hour)
	if got := e.nextRotation("trusted"); !got.Equal(want) {
		t.Fatalf("next_vault_rotation = %v, want %v", got, want)
	}
	if at, ok := e.queuedAt("trusted"); !ok || !at.Equal(want) {
		t.Errorf("queued at %v (%v), want %v", at, ok, want)
	}
}

// Issue 9, defect 6: accounts with a "/" in their name are scheduled
// again after a restart, failover or reload (the queue is rebuilt from a
// listing of storage, which must descend into folders), and rotate when
// due.
func TestTrust06NestedAccountsRequeuedAfterReload(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	e.addTrusted("team-a/etl", map[string]interface{}{"rotation_period": "24h"})
	e.addIntegration("team-b/sub/integ", map[string]interface{}{"rotation_period": "48h", "allow_scheduled_rotation_with_token": true})
	for _, name := range []string{"team-a/etl", "team-b/sub/integ"} {
		if !e.queued(name) {
			t.Fatalf("%s not queued after its write; the test proves nothing", name)
		}
	}
	e.restart()
	for _, name := range []string{"team-a/etl", "team-b/sub/integ"} {
		at, ok := e.queuedAt(name)
		if !ok || !at.Equal(e.nextRotation(name)) {
			t.Errorf("after a restart %s is queued=%v at %v, want its next_vault_rotation %v", name, ok, at, e.nextRotation(name))
		}
	}
	e.advance(25 * time.Hour)
	e.tick()
	if v := e.version("team-a/etl"); v != 1 {
		t.Errorf("team-a/etl version = %d after its period passed, want 1 (rotated)", v)
	}
}

// The scheduler wakes when the earliest account is due, not at its next
// tick: with the tick an hour away, an account due in a second rotates
// within moments of it (real clock).
func TestScheduleWakesWhenDue(t *testing.T) {
	e := newRotEnv(t)
	e.b.clock = time.Now
	e.b.rot.wakeAtDue = true
	e.initialize()
	due := time.Now().Add(2 * time.Second).Truncate(time.Second)
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "1h", "next_rotation": due.Format(time.RFC3339)})
	deadline := time.Now().Add(30 * time.Second)
	for e.version("trusted") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the account was not rotated when it was due (the tick is an hour away)")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if time.Now().Before(due) {
		t.Error("rotated before it was due")
	}
}
