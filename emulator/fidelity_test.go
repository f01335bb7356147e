package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	gosf "github.com/k-capehart/go-salesforce/v3"
	"github.com/simpleforce/simpleforce"
)

// An unmodified third-party client (github.com/k-capehart/go-salesforce/v3)
// must be able to log in to the emulator and query, as it does against a
// real org. It appends the security token to the password itself.

type fidelityUser struct {
	Id       string
	Username string
	Email    string
	IsActive bool
}

func TestFidelityGoSalesforceUsernamePassword(t *testing.T) {
	s := NewTestServer(t, nil)
	sf, err := gosf.Init(gosf.Creds{
		Domain:         s.LoginURL(),
		Username:       adminUser,
		Password:       adminPass,
		SecurityToken:  adminTok,
		ConsumerKey:    DemoClientID,
		ConsumerSecret: DemoClientSecret,
	})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if sf.AuthFlow != gosf.AuthFlowUsernamePassword {
		t.Fatalf("flow %v", sf.AuthFlow)
	}
	var users []fidelityUser
	if err := sf.Query("SELECT Id, Username, Email, IsActive FROM User WHERE Username = '"+integUser+"'", &users); err != nil {
		t.Fatalf("query: %v", err)
	}
	if len(users) != 1 || users[0].Id != s.UserID(integUser) || users[0].Username != integUser || !users[0].IsActive {
		t.Fatalf("users = %+v", users)
	}
	var accounts []struct{ Id string }
	if err := sf.Query("SELECT Id FROM Account LIMIT 1", &accounts); err != nil || len(accounts) != 1 {
		t.Fatalf("accounts %v: %v", accounts, err)
	}
	if s.Calls("oauth.token") != 1 || s.Calls("rest.query") != 2 {
		t.Errorf("calls: token=%d query=%d", s.Calls("oauth.token"), s.Calls("rest.query"))
	}
	// A wrong token is refused as a real org would.
	if _, err := gosf.Init(gosf.Creds{Domain: s.LoginURL(), Username: adminUser, Password: adminPass,
		SecurityToken: "WRONG", ConsumerKey: DemoClientID, ConsumerSecret: DemoClientSecret}); err == nil {
		t.Fatal("wrong security token accepted")
	}
}

func TestFidelityGoSalesforceClientCredentials(t *testing.T) {
	s := NewTestServer(t, nil)
	// The library posts to Domain: only the My Domain host serves the flow.
	if _, err := gosf.Init(gosf.Creds{Domain: s.LoginURL(), ConsumerKey: DemoClientID, ConsumerSecret: DemoClientSecret}); err == nil {
		t.Fatal("client credentials accepted on the login host")
	}
	sf, err := gosf.Init(gosf.Creds{Domain: s.MyDomainURL(), ConsumerKey: DemoClientID, ConsumerSecret: DemoClientSecret})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	var users []fidelityUser
	if err := sf.Query("SELECT Id, Username FROM User WHERE Username = '"+adminUser+"'", &users); err != nil || len(users) != 1 {
		t.Fatalf("query %v: %v", users, err)
	}
}

func TestFidelityGoSalesforceJWT(t *testing.T) {
	s := NewTestServer(t, nil)
	creds := gosf.Creds{Domain: s.LoginURL(), Username: integUser, ConsumerKey: DemoClientID, ConsumerRSAPem: DemoPrivateKeyPEM}
	// go-salesforce sends exp = now + 5 minutes (as a string), beyond the
	// documented 3 minutes the emulator enforces by default.
	if _, err := gosf.Init(creds); err == nil {
		t.Fatal("a 5-minute assertion was accepted under the 3-minute rule")
	}
	if s.Calls("oauth.token") != 1 {
		t.Fatalf("token calls = %d", s.Calls("oauth.token"))
	}
	s.SetOrg(func(o *Org) { o.JWTMaxLifetimeSeconds = 300 })
	sf, err := gosf.Init(creds)
	if err != nil {
		t.Fatalf("login with a 5-minute allowance: %v", err)
	}
	var accounts []struct{ Id string }
	if err := sf.Query("SELECT Id FROM Account LIMIT 1", &accounts); err != nil || len(accounts) != 1 {
		t.Fatalf("accounts %v: %v", accounts, err)
	}
}

