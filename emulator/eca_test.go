package emulator

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

const etlConsumerID = "8885g000000EtlAAAS"

func clientCredentialsLogin(t *testing.T, s *Server, key, secret string) (int, map[string]any) {
	t.Helper()
	return tokenRequest(t, s.MyDomainURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {key}, "client_secret": {secret}})
}

// connectDo calls a Connect REST resource at version v.
func connectDo(t *testing.T, s *Server, tok, method, v, path, body string) (int, string) {
	t.Helper()
	resp, b := restDo(t, method, s.MyDomainURL()+"/services/data/v"+v+path, tok, body)
	return resp.StatusCode, b
}

func etlPath(rest string) string {
	return "/apps/oauth/credentials/" + DemoETLAppID + "/" + etlConsumerID + rest
}

type stagedItem struct {
	ID, Key, Secret, State, CreatedBy, CreatedDate, ExpirationDate, URL, StagedCredentialsURL string
}

type stagedCollectionResp struct {
	StagedCredentials []stagedItem `json:"stagedCredentials"`
	URL               string       `json:"url"`
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// External Client Apps serve client credentials, JWT bearer and refresh
// tokens; the username-password flow is not offered.
func TestECAGrants(t *testing.T) {
	s := NewTestServer(t, emptyHistorySeed())
	if status, out := clientCredentialsLogin(t, s, DemoECAClientID, DemoECAClientSecret); status != 200 || !strings.HasSuffix(out["id"].(string), s.UserID(adminUser)) {
		t.Fatalf("client credentials: %d %v", status, out)
	}
	if status, out := tokenRequest(t, s.LoginURL(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion": {jwtAssertion(t, s, DemoECAClientID, integUser)}}); status != 200 {
		t.Fatalf("JWT: %d %v", status, out)
	}
	rt := s.IssueRefreshToken(DemoECAClientID, integUser)
	if status, out := tokenRequest(t, s.LoginURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {DemoECAClientID}, "client_secret": {DemoECAClientSecret}}); status != 200 {
		t.Fatalf("refresh: %d %v", status, out)
	}
	// The right password and token are refused through an ECA, as a
	// blocked flow is, and Login History says why.
	form := passwordForm(integUser, integPass+integTok)
	form.Set("client_id", DemoECAClientID)
	form.Set("client_secret", DemoECAClientSecret)
	if status, out := tokenRequest(t, s.LoginURL(), form); status != 400 || out["error"] != "invalid_grant" || out["error_description"] != "authentication failure" {
		t.Fatalf("password grant through an ECA: %d %v", status, out)
	}
	rows := s.LoginHistory(integUser)
	last := rows[len(rows)-1]
	if last.Status != StatusUsernamePasswordDisabled || last.Application != "Vault ECA" || last.LoginSubType != "OauthUsernamePassword" {
		t.Errorf("login history %+v", last)
	}
	// A wrong secret is still invalid_client.
	if status, out := clientCredentialsLogin(t, s, DemoECAClientID, "wrong"); status != 400 || out["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v", status, out)
	}
}

