package emulator

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// accessOf is what a dual-account check compares: the profile and the
// non-profile permission sets and groups of a user, read through SOQL.
func accessOf(t *testing.T, s *Server, tok, username string) string {
	t.Helper()
	user := mustQuery(t, s, tok, "SELECT Id, Profile.Name FROM User WHERE Username = '"+username+"'")
	if len(user.Records) != 1 {
		t.Fatalf("user %s: %+v", username, user)
	}
	profile := user.Records[0]["Profile"].(map[string]any)["Name"]
	psa := mustQuery(t, s, tok, "SELECT PermissionSet.Name, PermissionSetGroupId, PermissionSetGroup.DeveloperName FROM PermissionSetAssignment WHERE AssigneeId = '"+
		user.Records[0]["Id"].(string)+"' AND PermissionSet.IsOwnedByProfile = false")
	var parts []string
	for _, r := range psa.Records {
		if r["PermissionSetGroupId"] != nil {
			parts = append(parts, "group:"+r["PermissionSetGroup"].(map[string]any)["DeveloperName"].(string))
			continue
		}
		parts = append(parts, "set:"+r["PermissionSet"].(map[string]any)["Name"].(string))
	}
	sort.Strings(parts)
	return fmt.Sprintf("profile:%v %s", profile, strings.Join(parts, " "))
}

// The demo org's integration2 is interchangeable with integration;
// integration3 is not.
func TestPermissionSetAssignmentsCompareUsers(t *testing.T) {
	s := NewTestServer(t, nil)
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	a, b, c := accessOf(t, s, tok, DemoIntegUsername), accessOf(t, s, tok, DemoInteg2Username), accessOf(t, s, tok, DemoMismatchUsername)
	if a != "profile:Integration group:Integration_Suite set:Integration_Base" {
		t.Errorf("integration: %s", a)
	}
	if a != b {
		t.Errorf("integration2 differs:\n%s\n%s", a, b)
	}
	if c == a || c != "profile:Integration set:Integration_Base set:Report_Builder" {
		t.Errorf("integration3: %s", c)
	}
	// Each user also holds the profile's own permission set.
	res := mustQuery(t, s, tok, "SELECT PermissionSetId, PermissionSet.Type, PermissionSet.ProfileId FROM PermissionSetAssignment WHERE AssigneeId = '"+
		s.UserID(integUser)+"' AND PermissionSet.IsOwnedByProfile = true")
	if len(res.Records) != 1 || res.Records[0]["PermissionSet"].(map[string]any)["ProfileId"] != "00e5g000000IntAAAS" ||
		res.Records[0]["PermissionSet"].(map[string]any)["Type"] != "Profile" {
		t.Errorf("profile-owned set: %+v", res.Records)
	}
	// Assignment ids are stable between queries.
	q := "SELECT Id FROM PermissionSetAssignment WHERE AssigneeId IN ('" + s.UserID(integUser) + "', '" + s.UserID(DemoInteg2Username) + "') ORDER BY Id"
	first, second := mustQuery(t, s, tok, q), mustQuery(t, s, tok, q)
	if len(first.Records) != 6 || fmt.Sprint(first.Records) != fmt.Sprint(second.Records) {
		t.Errorf("assignment ids: %v vs %v", first.Records, second.Records)
	}
	if !validID(first.Records[0]["Id"].(string), "0Pa") {
		t.Errorf("assignment id %v", first.Records[0]["Id"])
	}
	// A change shows at once.
	if err := s.AssignPermissionSet(DemoInteg2Username, "Report_Builder"); err != nil {
		t.Fatal(err)
	}
	if b := accessOf(t, s, tok, DemoInteg2Username); b == a || !strings.Contains(b, "set:Report_Builder") {
		t.Errorf("after assigning: %s", b)
	}
}

func TestPermissionSetRowsAndPermissionFields(t *testing.T) {
	s := NewTestServer(t, nil)
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	res := mustQuery(t, s, tok, "SELECT Name, Label, PermissionsViewClientSecret, PermissionsExternalClientAppDeveloper FROM PermissionSet WHERE PermissionsViewClientSecret = true")
	if len(res.Records) != 1 || res.Records[0]["Name"] != "ECA_Credential_Manager" || res.Records[0]["PermissionsExternalClientAppDeveloper"] != true {
		t.Errorf("%+v", res.Records)
	}
	res = mustQuery(t, s, tok, "SELECT Name FROM PermissionSet WHERE IsOwnedByProfile = true AND PermissionsManageUsers = true")
	if len(res.Records) != 1 || res.Records[0]["Name"] != "X00e5g000000SysAAAS" {
		t.Errorf("admin profile's set: %+v", res.Records)
	}
	res = mustQuery(t, s, tok, "SELECT Id, DeveloperName, MasterLabel, Status FROM PermissionSetGroup")
	if len(res.Records) != 1 || res.Records[0]["DeveloperName"] != "Integration_Suite" || res.Records[0]["Status"] != "Updated" {
		t.Errorf("groups: %+v", res.Records)
	}
	// The group's aggregate set carries its members' permissions.
	res = mustQuery(t, s, tok, "SELECT Type, PermissionSetGroupId FROM PermissionSet WHERE Name = 'Integration_Suite' AND PermissionsViewAllData = true")
	if len(res.Records) != 1 || res.Records[0]["Type"] != "Group" || res.Records[0]["PermissionSetGroupId"] != id18("0PG5g000000IntA") {
		t.Errorf("group set: %+v", res.Records)
	}
}