// github.com/simpleforce/simpleforce logs in through SOAP login() (with a
// CallOptions header and SOAPAction: login), takes the instance from
// serverUrl and queries over REST with the session id.
func TestFidelitySimpleforceSOAPLogin(t *testing.T) {
	s := NewTestServer(t, nil)
	client := simpleforce.NewClient(s.LoginURL(), "vault-emulator-test", "54.0")
	if err := client.LoginPassword(adminUser, adminPass, adminTok); err != nil {
		t.Fatalf("login: %v", err)
	}
	if client.GetLoc() != s.MyDomainURL() {
		t.Errorf("instance %q, want the My Domain URL", client.GetLoc())
	}
	res, err := client.Query("SELECT Id, Username FROM User WHERE Username = '" + integUser + "'")
	if err != nil || res.TotalSize != 1 || res.Records[0].StringField("Username") != integUser {
		t.Fatalf("query: %v %+v", err, res)
	}
	// Faults reach it as Salesforce errors with the sf: code.
	bad := simpleforce.NewClient(s.LoginURL(), "vault-emulator-test", "54.0")
	err = bad.LoginPassword(adminUser, adminPass, "WRONG")
	var sfErr simpleforce.SalesforceError
	if !errors.As(err, &sfErr) || sfErr.ErrorCode != "sf:INVALID_LOGIN" || sfErr.HttpCode != 500 {
		t.Fatalf("wrong token: %#v", err)
	}
	if s.Calls("soap.login") != 2 || s.Calls("rest.query") != 1 {
		t.Errorf("calls: login=%d query=%d", s.Calls("soap.login"), s.Calls("rest.query"))
	}
}

// go-salesforce follows nextRecordsUrl until done: the emulator's query
// locators must look like Salesforce's for it to collect every page.
func TestFidelityGoSalesforceQueryPages(t *testing.T) {
	s := NewTestServer(t, widgetSeed(2300))
	sf, err := gosf.Init(gosf.Creds{Domain: s.MyDomainURL(), ConsumerKey: DemoClientID, ConsumerSecret: DemoClientSecret})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	var widgets []struct {
		Id   string
		Name string
		Size float64
	}
	if err := sf.Query("SELECT Id, Name, Size FROM Widget__c WHERE Size > 100 ORDER BY Size DESC", &widgets); err != nil {
		t.Fatalf("query: %v", err)
	}
	if len(widgets) != 2200 || widgets[0].Name != "W2300" || widgets[2199].Size != 101 {
		t.Fatalf("%d widgets, first %+v", len(widgets), widgets[0])
	}
	if s.Calls("rest.query") != 1 || s.Calls("rest.queryMore") != 1 {
		t.Errorf("calls: query=%d queryMore=%d", s.Calls("rest.query"), s.Calls("rest.queryMore"))
	}
}

// go-salesforce decodes relationship fields (PermissionSet.Name) into
// nested structs, as a dual-account check would read them.
func TestFidelityGoSalesforcePermissionSetAssignments(t *testing.T) {
	s := NewTestServer(t, nil)
	sf, err := gosf.Init(gosf.Creds{Domain: s.MyDomainURL(), ConsumerKey: DemoClientID, ConsumerSecret: DemoClientSecret})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	type assignment struct {
		AssigneeId           string
		PermissionSetGroupId string
		PermissionSet        struct {
			Name             string
			IsOwnedByProfile bool
		}
		Assignee struct{ Username string }
	}
	var got []assignment
	q := "SELECT AssigneeId, PermissionSetGroupId, PermissionSet.Name, PermissionSet.IsOwnedByProfile, Assignee.Username FROM PermissionSetAssignment " +
		"WHERE Assignee.Username IN ('" + DemoInteg2Username + "') ORDER BY PermissionSet.Name"
	if err := sf.Query(q, &got); err != nil {
		t.Fatalf("query: %v", err)
	}
	if len(got) != 3 || got[0].PermissionSet.Name != "Integration_Base" || got[0].PermissionSet.IsOwnedByProfile ||
		got[1].PermissionSet.Name != "Integration_Suite" || got[1].PermissionSetGroupId == "" ||
		!got[2].PermissionSet.IsOwnedByProfile || got[2].Assignee.Username != DemoInteg2Username || got[2].AssigneeId != s.UserID(DemoInteg2Username) {
		t.Fatalf("%+v", got)
	}
	var users []struct {
		Username string
		Profile  struct{ Name string }
	}
	if err := sf.Query("SELECT Username, Profile.Name FROM User WHERE Username = '"+DemoMismatchUsername+"'", &users); err != nil ||
		len(users) != 1 || users[0].Profile.Name != "Integration" {
		t.Fatalf("users %+v: %v", users, err)
	}
}