func TestConnectUsagePages(t *testing.T) {
	s := NewTestServer(t, nil)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	type usage struct {
		Apps []struct {
			Identifier, DeveloperName, Label string
		}
		CurrentPageURL string
		NextPageURL    *string
	}
	var all []string
	for page := 0; page < 3; page++ {
		status, body := connectDo(t, s, admin, "GET", "65.0", "/apps/oauth/usage?page="+string(rune('0'+page))+"&pageSize=2", "")
		if status != 200 {
			t.Fatalf("page %d: %d %s", page, status, body)
		}
		u := decode[usage](t, body)
		want := "/services/data/v65.0/apps/oauth/usage?page=" + string(rune('1'+page)) + "&pageSize=2"
		if u.NextPageURL == nil || *u.NextPageURL != want {
			t.Errorf("page %d nextPageUrl %v, want %s on every page", page, u.NextPageURL, want)
		}
		for _, a := range u.Apps {
			all = append(all, a.DeveloperName+"="+a.Identifier+"/"+a.Label)
		}
		if page == 2 && (u.Apps == nil || len(u.Apps) != 0) {
			t.Errorf("past the end: %s", body)
		}
	}
	want := "Vault_ECA=" + DemoECAID + "/Vault ECA,Acme_ETL=" + DemoETLAppID + "/Acme ETL,Analytics_Connector=0xI5g000000PkgAEAS/Analytics Connector"
	if strings.Join(all, ",") != want {
		t.Errorf("apps %v", all)
	}
	// Defaults: page 0, 100 per page; the connected app is not listed.
	if status, body := connectDo(t, s, admin, "GET", "59.0", "/apps/oauth/usage", ""); status != 200 || strings.Contains(body, "0H4") ||
		!strings.Contains(body, `"currentPageUrl":"/services/data/v59.0/apps/oauth/usage?page=0&pageSize=100"`) {
		t.Errorf("defaults: %d %s", status, body)
	}
	for _, q := range []string{"?page=-1", "?pageSize=0", "?pageSize=101", "?page=x"} {
		if status, body := connectDo(t, s, admin, "GET", "65.0", "/apps/oauth/usage"+q, ""); status != 400 || restErrorCode(t, body) != "ILLEGAL_QUERY_PARAMETER_VALUE" {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
	// Before v59.0 the resource does not exist.
	if status, body := connectDo(t, s, admin, "GET", "58.0", "/apps/oauth/usage", ""); status != 404 || restErrorCode(t, body) != "NOT_FOUND" {
		t.Errorf("v58.0: %d %s", status, body)
	}
	// Without an External Client App permission: 403.
	integ := mustPasswordGrant(t, s, integUser, integPass+integTok)
	if status, body := connectDo(t, s, integ, "GET", "65.0", "/apps/oauth/usage", ""); status != 403 || !strings.Contains(body, "not enabled for this user") {
		t.Errorf("integration user: %d %s", status, body)
	}
}

func TestConnectConsumersAndCredentials(t *testing.T) {
	s := NewTestServer(t, nil)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	status, body := connectDo(t, s, admin, "GET", "65.0", "/apps/oauth/credentials/"+DemoETLAppID, "")
	want := `{"consumers":[{"id":"` + etlConsumerID + `","key":"` + DemoETLClientID + `","name":"Acme ETL","url":"/services/data/v65.0` + etlPath("") +
		`","stagedCredentialsUrl":"/services/data/v65.0` + etlPath("/staged") + `"}],"currentPageUrl":"/services/data/v65.0/apps/oauth/credentials/` + DemoETLAppID + `","nextPageUrl":null}` + "\n"
	if status != 200 || body != want {
		t.Fatalf("consumers: %d\n got %s\nwant %s", status, body, want)
	}
	// stagedCredentialsUrl is a 65.0 property; 15-character ids work too.
	if status, body := connectDo(t, s, admin, "GET", "60.0", "/apps/oauth/credentials/"+DemoETLAppID[:15], ""); status != 200 || strings.Contains(body, "stagedCredentialsUrl") {
		t.Errorf("v60.0: %d %s", status, body)
	}
	for _, tc := range []struct {
		v, path, code string
		status        int
	}{
		{"59.0", "/apps/oauth/credentials/" + DemoETLAppID, "NOT_FOUND", 404},           // before 60.0
		{"65.0", "/apps/oauth/credentials/0H45g000000VltACAS", "INVALID_ID_FIELD", 400}, // a connected app
		{"65.0", "/apps/oauth/credentials/garbage", "INVALID_ID_FIELD", 400},
		{"65.0", "/apps/oauth/credentials/0xI5g000000NopA", "NOT_FOUND", 404},
		{"65.0", "/apps/oauth/credentials/" + DemoETLAppID + "/8885g000000VecAAAS", "NOT_FOUND", 404}, // another app's consumer
		{"65.0", etlPath("?part=everything"), "ILLEGAL_QUERY_PARAMETER_VALUE", 400},
	} {
		if status, body := connectDo(t, s, admin, "GET", tc.v, tc.path, ""); status != tc.status || restErrorCode(t, body) != tc.code {
			t.Errorf("%s %s: %d %s", tc.v, tc.path, status, body)
		}
	}
	// part: key only by default; the secret only when asked for.
	for part, want := range map[string]string{"": `"key":"` + DemoETLClientID + `","name"`, "?part=key": `"key":"` + DemoETLClientID + `","name"`,
		"?part=secret":       `"id":"` + etlConsumerID + `","secret":"` + DemoETLClientSecret + `","name"`,
		"?part=keyandsecret": `"key":"` + DemoETLClientID + `","secret":"` + DemoETLClientSecret + `"`} {
		if status, body := connectDo(t, s, admin, "GET", "65.0", etlPath(part), ""); status != 200 || !strings.Contains(body, want) ||
			(part != "?part=secret" && part != "?part=keyandsecret" && strings.Contains(body, "secret")) {
			t.Errorf("part %q: %d %s", part, status, body)
		}
	}
	// The secret needs the org setting, then View Client Secret; a packaged
	// app's secret is not served.
	s.SetOrg(func(o *Org) { o.EnableClientSecretInRESTAPIAccess = false })
	if status, body := connectDo(t, s, admin, "GET", "65.0", etlPath("?part=secret"), ""); status != 403 ||
		restErrorCode(t, body) != "FUNCTIONALITY_NOT_ENABLED" || !strings.Contains(body, "not currently enabled") {
		t.Errorf("setting off: %d %s", status, body)
	}
	if status, _ := connectDo(t, s, admin, "GET", "65.0", etlPath("?part=key"), ""); status != 200 {
		t.Errorf("key with the setting off: %d", status)
	}
	s.SetOrg(func(o *Org) { o.EnableClientSecretInRESTAPIAccess = true })
	s.SetUserState(adminUser, func(u *User) { u.PermissionSets = nil })
	seedSet := PermissionSet{Name: "Developer_Only", Permissions: []string{PermExternalClientAppDeveloper}}
	s.SetOrg(func(o *Org) { o.PermissionSets = append(o.PermissionSets, seedSet) })
	if err := s.AssignPermissionSet(adminUser, "Developer_Only"); err != nil {
		t.Fatal(err)
	}
	if status, body := connectDo(t, s, admin, "GET", "65.0", etlPath("?part=secret"), ""); status != 403 || !strings.Contains(body, "View Client Secret") {
		t.Errorf("without View Client Secret: %d %s", status, body)
	}
	if status, _ := connectDo(t, s, admin, "GET", "65.0", etlPath(""), ""); status != 200 {
		t.Errorf("key with the Developer permission: %d", status)
	}
	s.SetUserState(adminUser, func(u *User) { u.PermissionSets = []string{"ECA_Credential_Manager"} })
	pkg := "/apps/oauth/credentials/0xI5g000000PkgAEAS/8885g000000PkgAAAS"
	if status, body := connectDo(t, s, admin, "GET", "65.0", pkg+"?part=secret", ""); status != 403 || !strings.Contains(body, "Only local external client apps") {
		t.Errorf("packaged secret: %d %s", status, body)
	}
	if status, _ := connectDo(t, s, admin, "GET", "65.0", pkg, ""); status != 200 {
		t.Errorf("packaged key: %d", status)
	}
}

// The default behaviours: staging needs an empty slot, and a staged id
// stays with the slot's record.
func TestStagedCredentialsLifecycle(t *testing.T) {
	s := NewTestServer(t, nil)
	clock := newFakeClock(s)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	etlRT := s.IssueRefreshToken(DemoETLClientID, integUser)

	// Nothing staged: an empty collection.
	status, body := connectDo(t, s, admin, "GET", "65.0", etlPath("/staged"), "")
	if status != 200 || body != `{"stagedCredentials":[],"url":"/services/data/v65.0`+etlPath("/staged")+`"}`+"\n" {
		t.Fatalf("empty: %d %s", status, body)
	}
	// POST takes no body: an empty one and {} both work.
	status, body = connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), "")
	if status != 201 {
		t.Fatalf("stage: %d %s", status, body)
	}
	staged := decode[stagedCollectionResp](t, body).StagedCredentials[0]
	created, _ := time.Parse(connectDate, staged.CreatedDate)
	expires, _ := time.Parse(connectDate, staged.ExpirationDate)
	if staged.State != "Active" || !strings.HasPrefix(staged.Key, "3MVG9") || len(staged.Secret) != 64 || staged.CreatedBy != s.UserID(adminUser) ||
		expires.Sub(created) != 30*24*time.Hour || staged.URL != "/services/data/v65.0"+etlPath("/staged/"+staged.ID) ||
		staged.StagedCredentialsURL != "/services/data/v65.0"+etlPath("/staged") {
		t.Fatalf("staged %+v", staged)
	}
	if status, body := connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), "{}"); status != 400 || !strings.Contains(body, "already has staged credentials") {
		t.Fatalf("second stage: %d %s", status, body)
	}
	// Both sets authenticate while staged.
	for _, kv := range [][2]string{{DemoETLClientID, DemoETLClientSecret}, {staged.Key, staged.Secret}} {
		if status, out := clientCredentialsLogin(t, s, kv[0], kv[1]); status != 200 {
			t.Fatalf("login with %s: %d %v", kv[0][:12], status, out)
		}
	}
	if status, _ := clientCredentialsLogin(t, s, staged.Key, DemoETLClientSecret); status != 400 {
		t.Fatal("the new key with the old secret was accepted")
	}
	// Rotate: the staged set becomes primary; the old one takes the slot as
	// Rotated under the same id and keeps working.
	clock.Advance(24 * time.Hour)
	admin = mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	status, body = connectDo(t, s, admin, "PATCH", "65.0", etlPath("/staged/"+staged.ID), `{"command":"rotate"}`)
	rotated := decode[stagedItem](t, body)
	if status != 200 || rotated.ID != staged.ID || rotated.State != "Rotated" || rotated.Key != DemoETLClientID || rotated.Secret != DemoETLClientSecret {
		t.Fatalf("rotate: %d %s", status, body)
	}
	if exp, _ := time.Parse(connectDate, rotated.ExpirationDate); !exp.Equal(clock.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Millisecond)) {
		t.Errorf("rotated expires %s", rotated.ExpirationDate)
	}
	if _, body := connectDo(t, s, admin, "GET", "65.0", etlPath("?part=keyandsecret"), ""); !strings.Contains(body, `"key":"`+staged.Key+`","secret":"`+staged.Secret+`"`) {
		t.Errorf("primary after rotate: %s", body)
	}
	if status, _ := clientCredentialsLogin(t, s, DemoETLClientID, DemoETLClientSecret); status != 200 {
		t.Errorf("old key after rotate: %d", status)
	}
	if status, _ := tokenRequest(t, s.LoginURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {etlRT},
		"client_id": {DemoETLClientID}, "client_secret": {DemoETLClientSecret}}); status != 200 {
		t.Errorf("refresh with the old key: %d", status)
	}
	if status, _ := tokenRequest(t, s.LoginURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {etlRT},
		"client_id": {staged.Key}, "client_secret": {staged.Secret}}); status != 200 {
		t.Errorf("refresh with the new key: %d", status)
	}
	// A Rotated credential cannot be rotated again, nor can the slot be
	// staged over (the default).
	if status, body := connectDo(t, s, admin, "PATCH", "65.0", etlPath("/staged/"+staged.ID), `{"command":"rotate"}`); status != 400 || !strings.Contains(body, "Only Active") {
		t.Errorf("rotate a Rotated credential: %d %s", status, body)
	}
	if status, _ := connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), ""); status != 400 {
		t.Errorf("stage over Rotated: %d", status)
	}
	// DELETE revokes the old set at once.
	if status, body := connectDo(t, s, admin, "DELETE", "65.0", etlPath("/staged/"+staged.ID), ""); status != 204 || body != "" {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, out := clientCredentialsLogin(t, s, DemoETLClientID, DemoETLClientSecret); status != 400 || out["error"] != "invalid_client_id" {
		t.Errorf("old key after delete: %d %v", status, out)
	}
	if status, _ := connectDo(t, s, admin, "DELETE", "65.0", etlPath("/staged/"+staged.ID), ""); status != 404 {
		t.Errorf("delete twice: %d", status)
	}
	if status, _ := connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), ""); status != 201 {
		t.Errorf("stage into the empty slot: %d", status)
	}
}

