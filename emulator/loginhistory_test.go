package emulator

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// emptyHistorySeed is the demo org without its historic logins.
func emptyHistorySeed() *Seed {
	seed := DefaultSeed()
	seed.LoginHistory = nil
	return seed
}

func jwtAssertion(t *testing.T, s *Server, clientID, username string) string {
	t.Helper()
	key, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(DemoPrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": clientID, "sub": username,
		"aud": "https://login.salesforce.com", "exp": time.Now().Add(2 * time.Minute).Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// Every login the emulator serves leaves a row with Salesforce's labels.
func TestLoginHistoryRecordsEveryFlow(t *testing.T) {
	s := NewTestServer(t, emptyHistorySeed())
	callOptions := `<urn:CallOptions><urn:client>acme-etl/2.3</urn:client></urn:CallOptions>`
	login := `<urn:login><urn:username>` + integUser + `</urn:username><urn:password>` + integPass + integTok + `</urn:password></urn:login>`
	post(t, s.LoginURL()+"/services/Soap/u/58.0", "text/xml", envelope(callOptions, login))
	soapLogin(t, s, "64.0", integUser, "wrong")
	soapLogin(t, s, "30.0", integUser, integPass+integTok) // retired version
	soapLogin(t, s, "65.0", integUser, integPass+integTok) // login() gone from v65.0
	mustPasswordGrant(t, s, integUser, integPass+integTok)
	tokenRequest(t, s.MyDomainURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}})
	tokenRequest(t, s.LoginURL(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {jwtAssertion(t, s, DemoClientID, integUser)}})
	rt := s.IssueRefreshToken(DemoClientID, integUser)
	tokenRequest(t, s.LoginURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}})
	s.SetOrg(func(o *Org) { o.BlockUsernamePasswordFlow = true })
	tokenRequest(t, s.LoginURL(), passwordForm(integUser, integPass+integTok))

	type want struct{ flow, loginType, subType, apiType, apiVersion, app, host, status string }
	wants := []want{
		{FlowSOAP, "Other Apex API", "SoapApiLogin", "SOAP Partner", "58.0", "acme-etl/2.3", "127.0.0.1", "Success"},
		{FlowSOAP, "Other Apex API", "SoapApiLogin", "SOAP Partner", "64.0", "N/A", "127.0.0.1", "Invalid Password"},
		{FlowSOAP, "Other Apex API", "SoapApiLogin", "SOAP Partner", "30.0", "N/A", "127.0.0.1", "Failed: API Version Removed"},
		{FlowSOAP, "Other Apex API", "SoapApiLogin", "SOAP Partner", "65.0", "N/A", "127.0.0.1", "Failed: API Version Removed"},
		{FlowOAuthPassword, "Remote Access 2.0", "OauthUsernamePassword", "N/A", "N/A", "Vault", "127.0.0.1", "Success"},
		{FlowClientCredentials, "Remote Access 2.0", "OauthClientCredentials", "N/A", "N/A", "Vault", "localhost", "Success"},
		{FlowJWTBearer, "Remote Access 2.0", "", "N/A", "N/A", "Vault", "127.0.0.1", "Success"},
		{FlowRefreshToken, "Remote Access 2.0", "OauthRefreshToken", "N/A", "N/A", "Vault", "127.0.0.1", "Success"},
		{FlowOAuthPassword, "Remote Access 2.0", "OauthUsernamePassword", "N/A", "N/A", "Vault", "127.0.0.1", "Username-Password Flow Disabled"},
	}
	rows := s.LoginHistory("")
	if len(rows) != len(wants) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(wants), rows)
	}
	for i, w := range wants {
		a := rows[i]
		got := want{a.Flow, a.LoginType, a.LoginSubType, a.APIType, a.APIVersion, a.Application, a.LoginURL, a.Status}
		if got != w {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got, w)
		}
		user := integUser
		if a.Flow == FlowClientCredentials {
			user = adminUser // the run-as user
		}
		if a.Username != user || a.UserID != s.UserID(user) || a.SourceIP != "127.0.0.1" || !validID(a.ID, "0Ya") ||
			a.Browser != "Unknown" || a.Platform != "Unknown" || a.ClientVersion != "N/A" || a.TLSProtocol != "Unknown" {
			t.Errorf("row %d: %+v", i, a)
		}
	}
}

