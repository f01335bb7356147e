package acceptance

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// rotHookReceiver is a local HTTP server standing in for an integration's
// webhook endpoint.
type rotHookReceiver struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
	url    string
}

func newRotHookReceiver(t *testing.T) *rotHookReceiver {
	t.Helper()
	r := &rotHookReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.sigs = append(r.sigs, req.Header.Get("X-Signature"))
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// events returns the received events whose signature verifies with secret;
// it fails the test on a bad signature.
func (r *rotHookReceiver) events(t *testing.T, secret string) []map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for i, body := range r.bodies {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		if want := hex.EncodeToString(m.Sum(nil)); r.sigs[i] != want {
			t.Errorf("webhook event %d: X-Signature %q does not verify", i, r.sigs[i])
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook event %d is not JSON: %s", i, body)
			continue
		}
		out = append(out, ev)
	}
	return out
}

// rotRestoreDemoUser puts a demo user's seed password and token back when the
// test ends: the org is shared by the whole suite, and rotations change it.
func rotRestoreDemoUser(t *testing.T, username, password, token string) {
	t.Helper()
	emu := emulatorServer(t)
	t.Cleanup(func() {
		emu.SetUserState(username, func(u *emulator.User) {
			u.Password = password
			if token != "" {
				u.SecurityToken = token
			}
			u.PasswordExpired = false
			u.IsPasswordLocked = false
			u.FailedLoginAttempts = 0
		})
	})
}

func rotReadCreds(t *testing.T, mount, name string) map[string]any {
	t.Helper()
	return data(t, vaultJSON(t, "read", mount+"/creds/"+name))
}

func rotAsInt(v any) int {
	f, _ := v.(json.Number)
	if n, err := f.Int64(); err == nil {
		return int(n)
	}
	if x, ok := v.(float64); ok {
		return int(x)
	}
	return -1
}

// An account with a short rotation_period rotates by itself inside a real
// Vault; the new credential logs in to the org; the webhook receives a
// correctly signed event without secrets.
func TestScheduledRotationInVault(t *testing.T) {
	mount := mountPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	rotRestoreDemoUser(t, demoTrustedUser, demoTrustedPasswd, "")
	hook := newRotHookReceiver(t)
	const hookSecret = "acceptance-hook-secret"
	noteSecret(hookSecret)
	// The receiver is plain http on loopback: webhooks need https, and
	// reach loopback addresses only, when the mount opts in.
	vaultWriteJSON(t, mount+"/config/rotation", map[string]any{
		"webhook_url": hook.url, "webhook_secret": hookSecret, "login_budget_per_hour": 60,
		"allow_insecure_webhooks": true, "webhook_allowed_networks": "127.0.0.1/32",
	})
	vaultWriteJSON(t, mount+"/accounts/trusted", map[string]any{
		"username": demoTrustedUser, "password": demoTrustedPasswd, "rotation_period": "10s",
	})
	// Reads give durations in seconds, the rotation fields as the SDK
	// does, and leave unset optional fields out.
	acct := data(t, vaultJSON(t, "read", mount+"/accounts/trusted"))
	if rotAsInt(acct["rotation_period"]) != 10 {
		t.Errorf("rotation_period = %#v, want 10 (seconds)", acct["rotation_period"])
	}
	for _, absent := range []string{"rotation_schedule", "rotation_window", "rotation_policy", "validation_query", "pre_rotation_webhook", "last_rotation_error"} {
		if v, ok := acct[absent]; ok {
			t.Errorf("accounts/trusted shows unset %s = %#v", absent, v)
		}
	}
	if out := vaultCLI(t, "read", mount+"/accounts/trusted"); !strings.Contains(out, "rotation_status") || strings.Contains(out, "webhook_url") {
		t.Errorf("vault read accounts/trusted:\n%s", out)
	}

	deadline := time.Now().Add(90 * time.Second)
	for rotAsInt(data(t, vaultJSON(t, "read", mount+"/accounts/trusted"))["version"]) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the account did not rotate by itself: %v", data(t, vaultJSON(t, "read", mount+"/accounts/trusted")))
		}
		time.Sleep(time.Second)
	}
	// Stop the schedule so the credential read below stays current.
	vaultCLI(t, "write", mount+"/accounts/trusted", "disable_automated_rotation=true")

	creds := rotReadCreds(t, mount, "trusted")
	password := creds["password"].(string)
	noteSecret(password)
	if password == demoTrustedPasswd {
		t.Fatal("creds still serve the imported password")
	}
	if status, ok, _ := soapLogin(t, demoTrustedUser, creds["password_with_token"].(string)); !ok {
		t.Fatalf("the rotated credential does not log in (HTTP %d)", status)
	}

	deadline = time.Now().Add(30 * time.Second)
	for {
		evs := hook.events(t, hookSecret)
		if len(evs) > 0 {
			ev := evs[0]
			if ev["event"] != "rotate" || ev["account"] != "trusted" || ev["username"] != demoTrustedUser || ev["outcome"] != "rotated" || ev["version"] == nil {
				t.Errorf("event = %v", ev)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhook received no event")
		}
		time.Sleep(200 * time.Millisecond)
	}
	hook.mu.Lock()
	for _, b := range hook.bodies {
		assertNoSecrets(t, "webhook body", string(b), password, demoTrustedPasswd, hookSecret)
	}
	hook.mu.Unlock()
}