func TestStagedCredentialsExpire(t *testing.T) {
	s := NewTestServer(t, nil)
	clock := newFakeClock(s)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	_, body := connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), "")
	first := decode[stagedCollectionResp](t, body).StagedCredentials[0]
	// An Active staged credential expires 30 days after staging: it stops
	// authenticating and cannot be promoted.
	clock.Advance(30 * 24 * time.Hour)
	admin = mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	if _, body := connectDo(t, s, admin, "GET", "65.0", etlPath("/staged/"+first.ID), ""); !strings.Contains(body, `"state":"Expired"`) {
		t.Fatalf("after 30 days: %s", body)
	}
	if status, _ := clientCredentialsLogin(t, s, first.Key, first.Secret); status != 400 {
		t.Errorf("expired staged key: %d", status)
	}
	if status, _ := connectDo(t, s, admin, "PATCH", "65.0", etlPath("/staged/"+first.ID), `{"command":"rotate"}`); status != 400 {
		t.Errorf("rotate expired: %d", status)
	}
	// A rotated-out credential works for 30 days after the rotation.
	connectDo(t, s, admin, "DELETE", "65.0", etlPath("/staged/"+first.ID), "")
	_, body = connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), "")
	second := decode[stagedCollectionResp](t, body).StagedCredentials[0]
	connectDo(t, s, admin, "PATCH", "65.0", etlPath("/staged/"+second.ID), `{"command":"rotate"}`)
	clock.Advance(30*24*time.Hour - time.Minute)
	if status, _ := clientCredentialsLogin(t, s, DemoETLClientID, DemoETLClientSecret); status != 200 {
		t.Errorf("old key a minute before expiry: %d", status)
	}
	clock.Advance(time.Minute)
	if status, _ := clientCredentialsLogin(t, s, DemoETLClientID, DemoETLClientSecret); status != 400 {
		t.Errorf("old key at expiry: %d", status)
	}
	if status, _ := clientCredentialsLogin(t, s, second.Key, second.Secret); status != 200 {
		t.Errorf("primary: %d", status)
	}
}