func TestLoginHistorySOQL(t *testing.T) {
	s := NewTestServer(t, emptyHistorySeed())
	clock := newFakeClock(s)
	if _, err := s.AddLoginHistory(
		SeedLogin{Username: integUser, Ago: "40d", Flow: "soap", APIVersion: "58.0"},
		SeedLogin{Username: integUser, Ago: "10d", Flow: "soap", APIVersion: "64.0"},
		SeedLogin{Username: DemoInteg2Username, Ago: "3d", Flow: "oauth-password", Application: "Vault", Status: StatusInvalidPassword},
		SeedLogin{Username: integUser, Ago: "200d", Flow: "soap", APIVersion: "50.0"}, // beyond six months
	); err != nil {
		t.Fatal(err)
	}
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	res := mustQuery(t, s, admin, "SELECT Id, UserId, LoginTime, LoginType, LoginSubType, Status, Application, ApiType, ApiVersion, ClientVersion, Browser, Platform, SourceIp, LoginUrl "+
		"FROM LoginHistory WHERE LoginTime = LAST_N_DAYS:30 AND LoginType IN ('Other Apex API', 'Partner Product') ORDER BY LoginTime DESC")
	if res.TotalSize != 1 || res.Records[0]["ApiVersion"] != "64.0" || res.Records[0]["ApiType"] != "SOAP Partner" {
		t.Fatalf("last 30 days of SOAP logins: %+v", res.Records)
	}
	r := res.Records[0]
	if lt, _ := r["LoginTime"].(string); len(lt) != len("2026-05-01T10:00:00.000+0000") || !strings.HasSuffix(lt, "+0000") {
		t.Errorf("LoginTime %q", r["LoginTime"])
	}
	if r["UserId"] != s.UserID(integUser) || r["LoginSubType"] != "SoapApiLogin" || r["Status"] != "Success" {
		t.Errorf("record %+v", r)
	}
	res = mustQuery(t, s, admin, "SELECT UserId, LoginType, ApiVersion FROM LoginHistory WHERE UserId IN ('"+s.UserID(integUser)+"', '"+s.UserID(DemoInteg2Username)[:15]+"') ORDER BY LoginTime DESC LIMIT 2")
	if len(res.Records) != 2 || res.Records[0]["LoginType"] != "Remote Access 2.0" || res.Records[1]["ApiVersion"] != "64.0" {
		t.Errorf("by user: %+v", res.Records)
	}
	// Six months back at most: the 200-day-old row is gone, the 40-day one
	// is there.
	res = mustQuery(t, s, admin, "SELECT ApiVersion FROM LoginHistory WHERE UserId = '"+s.UserID(integUser)+"' ORDER BY LoginTime")
	if len(res.Records) != 2 || res.Records[0]["ApiVersion"] != "58.0" {
		t.Errorf("retention: %+v", res.Records)
	}
	since := clock.Now().Add(-11 * 24 * time.Hour).UTC().Format("2006-01-02T15:04:05Z")
	res = mustQuery(t, s, admin, "SELECT Id FROM LoginHistory WHERE LoginTime >= "+since+" AND LoginTime <= "+clock.Now().Add(time.Second).UTC().Format("2006-01-02T15:04:05Z"))
	if res.TotalSize != 3 { // two seeded rows and the admin's login just now
		t.Errorf(">= %s: %d rows", since, res.TotalSize)
	}
	// Only the documented fields may be filtered on.
	for _, f := range []string{"Status", "ApiType", "Application", "SourceIp", "ApiVersion", "Browser"} {
		status, body := queryAs(t, s, admin, "SELECT Id FROM LoginHistory WHERE "+f+" = 'x'")
		var errs []restError
		_ = json.Unmarshal([]byte(body), &errs)
		if status != 400 || len(errs) != 1 || errs[0].ErrorCode != "INVALID_FIELD" ||
			!strings.HasSuffix(errs[0].Message, "field '"+f+"' can not be filtered in query call") {
			t.Errorf("WHERE %s: %d %s", f, status, body)
		}
	}
	for _, cond := range []string{"LoginUrl = 'login.salesforce.com'", "TlsProtocol = 'TLS 1.3'", "Id != null", "OptionsIsPost = true"} {
		if status, body := queryAs(t, s, admin, "SELECT Id FROM LoginHistory WHERE "+cond); status != 200 {
			t.Errorf("WHERE %s: %d %s", cond, status, body)
		}
	}
	// Status can be selected and sorted.
	if status, body := queryAs(t, s, admin, "SELECT Status FROM LoginHistory ORDER BY Status"); status != 200 {
		t.Errorf("ORDER BY Status: %d %s", status, body)
	}
	// A user without Manage Users or Monitor Login History sees only their
	// own rows (API 37.0+).
	integ := mustPasswordGrant(t, s, integUser, integPass+integTok)
	res = mustQuery(t, s, integ, "SELECT UserId FROM LoginHistory")
	if res.TotalSize != 3 {
		t.Errorf("own rows: %d", res.TotalSize)
	}
	for _, rec := range res.Records {
		if rec["UserId"] != s.UserID(integUser) {
			t.Errorf("integration user sees %v", rec["UserId"])
		}
	}
}

