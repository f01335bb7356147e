package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestRESTVersionsNeedNoAuth(t *testing.T) {
	s := NewTestServer(t, nil)
	resp, body := restDo(t, "GET", s.MyDomainURL()+"/services/data/", "", "")
	var versions []map[string]string
	if err := json.Unmarshal([]byte(body), &versions); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	found := false
	for _, v := range versions {
		if v["version"] == "66.0" && v["url"] == "/services/data/v66.0" && v["label"] == "Spring '26" {
			found = true
		}
		if v["version"] == "31.0" && v["label"] != "Summer '14" {
			t.Errorf("v31.0 label %q", v["label"])
		}
	}
	if !found {
		t.Errorf("66.0 (Spring '26) missing: %s", body)
	}
}

func TestRESTUnknownSessionIs401(t *testing.T) {
	s := NewTestServer(t, nil)
	for _, tok := range []string{"", "00Dnothing!here"} {
		resp, body := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/limits", tok, "")
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Token" || body != `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`+"\n" {
			t.Errorf("token %q: %d %q", tok, resp.StatusCode, body)
		}
	}
}

func TestRESTAcceptsOAuthScheme(t *testing.T) {
	s := NewTestServer(t, nil)
	sid := mustSOAPLogin(t, s, adminUser, adminPass+adminTok) // SOAP sessions work on REST too
	req, _ := http.NewRequest("GET", s.MyDomainURL()+"/services/data/v66.0/limits", nil)
	req.Header.Set("Authorization", "OAuth "+sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %d", err, resp.StatusCode)
	}
	defer resp.Body.Close()
	var limits map[string]map[string]int
	_ = json.NewDecoder(resp.Body).Decode(&limits)
	if limits["DailyApiRequests"]["Max"] != 15000 || limits["DailyApiRequests"]["Remaining"] >= 15000 {
		t.Errorf("limits %v", limits["DailyApiRequests"])
	}
	if !strings.HasPrefix(resp.Header.Get("Sforce-Limit-Info"), "api-usage=") {
		t.Errorf("Sforce-Limit-Info = %q", resp.Header.Get("Sforce-Limit-Info"))
	}
}

func TestRESTQueryUserByUsername(t *testing.T) {
	s := NewTestServer(t, nil)
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	q := "SELECT Id, Username, Email, IsActive FROM User WHERE Username = '" + integUser + "'"
	resp, body := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/query?q="+url.QueryEscape(q), tok, "")
	// Salesforce's key order: totalSize, done, records.
	want := `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"User","url":"/services/data/v66.0/sobjects/User/` + s.UserID(integUser) +
		`"},"Id":"` + s.UserID(integUser) + `","Username":"integration@acme.demo","Email":"integration@acme.demo","IsActive":true}]}` + "\n"
	if resp.StatusCode != 200 || body != want {
		t.Fatalf("%d\n got %s\nwant %s", resp.StatusCode, body, want)
	}
	s.SetUserState(integUser, func(u *User) { u.IsActive = false })
	_, body = restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/query?q="+url.QueryEscape(q), tok, "")
	if !strings.Contains(body, `"IsActive":false`) {
		t.Errorf("inactive user: %s", body)
	}
	q = "SELECT Id FROM User WHERE Username = 'nobody@acme.demo'"
	_, body = restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/query?q="+url.QueryEscape(q), tok, "")
	if body != `{"totalSize":0,"done":true,"records":[]}`+"\n" {
		t.Errorf("no match: %s", body)
	}
}

func TestRESTQueryOtherObjects(t *testing.T) {
	s := NewTestServer(t, nil)
	tok := mustPasswordGrant(t, s, integUser, integPass+integTok)
	query := func(q string) (int, string) {
		resp, body := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/query?q="+url.QueryEscape(q), tok, "")
		return resp.StatusCode, body
	}
	if status, body := query("SELECT Id FROM Account LIMIT 1"); status != 200 || !strings.Contains(body, `"totalSize":1`) || !strings.Contains(body, `"type":"Account"`) {
		t.Errorf("Account: %d %s", status, body)
	}
	if status, body := query("SELECT Id FROM User LIMIT 2"); status != 200 || !strings.Contains(body, `"totalSize":2`) {
		t.Errorf("User LIMIT 2: %d %s", status, body)
	}
	if status, body := query("SELECT Id FROM Widget__c"); status != 400 || restErrorCode(t, body) != "INVALID_TYPE" {
		t.Errorf("unknown object: %d %s", status, body)
	}
	if status, body := query("SELECT Id, Shoe FROM User"); status != 400 || restErrorCode(t, body) != "INVALID_FIELD" {
		t.Errorf("unknown field: %d %s", status, body)
	}
	if status, body := query("DELETE everything"); status != 400 || restErrorCode(t, body) != "MALFORMED_QUERY" {
		t.Errorf("malformed: %d %s", status, body)
	}
}

func TestRESTPasswordResource(t *testing.T) {
	s := NewTestServer(t, nil)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	integ := mustPasswordGrant(t, s, integUser, integPass+integTok)
	resp, body := restDo(t, "GET", restPasswordURL(s, s.UserID(integUser)), admin, "")
	if resp.StatusCode != 200 || body != `{"isExpired":false}`+"\n" {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}
	s.SetUserState(integUser, func(u *User) { u.PasswordExpired = true })
	if _, body := restDo(t, "GET", restPasswordURL(s, s.UserID(integUser)[:15]), admin, ""); body != `{"isExpired":true}`+"\n" {
		t.Fatalf("GET (15-char id) after expiry: %s", body)
	}
	// Without permission: 403 INSUFFICIENT_ACCESS.
	resp, body = restDo(t, "POST", restPasswordURL(s, s.UserID(adminUser)), integ, `{"NewPassword":"Hijack-Pass-1"}`)
	if resp.StatusCode != 403 || body != `[{"message":"You do not have permission to view this record.","errorCode":"INSUFFICIENT_ACCESS"}]`+"\n" {
		t.Fatalf("POST without permission: %d %s", resp.StatusCode, body)
	}
	if resp, _ := restDo(t, "DELETE", restPasswordURL(s, s.UserID(adminUser)), integ, ""); resp.StatusCode != 403 {
		t.Fatalf("DELETE without permission: %d", resp.StatusCode)
	}
	if resp, body := restDo(t, "POST", restPasswordURL(s, "005000000000000AAA"), admin, `{"NewPassword":"Whatever-Pass-1"}`); resp.StatusCode != 404 || restErrorCode(t, body) != "NOT_FOUND" {
		t.Fatalf("unknown user: %d %s", resp.StatusCode, body)
	}
	if s.Password(adminUser) != adminPass {
		t.Fatal("admin password changed")
	}
}

func TestRESTAPIDisabledProfile(t *testing.T) {
	s := NewTestServer(t, nil)
	tok := mustPasswordGrant(t, s, integUser, integPass+integTok)
	s.SetUserState(integUser, func(u *User) { u.Profile = "Standard User" })
	resp, body := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/limits", tok, "")
	if resp.StatusCode != 403 || restErrorCode(t, body) != "API_DISABLED_FOR_ORG" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