// A login-method report reads LoginHistory through a real client: the
// labels, LAST_N_DAYS, ORDER BY and the pages past 2000 rows.
func TestFidelityGoSalesforceLoginHistory(t *testing.T) {
	s := NewTestServer(t, nil)
	var rows []SeedLogin
	for i := 0; i < 2100; i++ {
		rows = append(rows, SeedLogin{Username: DemoInteg2Username, Ago: fmt.Sprintf("%dm", 10+i), Flow: "oauth-password", Application: "Vault"})
	}
	if _, err := s.AddLoginHistory(rows...); err != nil {
		t.Fatal(err)
	}
	simple := simpleforce.NewClient(s.LoginURL(), "acme-etl", "58.0")
	if err := simple.LoginPassword(integUser, integPass, integTok); err != nil {
		t.Fatalf("SOAP login: %v", err)
	}
	sf, err := gosf.Init(gosf.Creds{Domain: s.LoginURL(), Username: adminUser, Password: adminPass, SecurityToken: adminTok,
		ConsumerKey: DemoClientID, ConsumerSecret: DemoClientSecret})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	type login struct {
		UserId, LoginTime, LoginType, LoginSubType, Status, Application, ApiType, ApiVersion, SourceIp string
	}
	var got []login
	if err := sf.Query("SELECT UserId, LoginTime, LoginType, LoginSubType, Status, Application, ApiType, ApiVersion, SourceIp FROM LoginHistory "+
		"WHERE LoginTime = LAST_N_DAYS:30 ORDER BY LoginTime DESC", &got); err != nil {
		t.Fatalf("query: %v", err)
	}
	// 2100 added, 6 in the demo org, and the two logins just made.
	if len(got) != 2108 {
		t.Fatalf("%d rows", len(got))
	}
	admin, soap := got[0], got[1]
	if admin.LoginType != "Remote Access 2.0" || admin.LoginSubType != "OauthUsernamePassword" || admin.UserId != s.UserID(adminUser) {
		t.Errorf("newest row %+v", admin)
	}
	if soap.LoginType != "Other Apex API" || soap.ApiType != "SOAP Partner" || soap.ApiVersion != "58.0" ||
		soap.Application != "acme-etl" || soap.SourceIp != "127.0.0.1" || soap.Status != "Success" {
		t.Errorf("SOAP row %+v", soap)
	}
	if s.Calls("rest.queryMore") != 1 {
		t.Errorf("queryMore calls %d", s.Calls("rest.queryMore"))
	}
}