func TestLoginHistorySeedAndControl(t *testing.T) {
	s := NewTestServer(t, nil)
	// The demo org starts with a month of logins.
	var soap, failed []string
	for _, a := range s.LoginHistory("") {
		if a.APIType == "SOAP Partner" {
			soap = append(soap, a.Username+"@"+a.APIVersion)
		}
		if a.Status != StatusSuccess {
			failed = append(failed, a.Username+" "+a.Status+" from "+a.SourceIP)
		}
	}
	if strings.Join(soap, ",") != integUser+"@58.0,"+integUser+"@64.0,"+DemoInteg2Username+"@64.0" ||
		strings.Join(failed, ",") != integUser+" Invalid Password from 192.0.2.44" {
		t.Errorf("demo history: soap %v failed %v", soap, failed)
	}
	before := len(s.LoginHistory(""))
	base := s.LoginURL() + ControlPrefix + "login-history"
	twentyDaysAgo := time.Now().Add(-20 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"username":"integration2@acme.demo","ago":"1d","flow":"soap","apiVersion":"62.0"}`, 201, `"ids":["0Ya`},
		{`[{"username":"integration2@acme.demo","loginTime":"` + twentyDaysAgo + `","loginType":"Application","status":"Invalid Password"},
		   {"username":"admin@acme.demo","flow":"oauth-jwt","application":"Vault"}]`, 201, `"ids":["0Ya`},
		{`[{"username":"admin@acme.demo","flow":"oauth-jwt"},{"username":"nobody@acme.demo","flow":"soap"}]`, 400, `unknown user \"nobody@acme.demo\"`},
		{`{"username":"admin@acme.demo","flow":"telepathy"}`, 400, "unknown flow"},
		{`{"username":"admin@acme.demo","flow":"soap","ago":"1d","loginTime":"2026-01-02T03:04:05Z"}`, 400, "not both"},
		{`{"username":"admin@acme.demo","flow":"soap","ago":"yesterday"}`, 400, "ago"},
		{`{"username":"admin@acme.demo"}`, 400, "needs a flow or a loginType"},
		{`{"username":"admin@acme.demo","flow":"soap","password":"x"}`, 400, "expected a Login History row"},
		{`[]`, 400, "expected a Login History row"},
	} {
		status, body := controlDo(t, "POST", base, "application/json", tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s: %d %s", tc.body, status, body)
		}
	}
	if n := len(s.LoginHistory("")); n != before+3 {
		t.Errorf("%d rows added, want 3 (a refused batch adds none)", n-before)
	}
	status, body := controlDo(t, "GET", base+"?username="+DemoInteg2Username, "", "")
	var rows []LoginAttempt
	if err := json.Unmarshal([]byte(body), &rows); err != nil || status != 200 || len(rows) != 3 {
		t.Fatalf("GET: %d %s", status, body)
	}
	if rows[0].LoginType != "Application" || rows[0].Status != "Invalid Password" || rows[0].APIType != "N/A" ||
		rows[1].LoginType != "Other Apex API" || rows[2].APIVersion != "62.0" || rows[2].LoginURL != "login.salesforce.com" {
		t.Errorf("rows oldest first: %+v", rows)
	}
	if status, _ := controlDo(t, "GET", base+"?username=nobody@acme.demo", "", ""); status != 404 {
		t.Errorf("unknown user: %d", status)
	}
}

func TestParseAgo(t *testing.T) {
	for in, want := range map[string]time.Duration{"3d": 72 * time.Hour, "36h": 36 * time.Hour, "2d4h30m": 52*time.Hour + 30*time.Minute, "0d": 0} {
		if got, err := parseAgo(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "d", "-3h", "3 days", "1w"} {
		if _, err := parseAgo(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
