package salesforce

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestConfigRotation(t *testing.T) {
	b, s := getTestBackend(t)
	data := mustRead(t, b, s, "config/rotation")
	wantDefaults := map[string]interface{}{
		"skip_import_rotation":      true,
		"password_length":           24,
		"max_concurrent_rotations":  2,
		"requests_per_minute":       60,
		"failure_backoff_base":      int64(60),
		"failure_backoff_cap":       int64(3600),
		"login_budget_per_hour":     20,
		"max_failed_logins":         2,
		"max_new_password_attempts": 3,
		"min_password_lifetime":     true,
		"webhook_secret_set":        false,
		"allow_insecure_webhooks":   false,
	}
	for k, want := range wantDefaults {
		if data[k] != want {
			t.Errorf("default %s = %#v, want %#v", k, data[k], want)
		}
	}
	mustWrite(t, b, s, "config/rotation", map[string]interface{}{
		"webhook_url": "https://hooks.example.com/vault", "webhook_secret": "very-secret-key",
		"failure_backoff_cap": "10m", "skip_import_rotation": false,
	})
	data = mustRead(t, b, s, "config/rotation")
	if data["webhook_secret_set"] != true || data["failure_backoff_cap"] != int64(600) || data["skip_import_rotation"] != false {
		t.Errorf("after write = %v", data)
	}
	assertNoSecrets(t, "config/rotation read", fmt.Sprint(data), "very-secret-key")

	for field, value := range map[string]interface{}{
		"webhook_url":               "ftp://x",
		"max_concurrent_rotations":  0,
		"login_budget_per_hour":     1000,
		"max_failed_logins":         0,
		"failure_backoff_cap":       "1s",
		"max_new_password_attempts": 0,
		"password_length":           6,
		"password_policy":           "no-such-policy",
	} {
		resp, err := request(t, b, s, logical.UpdateOperation, "config/rotation", map[string]interface{}{field: value})
		if err := respErr(resp, err); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s=%v: err = %v, want one naming the field", field, value, err)
		}
	}

	// The mount default of skip_import_rotation applies to new accounts.
	e := newRotEnv(t)
	e.initialize()
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"skip_import_rotation": false})
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "720h"})
	e.tick()
	if e.version("trusted") != 1 {
		t.Error("skip_import_rotation=false from config/rotation was not applied")
	}
}
