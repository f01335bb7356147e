package salesforce

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// reportUserEntry finds a user's entry in a report's details.
func reportUserEntry(t *testing.T, data map[string]interface{}, username string) map[string]interface{} {
	t.Helper()
	for _, u := range data["users"].([]map[string]interface{}) {
		if u["username"] == username {
			return u
		}
	}
	t.Fatalf("no entry for %s in the report: %v", username, data["users"])
	return nil
}

// reportMethods returns a user's method entries by "method api_version".
func reportMethods(u map[string]interface{}) map[string]map[string]interface{} {
	out := map[string]map[string]interface{}{}
	for _, m := range u["methods"].([]map[string]interface{}) {
		key := fmt.Sprintf("%s %s", m["method"], m["api_version"])
		if prev, ok := out[key]; ok {
			m["logins"] = m["logins"].(int) + prev["logins"].(int)
		}
		out[key] = m
	}
	return out
}

func TestLoginReport_ListsRetiringMethodsWithDeadlineAndReplacement(t *testing.T) {
	b, s, _, logs := emulatorBackend(t, adminGrantPassword)
	mustWrite(t, b, s, "accounts/demo", map[string]interface{}{
		"username": demoIntegrationUser, "password": demoIntegrationPass, "security_token": demoIntegrationToken,
	})
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "demo"})
	mustRead(t, b, s, "token/pw") // one username-password login through the engine

	resp, err := request(t, b, s, logical.ReadOperation, "login-report", nil)
	if err := respErr(resp, err); err != nil {
		t.Fatalf("login-report: %v", err)
	}
	data := resp.Data
	if data["window_days"] != defaultReportDays || data["users_checked"] != 2 {
		t.Errorf("window_days %v users_checked %v, want 30 and 2 (the account's user and the admin)", data["window_days"], data["users_checked"])
	}
	integ := reportUserEntry(t, data, demoIntegrationUser)
	methods := reportMethods(integ)
	// The demo org's history (v58 with client acme-etl, v64) and the
	// engine's own check of the account (v64).
	soap58, soap64 := methods["SOAP login() 58.0"], methods["SOAP login() 64.0"]
	if soap58 == nil || soap64 == nil || soap58["application"] != "acme-etl" || soap64["logins"].(int) < 2 {
		t.Fatalf("SOAP login() rows of %s: %v", demoIntegrationUser, methods)
	}
	for _, m := range []map[string]interface{}{soap58, soap64} {
		if m["verdict"] != verdictRetiring || m["stops_working"] != "2027-06-12" || m["days_left"] != daysLeft(b.now(), soapLoginRetirement) {
			t.Errorf("SOAP login() verdict %v", m)
		}
		if !strings.Contains(m["note"].(string), "Summer '27") || !strings.Contains(m["note"].(string), "approximate") {
			t.Errorf("the note must name the release and say the date is approximate: %q", m["note"])
		}
	}
	pw := methods["OAuth username-password flow N/A"]
	if pw == nil || pw["verdict"] != verdictDeprecated || pw["application"] != "Vault" || pw["logins"].(int) != 3 || pw["failed"] != 1 {
		t.Fatalf("username-password rows (2 seeded, one failed, and the token read): %v", pw)
	}
	if _, dated := pw["stops_working"]; dated {
		t.Errorf("Salesforce announced no date for the username-password flow: %v", pw)
	}
	if integ["needs_migration"] != true || integ["deadline"] != "2027-06-12" ||
		integ["replacement"] != "vault write salesforce/roles/demo-jwt grant_type=jwt_bearer username=integration@acme.demo" ||
		!strings.Contains(integ["replacement_note"].(string), "pre-authorised") {
		t.Errorf("migration advice for %s: %v", demoIntegrationUser, integ)
	}
	if got := fmt.Sprint(integ["managed_as"]); got != "[accounts/demo roles/pw]" {
		t.Errorf("managed_as %s", got)
	}
	// The admin logs in with the username-password flow (config's grant).
	admin := reportUserEntry(t, data, demoAdminUser)
	if admin["needs_migration"] != true || fmt.Sprint(admin["managed_as"]) != "[config admin]" ||
		admin["replacement"] != "vault write salesforce/config grant_type=jwt_bearer" {
		t.Errorf("admin entry %v", admin)
	}
	if fmt.Sprint(data["soap_login_users"]) != "[integration@acme.demo]" ||
		fmt.Sprint(data["username_password_flow_users"]) != "[integration@acme.demo admin@acme.demo]" ||
		data["next_deadline"] != "2027-06-12" || data["next_deadline_user"] != demoIntegrationUser {
		t.Errorf("summary: %v", data)
	}
	// A person reads the findings as warnings, one sentence each.
	warned := strings.Join(resp.Warnings, "\n")
	for _, want := range []string{"SOAP login() at API 58.0 via acme-etl from 203.0.113.10",
		"retires with Summer '27 (about 2027-06-12",
		"Replace with: vault write salesforce/roles/demo-jwt grant_type=jwt_bearer username=integration@acme.demo.",
		"jwt_bearer needs a signing key: vault write salesforce/config/jwt-key common_name=vault"} {
		if !strings.Contains(warned, want) {
			t.Errorf("warnings lack %q:\n%s", want, warned)
		}
	}
	text := responseText(resp, err) + logs.String()
	assertNoSecrets(t, "login report", text, demoIntegrationPass, demoIntegrationToken, demoAdminPassword, demoClientSecret)

	// A shorter window leaves the demo org's older logins out.
	resp, err = request(t, b, s, logical.ReadOperation, "login-report", map[string]interface{}{"days": 1})
	if err := respErr(resp, err); err != nil {
		t.Fatal(err)
	}
	if m := reportMethods(reportUserEntry(t, resp.Data, demoIntegrationUser)); m["SOAP login() 58.0"] != nil {
		t.Errorf("days=1 still lists the 29-day-old login: %v", m)
	}
	for _, days := range []int{0, 181} {
		resp, err = request(t, b, s, logical.ReadOperation, "login-report", map[string]interface{}{"days": days})
		if statusOf(resp, err) != 400 {
			t.Errorf("days=%d: status %d, want 400", days, statusOf(resp, err))
		}
	}
}