// Switch (a): staging over a Rotated or Expired credential, as Infisical
// does, replaces it.
func TestStageOverRotatedSwitch(t *testing.T) {
	seed := DefaultSeed()
	seed.Org.StageOverRotated = true
	s := NewTestServer(t, seed)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	_, body := connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), "")
	first := decode[stagedCollectionResp](t, body).StagedCredentials[0]
	if status, _ := connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), ""); status != 400 {
		t.Fatalf("stage over Active: %d", status)
	}
	connectDo(t, s, admin, "PATCH", "65.0", etlPath("/staged/"+first.ID), `{"command":"rotate"}`)
	status, body := connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), "")
	second := decode[stagedCollectionResp](t, body).StagedCredentials[0]
	if status != 201 || second.State != "Active" || second.ID == first.ID {
		t.Fatalf("stage over Rotated: %d %s", status, body)
	}
	// The replaced (rotated-out) credential no longer authenticates.
	if status, _ := clientCredentialsLogin(t, s, DemoETLClientID, DemoETLClientSecret); status != 400 {
		t.Errorf("replaced credential: %d", status)
	}
}

// Switch (b): credentials keep their ids through promote and demote, so
// Infisical's "delete by the id seen at staging" reaches the right one.
func TestStagedIDFollowsCredentialSwitch(t *testing.T) {
	seed := DefaultSeed()
	seed.Org.StageOverRotated = true
	seed.Org.StagedIDFollowsCredential = true
	s := NewTestServer(t, seed)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	stageAndRotate := func() stagedItem {
		t.Helper()
		_, body := connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), "{}")
		st := decode[stagedCollectionResp](t, body).StagedCredentials[0]
		status, body := connectDo(t, s, admin, "PATCH", "65.0", st.URL[len("/services/data/v65.0"):], `{"command":"rotate"}`)
		if status != 200 {
			t.Fatalf("rotate: %d %s", status, body)
		}
		return st
	}
	gen1 := stageAndRotate()
	// gen1's id now names the primary: it is not in the staged slot.
	if status, _ := connectDo(t, s, admin, "GET", "65.0", etlPath("/staged/"+gen1.ID), ""); status != 404 {
		t.Errorf("promoted id in the slot: %d", status)
	}
	_, body := connectDo(t, s, admin, "GET", "65.0", etlPath("/staged"), "")
	if slot := decode[stagedCollectionResp](t, body).StagedCredentials[0]; slot.ID == gen1.ID || slot.Key != DemoETLClientID {
		t.Errorf("slot after first rotation: %+v", slot)
	}
	gen2 := stageAndRotate()
	// gen1 was demoted into the slot and kept its id: deleting by it ends
	// gen1 and nothing else.
	if status, _ := connectDo(t, s, admin, "DELETE", "65.0", etlPath("/staged/"+gen1.ID), ""); status != 204 {
		t.Fatalf("delete gen1 by its staging id: %d", status)
	}
	if status, _ := clientCredentialsLogin(t, s, gen1.Key, gen1.Secret); status != 400 {
		t.Error("gen1 still authenticates")
	}
	if status, _ := clientCredentialsLogin(t, s, gen2.Key, gen2.Secret); status != 200 {
		t.Error("gen2 (primary) refused")
	}
	// In the default mode the same delete finds nothing (the slot holds
	// gen1 under gen2's id).
	s.SetOrg(func(o *Org) { o.StagedIDFollowsCredential = false })
	gen3 := stageAndRotate()
	_, body = connectDo(t, s, admin, "GET", "65.0", etlPath("/staged"), "")
	if slot := decode[stagedCollectionResp](t, body).StagedCredentials[0]; slot.ID != gen3.ID || slot.Key != gen2.Key {
		t.Errorf("default mode slot: %+v", slot)
	}
}

