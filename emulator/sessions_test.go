package emulator

import (
	"net/url"
	"strings"
	"testing"
)

func authSessionURL(s *Server, id string) string {
	return s.MyDomainURL() + "/services/data/v66.0/sobjects/AuthSession/" + id
}

func TestAuthSessionQueryAndFields(t *testing.T) {
	s := NewTestServer(t, nil)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	sid := mustSOAPLogin(t, s, integUser, integPass+integTok)
	mustPasswordGrant(t, s, integUser, integPass+integTok)

	// The caller's own session is current; the integration user's are not.
	res := mustQuery(t, s, admin, "SELECT Id, UsersId, IsCurrent FROM AuthSession WHERE IsCurrent = true")
	if len(res.Records) != 1 || res.Records[0]["UsersId"] != s.UserID(adminUser) {
		t.Fatalf("current: %+v", res.Records)
	}
	res = mustQuery(t, s, admin, "SELECT Id, UsersId, Users.Username, CreatedDate, LastModifiedDate, NumSecondsValid, SessionType, LoginType, "+
		"SessionSecurityLevel, SourceIp, UserType, ParentId, IsCurrent, LoginHistoryId, LogoutUrl "+
		"FROM AuthSession WHERE UsersId = '"+s.UserID(integUser)+"' AND IsCurrent = false ORDER BY CreatedDate, Id")
	if len(res.Records) != 2 {
		t.Fatalf("integration sessions: %+v", res.Records)
	}
	soapRow, oauthRow := res.Records[0], res.Records[1]
	if soapRow["SessionType"] == oauthRow["SessionType"] {
		soapRow, oauthRow = res.Records[1], res.Records[0] // same millisecond: order by Id
	}
	if soapRow["SessionType"] != "API" || soapRow["LoginType"] != "Other Apex API" ||
		oauthRow["SessionType"] != "Oauth2" || oauthRow["LoginType"] != "Remote Access 2.0" {
		t.Errorf("types: %+v / %+v", soapRow, oauthRow)
	}
	for _, r := range res.Records {
		id, _ := r["Id"].(string)
		if !validID(id, "0Ak") || r["ParentId"] != id || r["SourceIp"] != "127.0.0.1" || r["NumSecondsValid"] != float64(7200) ||
			r["SessionSecurityLevel"] != "STANDARD" || r["IsCurrent"] != false || r["LogoutUrl"] != nil ||
			r["Users"].(map[string]any)["Username"] != integUser {
			t.Errorf("row %+v", r)
		}
		// LoginHistoryId names the login that opened the session.
		lh := mustQuery(t, s, admin, "SELECT UserId, LoginType FROM LoginHistory WHERE Id = '"+r["LoginHistoryId"].(string)+"'")
		if len(lh.Records) != 1 || lh.Records[0]["LoginType"] != r["LoginType"] || lh.Records[0]["UserId"] != s.UserID(integUser) {
			t.Errorf("login history of %s: %+v", id, lh.Records)
		}
	}
	// The SOAP session id works as a Bearer token until its row is deleted.
	if resp, _ := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/limits", sid, ""); resp.StatusCode != 200 {
		t.Fatalf("SOAP session on REST: %d", resp.StatusCode)
	}
	// A user without Manage Users sees only their own sessions.
	integ := mustPasswordGrant(t, s, integUser, integPass+integTok)
	res = mustQuery(t, s, integ, "SELECT UsersId FROM AuthSession")
	if res.TotalSize != 3 {
		t.Errorf("own sessions: %d", res.TotalSize)
	}
	// IsCurrent exists from API 37.0.
	resp, body := restDo(t, "GET", s.MyDomainURL()+"/services/data/v36.0/query?q="+url.QueryEscape("SELECT Id FROM AuthSession WHERE IsCurrent = false"), admin, "")
	if resp.StatusCode != 400 || !strings.Contains(body, "No such column 'IsCurrent' on entity 'AuthSession'") {
		t.Errorf("v36.0: %d %s", resp.StatusCode, body)
	}
}

