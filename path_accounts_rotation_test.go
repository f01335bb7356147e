package salesforce

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// An account read shows durations in seconds and the rotation fields the
// way the SDK's PopulateSetAutomatedRotationData does: the period only when
// set, schedule and window only with a schedule, no rotation_policy.
// Optional fields that are unset are left out; the status fields are not.
func TestAccountRead_RotationFieldsAndUnsetOptionals(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "24h"})
	acct := e.account("trusted")
	if acct["rotation_period"] != int64(86400) {
		t.Errorf("rotation_period = %#v, want 86400 seconds", acct["rotation_period"])
	}
	for _, absent := range []string{
		"rotation_schedule", "rotation_window", "rotation_policy",
		"password_policy", "validation_query", "validation_webhook", "pre_rotation_webhook", "webhook_url",
		"rotation_blocked", "admin_login_error", "last_rotation_error", "last_rotation_error_at",
		"missed_rotation_at", "unverified_candidate_at",
	} {
		if v, ok := acct[absent]; ok {
			t.Errorf("%s = %#v is shown although unset", absent, v)
		}
	}
	for _, present := range []string{
		"rotation_status", "version", "security_token_status", "next_vault_rotation",
		"last_vault_rotation", "consecutive_failures", "disable_automated_rotation",
	} {
		if _, ok := acct[present]; !ok {
			t.Errorf("%s is missing from the read", present)
		}
	}
	if acct["rotation_status"] != "scheduled" || acct["next_vault_rotation"] == "" {
		t.Errorf("status %v, next %v: want scheduled with a next rotation", acct["rotation_status"], acct["next_vault_rotation"])
	}

	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{
		"rotation_schedule": "0 3 * * SAT", "rotation_window": "2h",
		"validation_query": "SELECT Id FROM Account LIMIT 1",
	})
	acct = e.account("trusted")
	if acct["rotation_schedule"] != "0 3 * * SAT" || acct["rotation_window"] != int64(7200) {
		t.Errorf("schedule %#v, window %#v: want the schedule and 7200 seconds", acct["rotation_schedule"], acct["rotation_window"])
	}
	if v, ok := acct["rotation_period"]; ok {
		t.Errorf("rotation_period = %#v is shown next to a schedule", v)
	}
	if acct["validation_query"] != "SELECT Id FROM Account LIMIT 1" {
		t.Errorf("validation_query = %#v once set", acct["validation_query"])
	}
}

// Every duration in a read is an integer number of seconds.
func TestReads_DurationsAreSeconds(t *testing.T) {
	e := newRotEnv(t)
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"failure_backoff_base": "2m", "failure_backoff_cap": "1h"})
	rc := mustRead(t, e.b, e.s, "config/rotation")
	if rc["failure_backoff_base"] != int64(120) || rc["failure_backoff_cap"] != int64(3600) {
		t.Errorf("config/rotation backoff = %#v / %#v, want 120 / 3600 seconds", rc["failure_backoff_base"], rc["failure_backoff_cap"])
	}
	mustWrite(t, e.b, e.s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials", "ttl": "15m", "session_timeout": "30m"})
	role := mustRead(t, e.b, e.s, "roles/cc")
	if role["ttl"] != int64(900) || role["session_timeout"] != int64(1800) || role["max_ttl"] != int64(0) {
		t.Errorf("role ttl %#v, session_timeout %#v, max_ttl %#v: want 900, 1800, 0 seconds", role["ttl"], role["session_timeout"], role["max_ttl"])
	}
}

// The rotation fields' help speaks of this engine's queue, not of the
// Enterprise rotation manager the SDK's descriptions assume.
func TestAccountRotationFieldHelp(t *testing.T) {
	fields := accountRotationFields()
	for _, name := range []string{"rotation_period", "rotation_schedule", "rotation_window", "disable_automated_rotation"} {
		desc := fields[name].Description
		for _, wrong := range []string{"RotationManager", "of the given username", "TTL for"} {
			if strings.Contains(desc, wrong) {
				t.Errorf("%s help says %q: %s", name, wrong, desc)
			}
		}
	}
	if _, ok := fields["rotation_policy"]; ok {
		t.Error("rotation_policy is offered but the engine does not use it")
	}
	if d := fields["rotation_period"].Description; !rotContainsAll(d, "community edition", "next_rotation", "skip_import_rotation", "seconds") {
		t.Errorf("rotation_period help = %s", d)
	}
	if d := fields["disable_automated_rotation"].Description; !rotContainsAll(d, "queue", "rotate/<name>") {
		t.Errorf("disable_automated_rotation help = %s", d)
	}
}

// rotate/<name> answers an unknown account with 404 and a message that
// names it.
func TestRotate_UnknownAccountIs404(t *testing.T) {
	e := newRotEnv(t)
	resp, err := e.rotate("nope")
	if statusOf(resp, err) != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", statusOf(resp, err))
	}
	if msg := respErr(resp, err); msg == nil || !strings.Contains(msg.Error(), `account "nope" does not exist`) {
		t.Errorf("error = %v", msg)
	}
}

// Issue 9, defect 12: a rotation_schedule that never fires (30 February)
// is refused at write with a clear error, on create and on update, and
// nothing is stored; before, the account rotated at the next tick, even
// with skip_import_rotation.
func TestTrust12CronThatNeverFires(t *testing.T) {
	e := newRotEnv(t)
	e.initialize()
	for _, sched := range []string{"0 3 30 2 *", "0 3 31 4,6,9,11 *"} {
		before := snapshotStorage(t, e.s)
		resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/trusted", map[string]interface{}{
			"username": rotTrustedUser, "password": rotTrustedPass, "rotation_schedule": sched,
		})
		if msg := fmt.Sprint(respErr(resp, err)); statusOf(resp, err) != http.StatusBadRequest || !strings.Contains(msg, "never") || !strings.Contains(msg, "rotation_schedule") {
			t.Errorf("create with rotation_schedule %q: %d %s, want a 400 saying it never fires", sched, statusOf(resp, err), msg)
		}
		assertSameStorage(t, before, snapshotStorage(t, e.s))
	}
	e.addTrusted("trusted", map[string]interface{}{"rotation_schedule": "0 3 * * *"})
	before := snapshotStorage(t, e.s)
	resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/trusted", map[string]interface{}{"rotation_schedule": "0 3 30 2 *"})
	if statusOf(resp, err) != http.StatusBadRequest || !strings.Contains(fmt.Sprint(respErr(resp, err)), "never") {
		t.Errorf("update to a schedule that never fires: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	assertSameStorage(t, before, snapshotStorage(t, e.s))
	e.tick()
	if v := e.version("trusted"); v != 0 {
		t.Errorf("version = %d after a tick; nothing was due", v)
	}
}