// The walk-through of one rotation of a required-token account: rotate,
// see the token reported stale, write the emailed token back, log in.
func TestManualRotationWithTokenCLI(t *testing.T) {
	mount := mountPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	rotRestoreDemoUser(t, demoIntegUser, demoIntegPassword, demoIntegToken)
	emu := emulatorServer(t)
	vaultWriteJSON(t, mount+"/accounts/etl", map[string]any{
		"username": demoIntegUser, "password": demoIntegPassword, "security_token": demoIntegToken,
	})

	out := vaultCLI(t, "write", "-f", mount+"/rotate/etl")
	t.Logf("$ vault write -f %s/rotate/etl\n%s", mount, out)
	if !strings.Contains(out, "rotated") || !strings.Contains(out, "stale") {
		t.Errorf("rotate output lacks the outcome or the stale token:\n%s", out)
	}
	newPassword := emu.Password(demoIntegUser)
	noteSecret(newPassword)

	out = vaultCLI(t, "read", mount+"/creds/etl")
	t.Logf("$ vault read %s/creds/etl (secrets redacted)\n%s", mount, rotRedact(out, newPassword, demoIntegToken))
	if !strings.Contains(out, "security_token_status") || !strings.Contains(out, "stale") {
		t.Errorf("creds do not report the stale token:\n%s", rotRedact(out, newPassword, demoIntegToken))
	}
	creds := rotReadCreds(t, mount, "etl")
	if creds["password"] != newPassword || rotAsInt(creds["version"]) != 1 {
		t.Fatalf("creds version %v; password matches Salesforce: %v", creds["version"], creds["password"] == newPassword)
	}

	token := emu.LatestSecurityToken(demoIntegUser)
	noteSecret(token)
	r := runVault(t, nil, `{"security_token":"`+demoIntegToken+`"}`, "write", mount+"/accounts/etl/security-token", "-")
	if r.Err == nil {
		t.Fatal("the invalidated token was accepted")
	}
	out = r.Stdout + r.Stderr
	assertNoSecrets(t, "rejected token output", out, demoIntegToken, newPassword)
	out = vaultWriteJSON(t, mount+"/accounts/etl/security-token", map[string]any{"security_token": token})
	t.Logf("$ vault write %s/accounts/etl/security-token security_token=<emailed token>\n%s", mount, out)
	assertNoSecrets(t, "token write output", out, token, newPassword)

	creds = rotReadCreds(t, mount, "etl")
	if creds["security_token_status"] != "current" {
		t.Errorf("security_token_status = %v after re-entry", creds["security_token_status"])
	}
	if status, ok, _ := soapLogin(t, demoIntegUser, creds["password_with_token"].(string)); !ok {
		t.Fatalf("the served credential does not log in after re-entry (HTTP %d)", status)
	}

	out = vaultCLI(t, "read", mount+"/accounts/etl/diagnose")
	t.Logf("$ vault read %s/accounts/etl/diagnose\n%s", mount, out)
	if !strings.Contains(out, "logs in") {
		t.Errorf("diagnose does not say the credential logs in:\n%s", out)
	}
}

// A failed rotation is an error on the CLI, never a success.
func TestRotationFailureIsAnError(t *testing.T) {
	mount := mountPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	out := vaultCLIFails(t, "write", "-f", mount+"/rotate/missing")
	if !strings.Contains(out, "Code: 404") || !strings.Contains(out, `account "missing" does not exist`) {
		t.Errorf("output = %s", out)
	}
	body, _ := json.Marshal(map[string]any{"username": demoIntegUser, "password": demoIntegPassword,
		"security_token": demoIntegToken, "rotation_period": "24h"})
	r := runVault(t, nil, string(body), "write", mount+"/accounts/etl", "-")
	if r.Err == nil {
		t.Fatal("scheduled rotation of a required account was accepted without the opt-in")
	}
	out = r.Stdout + r.Stderr
	if !strings.Contains(out, "allow_scheduled_rotation_with_token") {
		t.Errorf("scheduled rotation of a required account was not refused with the explanation:\n%s", out)
	}
}

func rotRedact(s string, secrets ...string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, fmt.Sprintf("<redacted %d chars>", len(v)))
		}
	}
	return s
}