func TestStagedCredentialsRefusals(t *testing.T) {
	s := NewTestServer(t, nil)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	_, body := connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), "")
	st := decode[stagedCollectionResp](t, body).StagedCredentials[0]
	integ := mustPasswordGrant(t, s, integUser, integPass+integTok)
	for _, tc := range []struct {
		tok, method, v, path, body string
		status                     int
		code                       string
	}{
		{admin, "POST", "64.0", etlPath("/staged"), "", 404, "NOT_FOUND"}, // staged resources start at 65.0
		{admin, "GET", "64.0", etlPath("/staged/" + st.ID), "", 404, "NOT_FOUND"},
		{admin, "PUT", "65.0", etlPath("/staged"), "", 405, "METHOD_NOT_ALLOWED"},
		{admin, "POST", "65.0", etlPath("/staged/" + st.ID), "", 405, "METHOD_NOT_ALLOWED"},
		{admin, "POST", "65.0", etlPath("/staged"), `{"key":"mine"}`, 400, "INVALID_API_INPUT"},
		{admin, "POST", "65.0", etlPath("/staged"), `{`, 400, "JSON_PARSER_ERROR"},
		{admin, "PATCH", "65.0", etlPath("/staged/" + st.ID), `{"command":"promote"}`, 400, "INVALID_API_INPUT"},
		{admin, "PATCH", "65.0", etlPath("/staged/" + st.ID), ``, 400, "JSON_PARSER_ERROR"},
		{admin, "PATCH", "65.0", etlPath("/staged/0xSACnothere0000AA"), `{"command":"rotate"}`, 404, "NOT_FOUND"},
		{admin, "GET", "65.0", "/apps/oauth/credentials/0xI5g000000PkgAEAS/8885g000000PkgAAAS/staged", "", 403, "INSUFFICIENT_ACCESS"},
		{integ, "POST", "65.0", etlPath("/staged"), "", 403, "INSUFFICIENT_ACCESS"},
		{integ, "DELETE", "65.0", etlPath("/staged/" + st.ID), "", 403, "INSUFFICIENT_ACCESS"},
	} {
		status, body := connectDo(t, s, tc.tok, tc.method, tc.v, tc.path, tc.body)
		if status != tc.status || restErrorCode(t, body) != tc.code {
			t.Errorf("%s v%s %s %s: %d %s", tc.method, tc.v, tc.path, tc.body, status, body)
		}
	}
	s.SetOrg(func(o *Org) { o.EnableClientSecretInRESTAPIAccess = false })
	if status, body := connectDo(t, s, admin, "GET", "65.0", etlPath("/staged"), ""); status != 403 || restErrorCode(t, body) != "FUNCTIONALITY_NOT_ENABLED" {
		t.Errorf("setting off: %d %s", status, body)
	}
	// Nothing changed: the staged credential is still there and Active.
	s.SetOrg(func(o *Org) { o.EnableClientSecretInRESTAPIAccess = true })
	if _, body := connectDo(t, s, admin, "GET", "65.0", etlPath("/staged/"+st.ID), ""); !strings.Contains(body, `"state":"Active"`) {
		t.Errorf("after refusals: %s", body)
	}
}

