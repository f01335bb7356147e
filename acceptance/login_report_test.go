package acceptance

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

const (
	demoInteg2User     = "integration2@acme.demo"
	demoInteg2Password = "Integ2-Pass-1234"
	demoInteg2Token    = "INTEG2TOKEN000000000000000"
	// Salesforce names the release that retires SOAP login() (Summer '27),
	// not a date; the engine counts down to this approximate one.
	soapLoginRetirement = "2027-06-12"
)

func init() {
	noteSecret(demoInteg2Password, demoInteg2Token)
}

// vaultCLIWithWarnings runs `vault args...` and returns what a person sees:
// stdout and stderr, where the CLI prints a response's warnings.
func vaultCLIWithWarnings(t *testing.T, args ...string) string {
	t.Helper()
	r := runVault(t, nil, "", args...)
	if r.Err != nil {
		t.Fatalf("vault %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	return r.Stderr + r.Stdout
}

// oneLine collapses whitespace runs, so text the CLI wrapped matches.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// reportEntry finds a user's entry in a login report read as JSON.
func reportEntry(t *testing.T, report map[string]any, username string) map[string]any {
	t.Helper()
	users, _ := report["users"].([]any)
	for _, u := range users {
		if m, ok := u.(map[string]any); ok && m["username"] == username {
			return m
		}
	}
	t.Fatalf("the login report has no entry for %s: %v", username, report["users"])
	return nil
}

// reportMethod finds a method of a user's entry by label and API version.
func reportMethod(entry map[string]any, label, apiVersion string) map[string]any {
	methods, _ := entry["methods"].([]any)
	for _, m := range methods {
		if mm, ok := m.(map[string]any); ok && mm["method"] == label && mm["api_version"] == apiVersion {
			return mm
		}
	}
	return nil
}

// The demo org's login report lists the SOAP login() and the
// username-password logins this test makes for a stored account, with
// Summer '27's (approximate) deadline and the JWT role that replaces them;
// after a rotation, a failed login with the old password from elsewhere
// is listed apart.
func TestLoginReportInVault(t *testing.T) {
	mount := mountPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	rotRestoreDemoUser(t, demoInteg2User, demoInteg2Password, demoInteg2Token)
	emu := emulatorServer(t)

	vaultWriteJSON(t, mount+"/accounts/etl2", map[string]any{
		"username": demoInteg2User, "password": demoInteg2Password, "security_token": demoInteg2Token,
	})
	// An integration logs in with SOAP login() with the credential Vault
	// serves, and another takes an access token through the
	// username-password flow.
	if status, ok, _ := soapLogin(t, demoInteg2User, demoInteg2Password+demoInteg2Token); !ok {
		t.Fatalf("SOAP login as %s: HTTP %d", demoInteg2User, status)
	}
	vaultCLI(t, "write", mount+"/roles/etl2-pw", "grant_type=password", "account=etl2")
	token := data(t, vaultJSON(t, "read", mount+"/token/etl2-pw"))
	noteSecret(token["access_token"].(string))

	out := vaultCLIWithWarnings(t, "read", mount+"/login-report")
	t.Logf("$ vault read %s/login-report\n%s", mount, out)
	replacement := fmt.Sprintf("vault write %s/roles/etl2-jwt grant_type=jwt_bearer username=%s", mount, demoInteg2User)
	for _, want := range []string{"WARNING!", demoInteg2User + " (accounts/etl2, roles/etl2-pw)",
		"SOAP login() at API 64.0 from 127.0.0.1", "retires with Summer '27 (about " + soapLoginRetirement,
		"OAuth username-password flow via Vault", "Replace with: " + replacement,
		"next_deadline " + soapLoginRetirement, "users_to_migrate"} {
		if !strings.Contains(oneLine(out), want) {
			t.Errorf("vault read %s/login-report lacks %q", mount, want)
		}
	}

	report := vaultJSON(t, "read", mount+"/login-report")
	d := data(t, report)
	if warnings, _ := report["warnings"].([]any); len(warnings) == 0 {
		t.Error("the JSON answer carries no warnings")
	}
	entry := reportEntry(t, d, demoInteg2User)
	soap := reportMethod(entry, "SOAP login()", "64.0")
	if soap == nil || rotAsInt(soap["logins"]) < 2 || !strings.Contains(fmt.Sprint(soap["source_ips"]), "127.0.0.1") ||
		soap["verdict"] != "retiring" || soap["stops_working"] != soapLoginRetirement {
		t.Errorf("SOAP login() of %s (this test's and the engine's account check): %v", demoInteg2User, soap)
	}
	retire, _ := time.Parse(time.DateOnly, soapLoginRetirement)
	wantDays := int(math.Ceil(time.Until(retire).Hours() / 24))
	if got := rotAsInt(entry["days_left"]); got < wantDays-1 || got > wantDays {
		t.Errorf("days_left %d, want %d", got, wantDays)
	}
	pw := reportMethod(entry, "OAuth username-password flow", "N/A")
	if pw == nil || pw["application"] != "Vault" || pw["verdict"] != "deprecated" || rotAsInt(pw["logins"]) < 1 {
		t.Errorf("username-password logins of %s: %v", demoInteg2User, pw)
	}
	if entry["needs_migration"] != true || entry["replacement"] != replacement {
		t.Errorf("migration advice: %v", entry)
	}

	// Rotate, then an integration elsewhere keeps the old password; one on
	// Vault's own host is not told apart from the engine.
	vaultCLI(t, "write", "-f", mount+"/rotate/etl2")
	noteSecret(emu.Password(demoInteg2User))
	time.Sleep(1100 * time.Millisecond)
	if _, err := emu.AddLoginHistory(emulator.SeedLogin{Username: demoInteg2User, LoginTime: time.Now(), Flow: "soap",
		SourceIP: "203.0.113.77", Status: "Invalid Password"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := soapLogin(t, demoInteg2User, demoInteg2Password+demoInteg2Token); ok {
		t.Fatal("the old password still logs in after the rotation")
	}
	out = vaultCLIWithWarnings(t, "read", mount+"/accounts/etl2/login-report")
	t.Logf("$ vault read %s/accounts/etl2/login-report\n%s", mount, out)
	if !strings.Contains(oneLine(out), "from 203.0.113.77 (Invalid Password, SOAP login()): someone still uses a credential that was rotated away") {
		t.Errorf("the failed login with the old password from 203.0.113.77 is not reported")
	}
	d = data(t, vaultJSON(t, "read", mount+"/accounts/etl2/login-report"))
	failures, _ := d["failed_logins_after_rotation"].([]any)
	if len(failures) != 1 || !strings.Contains(fmt.Sprint(failures[0]), "203.0.113.77") {
		t.Errorf("failed_logins_after_rotation = %v, want the one from 203.0.113.77", failures)
	}
	if rotAsInt(d["failed_logins_after_rotation_from_engine_addresses"]) < 1 {
		t.Errorf("the failed login from Vault's own host is not counted: %v", d["failed_logins_after_rotation_from_engine_addresses"])
	}
	if rotAsInt(d["users_checked"]) != 1 {
		t.Errorf("accounts/etl2/login-report checks %v users, want 1", d["users_checked"])
	}
}
