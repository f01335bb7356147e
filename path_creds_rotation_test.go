package salesforce

import (
	"testing"
	"time"
)

// Scheduled accounts' creds carry rotation_period beside ttl, which tells
// Vault Agent to read them again when ttl runs out (right after the
// rotation) instead of on its static interval.
func TestCredsRotationPeriod(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("daily", map[string]interface{}{"rotation_period": "24h"})
	c := e.creds("daily")
	if c["rotation_period"] != int64(86400) || c["ttl"] != int64(86400) {
		t.Errorf("period account: rotation_period %#v, ttl %#v; want 86400 both", c["rotation_period"], c["ttl"])
	}
	e.advance(time.Hour)
	if c := e.creds("daily"); c["rotation_period"] != int64(86400) || c["ttl"] != int64(86400-3600) {
		t.Errorf("an hour later: rotation_period %#v, ttl %#v", c["rotation_period"], c["ttl"])
	}

	// A schedule: from the next rotation to the one after.
	mustWrite(t, e.b, e.s, "accounts/daily", map[string]interface{}{"rotation_schedule": "0 3 * * SAT"})
	if got := e.creds("daily")["rotation_period"]; got != int64(7*24*3600) {
		t.Errorf("weekly schedule: rotation_period %#v, want a week", got)
	}

	// Paused or unscheduled: neither field.
	mustWrite(t, e.b, e.s, "accounts/daily", map[string]interface{}{"disable_automated_rotation": true})
	for _, f := range []string{"ttl", "rotation_period"} {
		if v, ok := e.creds("daily")[f]; ok {
			t.Errorf("paused account: %s = %#v", f, v)
		}
	}
}

// While the credential will change before the next rotation (the emailed
// token is awaited, an interrupted rotation is unsettled), rotation_period
// is left out so that the Agent keeps reading on its interval.
func TestCredsRotationPeriodLeftOutWhileCredentialWillChange(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegration("etl", map[string]interface{}{"rotation_period": "24h", "allow_scheduled_rotation_with_token": true})
	if _, ok := e.creds("etl")["rotation_period"]; !ok {
		t.Fatal("no rotation_period before the rotation")
	}
	e.mustRotate("etl")
	c := e.creds("etl")
	if _, ok := c["rotation_period"]; ok || c["security_token_status"] != "stale" || c["ttl"] != int64(86400) {
		t.Errorf("stale token: rotation_period %#v, status %v, ttl %#v; want no rotation_period, stale, a day", c["rotation_period"], c["security_token_status"], c["ttl"])
	}
	mustWrite(t, e.b, e.s, "accounts/etl/security-token", map[string]interface{}{"security_token": e.srv.LatestSecurityToken(rotIntegUser)})
	if got := e.creds("etl")["rotation_period"]; got != int64(86400) {
		t.Errorf("after the token was written: rotation_period %#v, want 86400", got)
	}

	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "24h"})
	e.crashedRotation("trusted", stepPasswordChanged)
	c = e.creds("trusted")
	if _, ok := c["rotation_period"]; ok || c["rotation_status"] != "pending_reconciliation" {
		t.Errorf("unsettled rotation: rotation_period %#v, rotation_status %v", c["rotation_period"], c["rotation_status"])
	}
}