// Ending a user's other sessions as SGNL's revoke-session action does,
// through go-salesforce: query AuthSession with IsCurrent = false, then
// delete each row.
func TestFidelityGoSalesforceEndSessions(t *testing.T) {
	s := NewTestServer(t, nil)
	old := mustSOAPLogin(t, s, integUser, integPass+integTok)
	sf, err := gosf.Init(gosf.Creds{Domain: s.MyDomainURL(), ConsumerKey: DemoClientID, ConsumerSecret: DemoClientSecret})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	var sessions []struct {
		Id      string
		UsersId string
	}
	if err := sf.Query("SELECT Id, UsersId FROM AuthSession WHERE UsersId = '"+s.UserID(integUser)+"' AND IsCurrent = false ORDER BY Id ASC", &sessions); err != nil {
		t.Fatalf("query: %v", err)
	}
	if len(sessions) != 1 {
		t.Fatalf("sessions %+v", sessions)
	}
	for _, se := range sessions {
		if err := sf.DeleteOne("AuthSession", se); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if s.IsTokenActive(old) || len(s.SessionIDs(integUser)) != 0 {
		t.Fatal("the session survived")
	}
	// The caller's own session (the run-as admin's) is untouched.
	var mine []struct{ Id string }
	if err := sf.Query("SELECT Id FROM AuthSession WHERE IsCurrent = true", &mine); err != nil || len(mine) != 1 {
		t.Fatalf("own session %+v: %v", mine, err)
	}
}

// The OAuth staged credentials flow through go-salesforce's DoRequest at
// v65.0, the way sfdx-hardis drives it (POST {} with JSON headers, PATCH
// rotate, DELETE the rotated set), with the ECA's old and new keys
// logging in through go-salesforce's client credentials flow.
func TestFidelityGoSalesforceStagedCredentials(t *testing.T) {
	s := NewTestServer(t, nil)
	sf, err := gosf.Init(gosf.Creds{Domain: s.MyDomainURL(), ConsumerKey: DemoClientID, ConsumerSecret: DemoClientSecret}, gosf.WithAPIVersion("v65.0"))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	call := func(method, uri, body string, out any) {
		t.Helper()
		resp, err := sf.DoRequest(method, strings.TrimPrefix(uri, "/services/data/v65.0"), []byte(body))
		if err != nil {
			t.Fatalf("%s %s: %v", method, uri, err)
		}
		defer resp.Body.Close()
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatalf("%s %s: %v", method, uri, err)
			}
		}
	}
	var usage struct {
		Apps []struct{ Identifier, DeveloperName string }
	}
	call("GET", "/apps/oauth/usage?page=0&pageSize=100", "", &usage)
	appID := ""
	for _, a := range usage.Apps {
		if a.DeveloperName == "Acme_ETL" {
			appID = a.Identifier
		}
	}
	var consumers struct {
		Consumers []struct{ ID, Key, StagedCredentialsURL string }
	}
	call("GET", "/apps/oauth/credentials/"+appID, "", &consumers)
	if len(consumers.Consumers) != 1 || consumers.Consumers[0].Key != DemoETLClientID {
		t.Fatalf("consumers %+v", consumers)
	}
	var staged struct {
		StagedCredentials []struct{ ID, Key, Secret, State, URL string }
	}
	call("POST", consumers.Consumers[0].StagedCredentialsURL, "{}", &staged)
	next := staged.StagedCredentials[0]
	call("PATCH", next.URL, `{"command":"rotate"}`, nil)

	login := func(key, secret string) error {
		_, err := gosf.Init(gosf.Creds{Domain: s.MyDomainURL(), ConsumerKey: key, ConsumerSecret: secret})
		return err
	}
	if err := login(next.Key, next.Secret); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if err := login(DemoETLClientID, DemoETLClientSecret); err != nil {
		t.Fatalf("old key during the overlap: %v", err)
	}
	call("GET", consumers.Consumers[0].StagedCredentialsURL, "", &staged)
	if staged.StagedCredentials[0].State != "Rotated" || staged.StagedCredentials[0].Key != DemoETLClientID {
		t.Fatalf("slot %+v", staged.StagedCredentials)
	}
	call("DELETE", staged.StagedCredentials[0].URL, "", nil)
	if err := login(DemoETLClientID, DemoETLClientSecret); err == nil {
		t.Fatal("old key works after DELETE")
	}
	// go-salesforce surfaces a Connect REST error array as an error.
	if _, err := sf.DoRequest("PATCH", strings.TrimPrefix(next.URL, "/services/data/v65.0"), []byte(`{"command":"rotate"}`)); err == nil {
		t.Fatal("rotating a deleted credential succeeded")
	}
}