func TestRotatedKeyServesJWTBearer(t *testing.T) {
	s := NewTestServer(t, nil)
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	path := "/apps/oauth/credentials/" + DemoECAID + "/8885g000000VecAAAS/staged"
	_, body := connectDo(t, s, admin, "POST", "66.0", path, "")
	st := decode[stagedCollectionResp](t, body).StagedCredentials[0]
	jwtLogin := func(iss string) (int, map[string]any) {
		return tokenRequest(t, s.LoginURL(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
			"assertion": {jwtAssertion(t, s, iss, integUser)}})
	}
	if status, out := jwtLogin(st.Key); status != 200 {
		t.Fatalf("staged key as issuer: %d %v", status, out)
	}
	connectDo(t, s, admin, "PATCH", "66.0", path+"/"+st.ID, `{"command":"rotate"}`)
	for _, iss := range []string{DemoECAClientID, st.Key} {
		if status, out := jwtLogin(iss); status != 200 {
			t.Errorf("issuer %s after rotate: %d %v", iss[:12], status, out)
		}
	}
	connectDo(t, s, admin, "DELETE", "66.0", path+"/"+st.ID, "")
	if status, out := jwtLogin(DemoECAClientID); status != 400 || out["error"] != "invalid_client_id" {
		t.Errorf("deleted key as issuer: %d %v", status, out)
	}
}