func TestAuthSessionDelete(t *testing.T) {
	s := NewTestServer(t, nil)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	integA := mustPasswordGrant(t, s, integUser, integPass+integTok)
	integB := mustSOAPLogin(t, s, integUser, integPass+integTok)
	ids := s.SessionIDs(integUser)
	if len(ids) != 2 {
		t.Fatalf("sessions %v", ids)
	}
	limits := s.MyDomainURL() + "/services/data/v66.0/limits"

	// GET retrieves the row.
	resp, body := restDo(t, "GET", authSessionURL(s, ids[0]), admin, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"attributes":{"type":"AuthSession","url":"/services/data/v66.0/sobjects/AuthSession/`+ids[0]+`"}`) {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}
	// Others' sessions need Manage Users.
	adminSession := s.SessionIDs(adminUser)[0]
	if resp, body := restDo(t, "DELETE", authSessionURL(s, adminSession), integA, ""); resp.StatusCode != 403 || restErrorCode(t, body) != "INSUFFICIENT_ACCESS" {
		t.Fatalf("integration deletes admin's session: %d %s", resp.StatusCode, body)
	}
	// An admin ends the integration user's first session (15-character id
	// too): its token is then refused like an expired one; the other
	// session lives on.
	if resp, body := restDo(t, "DELETE", authSessionURL(s, id15(ids[0])), admin, ""); resp.StatusCode != 204 || body != "" {
		t.Fatalf("DELETE: %d %q", resp.StatusCode, body)
	}
	dead, alive := integA, integB
	if s.IsTokenActive(integA) {
		dead, alive = integB, integA
	}
	if resp, body := restDo(t, "GET", limits, dead, ""); resp.StatusCode != 401 || restErrorCode(t, body) != "INVALID_SESSION_ID" {
		t.Errorf("ended session: %d %s", resp.StatusCode, body)
	}
	if resp, _ := restDo(t, "GET", limits, alive, ""); resp.StatusCode != 200 {
		t.Errorf("other session: %d", resp.StatusCode)
	}
	// Deleting again, or an unknown id, is 404.
	for _, id := range []string{ids[0], "0AkACnothere0000AA", "garbage"} {
		if resp, body := restDo(t, "DELETE", authSessionURL(s, id), admin, ""); resp.StatusCode != 404 || restErrorCode(t, body) != "NOT_FOUND" {
			t.Errorf("DELETE %s: %d %s", id, resp.StatusCode, body)
		}
	}
	// A user may end their own session, the current one included.
	if resp, _ := restDo(t, "DELETE", authSessionURL(s, ids[1]), alive, ""); resp.StatusCode != 204 {
		t.Errorf("own session: %d", resp.StatusCode)
	}
	if len(s.SessionIDs(integUser)) != 0 {
		t.Errorf("sessions left %v", s.SessionIDs(integUser))
	}
	// AuthSession cannot be changed; other sObjects are read-only here.
	if resp, _ := restDo(t, "PATCH", authSessionURL(s, adminSession), admin, `{"NumSecondsValid":1}`); resp.StatusCode != 405 {
		t.Errorf("PATCH: %d", resp.StatusCode)
	}
}

func TestOauthTokenQueryAndDeleteToken(t *testing.T) {
	s := NewTestServer(t, nil)
	integRT := s.IssueRefreshToken(DemoClientID, integUser)
	s.IssueRefreshToken(DemoClientID, adminUser)
	refresh := func(rt string) (int, map[string]any) {
		return tokenRequest(t, s.LoginURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
			"client_id": {DemoClientID}, "client_secret": {DemoClientSecret}})
	}
	status, out := refresh(integRT)
	if status != 200 {
		t.Fatalf("refresh: %d %v", status, out)
	}
	minted := out["access_token"].(string)

	integ := mustPasswordGrant(t, s, integUser, integPass+integTok)
	res := mustQuery(t, s, integ, "SELECT Id, UserId, AppName, UseCount, LastUsedDate, DeleteToken, AccessToken FROM OauthToken")
	if len(res.Records) != 1 {
		t.Fatalf("own tokens: %+v", res.Records)
	}
	r := res.Records[0]
	if r["Id"] != nil || r["UserId"] != s.UserID(integUser) || r["AppName"] != "Vault" || r["UseCount"] != float64(1) ||
		r["LastUsedDate"] == nil || r["DeleteToken"] == "" || strings.Contains(r["AccessToken"].(string), integRT[16:]) {
		t.Errorf("row %+v", r)
	}
	if _, ok := r["attributes"].(map[string]any)["url"]; ok {
		t.Errorf("OauthToken rows have no url: %v", r["attributes"])
	}
	// Customize Application sees everyone's tokens.
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	if res := mustQuery(t, s, admin, "SELECT COUNT() FROM OauthToken"); res.TotalSize != 2 {
		t.Errorf("all tokens: %d", res.TotalSize)
	}
	// DeleteToken revokes the grant and the access tokens it minted.
	if status, body := post(t, s.LoginURL()+"/services/oauth2/revoke", "application/x-www-form-urlencoded",
		url.Values{"token": {r["DeleteToken"].(string)}}.Encode()); status != 200 {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if s.IsTokenActive(integRT) || s.IsTokenActive(minted) {
		t.Error("the refresh token or its access token survived")
	}
	if status, out := refresh(integRT); status != 400 || out["error"] != "invalid_grant" {
		t.Errorf("refresh after revoke: %d %v", status, out)
	}
	if res := mustQuery(t, s, admin, "SELECT UserId FROM OauthToken"); len(res.Records) != 1 || res.Records[0]["UserId"] != s.UserID(adminUser) {
		t.Errorf("after revoke: %+v", res.Records)
	}
	if status, body := post(t, s.LoginURL()+"/services/oauth2/revoke", "application/x-www-form-urlencoded",
		url.Values{"token": {r["DeleteToken"].(string)}}.Encode()); status != 400 || !strings.Contains(body, "invalid_token") {
		t.Errorf("second revoke: %d %s", status, body)
	}
}

func TestRetrieveSObjects(t *testing.T) {
	s := NewTestServer(t, nil)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	rows := s.LoginHistory(adminUser)
	last := rows[len(rows)-1]
	resp, body := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/sobjects/LoginHistory/"+last.ID, admin, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"LoginSubType":"OauthUsernamePassword"`) || !strings.Contains(body, `"ForwardedForIp":null`) {
		t.Errorf("LoginHistory: %d %s", resp.StatusCode, body)
	}
	resp, body = restDo(t, "GET", s.MyDomainURL()+"/services/data/v60.0/sobjects/LoginHistory/"+last.ID, admin, "")
	if resp.StatusCode != 200 || strings.Contains(body, "ForwardedForIp") {
		t.Errorf("v60.0 has no ForwardedForIp: %s", body)
	}
	for _, p := range []string{"LoginHistory/0YaACnothere0000AA", "Widget__c/a00000000000001", "OauthToken/x"} {
		if resp, _ := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/sobjects/"+p, admin, ""); resp.StatusCode != 404 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := restDo(t, "DELETE", s.MyDomainURL()+"/services/data/v66.0/sobjects/LoginHistory/"+last.ID, admin, ""); resp.StatusCode != 405 {
		t.Errorf("DELETE LoginHistory: %d", resp.StatusCode)
	}
}