func TestLoginReport_FailedLoginsAfterRotation(t *testing.T) {
	b, s, srv, _ := emulatorBackend(t, adminGrantPassword)
	mustWrite(t, b, s, "accounts/demo", map[string]interface{}{
		"username": demoIntegrationUser, "password": demoIntegrationPass, "security_token": demoIntegrationToken,
	})
	mustWrite(t, b, s, "accounts/other", map[string]interface{}{"username": demoTrustedUser, "password": demoTrustedPassword})
	if resp, err := request(t, b, s, logical.UpdateOperation, "rotate/demo", nil); respErr(resp, err) != nil {
		t.Fatalf("rotate: %v", respErr(resp, err))
	}
	time.Sleep(10 * time.Millisecond)
	// An integration somewhere else still has the old password...
	if _, err := srv.AddLoginHistory(emulator.SeedLogin{Username: demoIntegrationUser, LoginTime: time.Now(), Flow: "soap",
		SourceIP: "203.0.113.77", Status: "Invalid Password"}); err != nil {
		t.Fatal(err)
	}
	// ...and so does one on Vault's own host, where the engine logged in
	// with the new password: not told apart from the engine, so counted
	// but not listed.
	client, err := newClient(sfapi.Config{LoginURL: srv.LoginURL(), APIVersion: "66.0", SOAPAPIVersion: "64.0", RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.SOAPLogin(t.Context(), demoIntegrationUser, demoIntegrationPass+demoIntegrationToken); err == nil {
		t.Fatal("the old password still logs in after the rotation")
	}

	resp, err := request(t, b, s, logical.ReadOperation, "accounts/demo/login-report", nil)
	if err := respErr(resp, err); err != nil {
		t.Fatalf("accounts/demo/login-report: %v", err)
	}
	failures := resp.Data["failed_logins_after_rotation"].([]map[string]interface{})
	if len(failures) != 1 {
		t.Fatalf("failed logins after the rotation: %v, want the one from 203.0.113.77", failures)
	}
	f := failures[0]
	if f["account"] != "demo" || f["source_ip"] != "203.0.113.77" || f["status"] != "Invalid Password" || f["method"] != "SOAP login()" {
		t.Errorf("failure %v", f)
	}
	// The local one, and possibly the engine's own check right after the
	// rotation (the stored token is stale then), within the same
	// millisecond as the rotation or not.
	if n := resp.Data["failed_logins_after_rotation_from_engine_addresses"].(int); n < 1 || n > 2 {
		t.Errorf("failures from the engine's addresses: %d, want the local one (and the engine's own check)", n)
	}
	// The seeded failure from 192.0.2.44 happened before the rotation.
	if strings.Contains(fmt.Sprint(failures), "192.0.2.44") {
		t.Error("a failure before the rotation is listed")
	}
	if !strings.Contains(strings.Join(resp.Warnings, "\n"), "someone still uses a credential that was rotated away") {
		t.Errorf("warnings %v", resp.Warnings)
	}
	// The account's report covers its user only.
	if resp.Data["users_checked"] != 1 {
		t.Errorf("users_checked %v", resp.Data["users_checked"])
	}
	resp, err = request(t, b, s, logical.ReadOperation, "accounts/nope/login-report", nil)
	if statusOf(resp, err) != 404 {
		t.Errorf("unknown account: status %d", statusOf(resp, err))
	}
}

func TestLoginReport_RunAsUserGetsClientCredentials(t *testing.T) {
	e := newRotEnv(t) // config: client_credentials, run as admin@acme.demo
	e.addTrusted("team-a/etl", nil)
	resp, err := request(t, e.b, e.s, logical.ReadOperation, "login-report", nil)
	if err := respErr(resp, err); err != nil {
		t.Fatal(err)
	}
	admin := reportUserEntry(t, resp.Data, demoAdminUser)
	if !strings.Contains(fmt.Sprint(admin["managed_as"]), "run-as") || admin["needs_migration"] != false {
		t.Errorf("the run-as user logs in with client credentials only: %v", admin)
	}
	// The trusted user logged in with SOAP login() when its account was
	// written; its replacement is a JWT role named after the account.
	etl := reportUserEntry(t, resp.Data, demoTrustedUser)
	if etl["replacement"] != "vault write salesforce/roles/team-a-etl-jwt grant_type=jwt_bearer username=trusted@acme.demo" {
		t.Errorf("replacement %v", etl["replacement"])
	}
	// An existing JWT role for the user is the replacement.
	mustWrite(t, e.b, e.s, "config/jwt-key", map[string]interface{}{"common_name": "vault"})
	mustWrite(t, e.b, e.s, "roles/etl-jwt", map[string]interface{}{"grant_type": "jwt_bearer", "username": demoTrustedUser})
	resp, _ = request(t, e.b, e.s, logical.ReadOperation, "login-report", nil)
	etl = reportUserEntry(t, resp.Data, demoTrustedUser)
	if etl["replacement"] != "vault read salesforce/token/etl-jwt" {
		t.Errorf("replacement with an existing role: %v", etl["replacement"])
	}
}

func TestLoginReport_WarnsWhenTheAdminSeesOnlyItsOwnLogins(t *testing.T) {
	b, s, srv, _ := emulatorBackend(t, adminGrantPassword)
	mustWrite(t, b, s, "accounts/demo", map[string]interface{}{
		"username": demoIntegrationUser, "password": demoIntegrationPass, "security_token": demoIntegrationToken,
	})
	srv.SetOrg(func(o *emulator.Org) {
		for i := range o.Profiles {
			if o.Profiles[i].Name == "System Administrator" {
				o.Profiles[i].ManageUsers = false
				o.Profiles[i].Permissions = nil
			}
		}
	})
	b.dropAdminSession()
	resp, err := request(t, b, s, logical.ReadOperation, "login-report", nil)
	if err := respErr(resp, err); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(resp.Warnings, "\n"), "Monitor Login History") {
		t.Errorf("no warning that other users' logins are hidden: %v", resp.Warnings)
	}
}

func TestClassifyLoginAndVerdict(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		row             sfapi.LoginRecord
		method, verdict string
		stops           time.Time
	}{
		{sfapi.LoginRecord{LoginType: "Other Apex API", LoginSubType: "SoapApiLogin", APIType: "SOAP Partner", APIVersion: "64.0"}, methodSOAPLogin, verdictRetiring, soapLoginRetirement},
		{sfapi.LoginRecord{LoginType: "Partner Product", APIType: "SOAP Enterprise", APIVersion: "31.0"}, methodSOAPLogin, verdictRetiring, soapLoginRetirement},
		{sfapi.LoginRecord{LoginType: "Other Apex API", LoginSubType: "SoapApiLogin", APIType: "SOAP Partner", APIVersion: "65.0"}, methodSOAPLogin, verdictUnavailable, now},
		{sfapi.LoginRecord{LoginType: "Other Apex API", LoginSubType: "SoapApiLogin", APIType: "SOAP Partner", APIVersion: "30.0"}, methodSOAPLogin, verdictUnavailable, now},
		{sfapi.LoginRecord{LoginType: "Remote Access 2.0", LoginSubType: "OauthUsernamePassword"}, methodUsernamePassword, verdictDeprecated, time.Time{}},
		{sfapi.LoginRecord{LoginType: "Remote Access 2.0", LoginSubType: "OAuth Username-Password"}, methodUsernamePassword, verdictDeprecated, time.Time{}},
		{sfapi.LoginRecord{LoginType: "Remote Access 2.0", LoginSubType: "OauthClientCredentials"}, methodClientCredentials, verdictOK, time.Time{}},
		{sfapi.LoginRecord{LoginType: "Remote Access 2.0"}, methodJWTBearer, verdictOK, time.Time{}},
		{sfapi.LoginRecord{LoginType: "Application", LoginSubType: "UsernamePasswordUiLogin"}, methodOther, verdictOK, time.Time{}},
	} {
		method := classifyLogin(tc.row)
		verdict, stops, _ := methodVerdict(method, tc.row.APIVersion, now)
		if method != tc.method || verdict != tc.verdict || !stops.Equal(tc.stops) {
			t.Errorf("%+v: %s %s %v, want %s %s %v", tc.row, method, verdict, stops, tc.method, tc.verdict, tc.stops)
		}
	}
	if daysLeft(now, soapLoginRetirement) != 193 || daysLeft(soapLoginRetirement.Add(time.Hour), soapLoginRetirement) != 0 {
		t.Errorf("daysLeft: %d", daysLeft(now, soapLoginRetirement))
	}
}
