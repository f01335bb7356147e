package salesforce

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// The scheduler's limits: many accounts due at once, retries inside the
// window, the org's request rate, the concurrency bound, a missing config.

// Concurrency: several due accounts rotate in one pass, bounded by
// max_concurrent_rotations, and all succeed.
func TestSchedule_ManyDue(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"max_concurrent_rotations": 2, "requests_per_minute": 6000})
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "1h"})
	e.addIntegration("etl", map[string]interface{}{"rotation_period": "1h", "allow_scheduled_rotation_with_token": true})
	e.advance(time.Hour)
	e.tick()
	if e.version("trusted") != 1 || e.version("etl") != 1 {
		t.Errorf("versions = %d, %d, want 1, 1", e.version("trusted"), e.version("etl"))
	}
	_ = context.Background()
}

// Retries of a failing windowed schedule stop when the window closes; the
// miss is shown and the next scheduled time is kept.
func TestSchedule_RetriesStayInWindow(t *testing.T) {
	e := newRotEnv(t)
	day := time.Date(2031, 3, 4, 1, 0, 0, 0, time.UTC)
	e.setClock(day)
	e.initialize()
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"failure_backoff_base": 1200, "failure_backoff_cap": 1200, "login_budget_per_hour": 30})
	e.addTrusted("trusted", map[string]interface{}{"rotation_schedule": "0 3 * * *", "rotation_window": "1h"})
	e.srv.InjectFault("rest.password", emulator.Fault{Status: 503, Body: `[{"message":"down","errorCode":"SERVER_UNAVAILABLE"}]`})
	e.setClock(day.Add(2 * time.Hour)) // 03:00
	for i := 0; i < 6 && e.account("trusted")["missed_rotation_at"] == nil; i++ {
		e.tick()
		next := e.nextRotation("trusted")
		if next.After(e.now()) {
			e.setClock(next)
		}
	}
	acct := e.account("trusted")
	if acct["missed_rotation_at"] != "2031-03-04T03:00:00Z" {
		t.Errorf("missed_rotation_at = %v", acct["missed_rotation_at"])
	}
	if got := e.nextRotation("trusted"); !got.Equal(day.Add(26 * time.Hour)) {
		t.Errorf("next = %v, want the next day 03:00", got)
	}
	if f := acct["consecutive_failures"].(int); f < 3 || f > 4 {
		t.Errorf("consecutive_failures = %d, want the retries inside the hour (3-4 at 16-20 min)", f)
	}
}

// requests_per_minute spaces rotation starts.
func TestSchedule_RequestRate(t *testing.T) {
	b, _ := getTestBackend(t)
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, want := range []time.Duration{0, time.Second, 2 * time.Second} {
		if got := b.reserveStart(now, 60).Sub(now); got != want {
			t.Errorf("start %d at +%s, want +%s", i, got, want)
		}
	}
	later := now.Add(time.Minute)
	if got := b.reserveStart(later, 60); !got.Equal(later) {
		t.Errorf("after a pause the next start is %s, want now", got)
	}
}

// max_concurrent_rotations bounds the rotations running at once.
func TestSchedule_ConcurrencyBound(t *testing.T) {
	for _, limit := range []int{1, 2} {
		e := newRotEnv(t)
		e.initialize()
		mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"max_concurrent_rotations": limit})
		e.addTrusted("trusted", map[string]interface{}{"rotation_period": "1h"})
		e.addIntegration("etl", map[string]interface{}{"rotation_period": "1h", "allow_scheduled_rotation_with_token": true})
		mustWrite(t, e.b, e.s, "accounts/adm", map[string]interface{}{
			"username": "admin@acme.demo", "password": "Admin-Pass-1234", "security_token": "ADMINTOKEN0000000000000000",
			"rotation_period": "1h", "allow_scheduled_rotation_with_token": true,
		})
		var mu sync.Mutex
		running, peak := 0, 0
		e.b.rot.testStep = func(step string) error {
			mu.Lock()
			switch step {
			case stepWALWritten:
				running++
				if running > peak {
					peak = running
				}
			case stepWALDeleted:
				running--
			}
			mu.Unlock()
			if step == stepWALWritten {
				time.Sleep(20 * time.Millisecond) // widen the overlap
			}
			return nil
		}
		e.advance(time.Hour)
		e.tick()
		for _, name := range []string{"trusted", "etl", "adm"} {
			if e.version(name) != 1 {
				t.Errorf("limit %d: %s not rotated", limit, name)
			}
		}
		if peak > limit || peak < 1 {
			t.Errorf("limit %d: %d rotations ran at once", limit, peak)
		}
	}
}

// Without config a due rotation fails visibly and backs off instead of
// retrying at every tick.
func TestSchedule_ConfigMissingBacksOff(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "1h"})
	if resp, err := request(t, e.b, e.s, logical.DeleteOperation, "config", nil); respErr(resp, err) != nil {
		t.Fatalf("config cannot be deleted while accounts exist: %v", respErr(resp, err))
	}
	e.advance(time.Hour)
	e.tick()
	acct := e.account("trusted")
	if acct["consecutive_failures"] != 1 || !strings.Contains(acct["last_rotation_error"].(string), "config") {
		t.Errorf("status = %v", acct)
	}
	if !e.nextRotation("trusted").After(e.now()) {
		t.Error("no backoff after the failure")
	}
}