// Permissions granted by a permission set count like the profile's: Manage
// Users from a set lets a user reset another user's password.
func TestPermissionFromPermissionSetIsEnforced(t *testing.T) {
	seed := DefaultSeed()
	seed.Org.PermissionSets = append(seed.Org.PermissionSets, PermissionSet{Name: "Helpdesk", Permissions: []string{"ManageUsers"}})
	s := NewTestServer(t, seed)
	integ := mustPasswordGrant(t, s, integUser, integPass+integTok)
	if resp, _ := restDo(t, "DELETE", restPasswordURL(s, s.UserID(trustUser)), integ, ""); resp.StatusCode != 403 {
		t.Fatalf("without the set: %d", resp.StatusCode)
	}
	if status, body := controlDo(t, "PUT", s.LoginURL()+ControlPrefix+"users/"+integUser+"/permission-sets/helpdesk", "", ""); status != 200 ||
		!strings.Contains(body, `"permissionSets":["Integration_Base","Helpdesk"]`) {
		t.Fatalf("assign: %d %s", status, body)
	}
	if resp, _ := restDo(t, "DELETE", restPasswordURL(s, s.UserID(trustUser)), integ, ""); resp.StatusCode != 200 {
		t.Fatalf("with the set: %d", resp.StatusCode)
	}
}

func TestControlUsers(t *testing.T) {
	s := NewTestServer(t, nil)
	base := s.LoginURL() + ControlPrefix + "users/"
	status, body := controlDo(t, "GET", base+DemoInteg2Username, "", "")
	var info controlUserInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil || status != 200 || info.ID != s.UserID(DemoInteg2Username) ||
		info.Profile != "Integration" || !info.IsActive || fmt.Sprint(info.PermissionSetGroups) != "[Integration_Suite]" {
		t.Fatalf("GET: %d %s", status, body)
	}
	if strings.Contains(body, "Integ2-Pass") || strings.Contains(body, "INTEG2TOKEN") {
		t.Fatalf("user info shows a secret: %s", body)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"PATCH", DemoInteg2Username, `{"profile":"standard user"}`, 200, `"profile":"Standard User"`},
		{"PATCH", DemoInteg2Username, `{"isActive":false}`, 200, `"isActive":false`},
		{"PATCH", DemoInteg2Username, `{"profile":"Nope"}`, 400, "no such profile"},
		{"PATCH", DemoInteg2Username, `{"password":"x"}`, 400, "unknown field"},
		{"PATCH", "nobody@acme.demo", `{"isActive":true}`, 404, "no such user"},
		{"DELETE", DemoInteg2Username + "/permission-sets/Integration_Suite", "", 200, `"permissionSetGroups":[]`},
		{"DELETE", DemoInteg2Username + "/permission-sets/Integration_Suite", "", 404, "not assigned"},
		{"PUT", DemoInteg2Username + "/permission-sets/Nope", "", 404, "no such permission set"},
		{"PUT", DemoInteg2Username + "/permission-sets/integration_suite", "", 200, `"permissionSetGroups":["Integration_Suite"]`},
		{"POST", DemoInteg2Username + "/permission-sets/Report_Builder", "", 405, "method not allowed"},
	} {
		status, body := controlDo(t, tc.method, base+tc.path, "application/json", tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %s: %d %s", tc.method, tc.path, tc.body, status, body)
		}
	}
	// The inactive user cannot log in; the profile change shows in SOQL.
	if status, _ := tokenRequest(t, s.LoginURL(), passwordForm(DemoInteg2Username, "Integ2-Pass-1234INTEG2TOKEN000000000000000")); status != 400 {
		t.Errorf("inactive user logged in")
	}
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	if got := accessOf(t, s, tok, DemoInteg2Username); got != "profile:Standard User group:Integration_Suite set:Integration_Base" {
		t.Errorf("after control changes: %s", got)
	}
}

func TestSeedValidatesPermissionSets(t *testing.T) {
	seed := DefaultSeed()
	seed.Users[1].PermissionSets = []string{"Missing_Set"}
	seed.Org.PermissionSetGroups[0].PermissionSets = []string{"Missing_Member"}
	seed.Org.PermissionSets[0].Permissions = []string{"not a name"}
	_, err := New(seed)
	for _, want := range []string{`unknown permission set "Missing_Set"`, `unknown permission set "Missing_Member"`, `invalid permission name "not a name"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}
