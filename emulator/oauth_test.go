package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestPasswordGrantResponse(t *testing.T) {
	s := NewTestServer(t, nil)
	status, out := tokenRequest(t, s.LoginURL(), passwordForm(adminUser, adminPass+adminTok))
	if status != 200 {
		t.Fatalf("status %d: %v", status, out)
	}
	wantID := s.LoginURL() + "/id/" + DemoOrgID + "/" + s.UserID(adminUser)
	if out["id"] != wantID || out["instance_url"] != s.MyDomainURL() || out["token_type"] != "Bearer" {
		t.Fatalf("id=%v instance_url=%v token_type=%v", out["id"], out["instance_url"], out["token_type"])
	}
	if _, ok := out["expires_in"]; ok {
		t.Error("Salesforce sends no expires_in")
	}
	if _, ok := out["refresh_token"]; ok {
		t.Error("the password flow issues no refresh token")
	}
	issuedAt, _ := out["issued_at"].(string)
	ms, err := strconv.ParseInt(issuedAt, 10, 64)
	if err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Hour {
		t.Errorf("issued_at %q is not epoch milliseconds as a string", issuedAt)
	}
	if out["signature"] != Signature(DemoClientSecret, wantID, issuedAt) {
		t.Errorf("signature does not verify")
	}
	if out["scope"] == "" || !strings.HasPrefix(out["access_token"].(string), id15(DemoOrgID)+"!") {
		t.Errorf("scope=%v, access_token prefix wrong", out["scope"])
	}
}

func TestSignatureIsHMACOfIDAndIssuedAt(t *testing.T) {
	// Known-answer test: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
	got := Signature("key", "The quick brown fox jumps over the lazy dog", "")
	if got != "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=" {
		t.Fatalf("signature %s", got)
	}
}

func TestPasswordGrantErrors(t *testing.T) {
	s := NewTestServer(t, nil)
	cases := []struct {
		name      string
		form      url.Values
		err, desc string
	}{
		{"no token from untrusted ip", passwordForm(adminUser, adminPass), "invalid_grant", "authentication failure"},
		{"wrong password", passwordForm(adminUser, "nope"+adminTok), "invalid_grant", "authentication failure"},
		{"unknown client", func() url.Values { f := passwordForm(adminUser, adminPass+adminTok); f.Set("client_id", "x"); return f }(), "invalid_client_id", "client identifier invalid"},
		{"wrong secret", func() url.Values {
			f := passwordForm(adminUser, adminPass+adminTok)
			f.Set("client_secret", "x")
			return f
		}(), "invalid_client", "invalid client credentials"},
		{"unknown grant", url.Values{"grant_type": {"authorization_code"}}, "unsupported_grant_type", "grant type not supported"},
	}
	for _, c := range cases {
		status, out := tokenRequest(t, s.LoginURL(), c.form)
		if status != 400 || out["error"] != c.err || out["error_description"] != c.desc {
			t.Errorf("%s: %d %v", c.name, status, out)
		}
	}
	// A JSON body is not a token request.
	status, body := post(t, s.LoginURL()+"/services/oauth2/token", "application/json", `{"grant_type":"password"}`)
	if status != 400 || !strings.Contains(body, `"unsupported_grant_type"`) || !strings.Contains(body, "grant type not supported") {
		t.Errorf("JSON body: %d %s", status, body)
	}
	// Trusted profile: no token needed for the OAuth flow either.
	mustPasswordGrant(t, s, trustUser, trustPass)
}

func TestUsernamePasswordFlowBlockedPerOrg(t *testing.T) {
	s := NewTestServer(t, nil)
	s.SetOrg(func(o *Org) { o.BlockUsernamePasswordFlow = true })
	status, out := tokenRequest(t, s.LoginURL(), passwordForm(adminUser, adminPass+adminTok))
	if status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("blocked flow: %d %v", status, out)
	}
}

func TestPasswordGrantNeedsAdminApproval(t *testing.T) {
	s := NewTestServer(t, nil)
	s.SetOrg(func(o *Org) { o.ConnectedApps[0].PreAuthorizedProfiles = []string{demoAdminProfile} })
	status, out := tokenRequest(t, s.LoginURL(), passwordForm(integUser, integPass+integTok))
	if status != 400 || out["error"] != "invalid_app_access" {
		t.Fatalf("%d %v", status, out)
	}
}

func ccForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}}
}

func TestClientCredentialsOnlyOnMyDomain(t *testing.T) {
	s := NewTestServer(t, nil)
	status, out := tokenRequest(t, s.LoginURL(), ccForm())
	if status != 400 || out["error"] != "invalid_grant" || out["error_description"] != "request not supported on this domain" {
		t.Fatalf("login host: %d %v", status, out)
	}
	status, out = tokenRequest(t, s.MyDomainURL(), ccForm())
	if status != 200 {
		t.Fatalf("My Domain: %d %v", status, out)
	}
	if !strings.HasSuffix(out["id"].(string), "/"+s.UserID(adminUser)) {
		t.Errorf("token is not for the run-as user: %v", out["id"])
	}
	if out["signature"] != Signature(DemoClientSecret, out["id"].(string), out["issued_at"].(string)) {
		t.Errorf("bad signature")
	}
	// Client authentication with HTTP Basic works too.
	req, _ := http.NewRequest("POST", s.MyDomainURL()+"/services/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(DemoClientID, DemoClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("basic auth: %v %v", err, resp.StatusCode)
	}
	resp.Body.Close()
}

func TestClientCredentialsNeedsRunAsUser(t *testing.T) {
	s := NewTestServer(t, nil)
	s.SetOrg(func(o *Org) { o.ConnectedApps[0].RunAsUser = "" })
	status, out := tokenRequest(t, s.MyDomainURL(), ccForm())
	if status != 400 || out["error_description"] != "no client credentials user enabled" {
		t.Fatalf("%d %v", status, out)
	}
}

func demoKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(DemoPrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func assertion(t *testing.T, key *rsa.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func jwtGrant(t *testing.T, s *Server, a string) (int, map[string]any) {
	return tokenRequest(t, s.LoginURL(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {a}})
}

func TestJWTBearerGrant(t *testing.T) {
	s := NewTestServer(t, nil)
	key := demoKey(t)
	exp := time.Now().Add(2 * time.Minute).Unix()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": DemoClientID, "sub": integUser, "aud": "https://login.salesforce.com", "exp": strconv.FormatInt(exp, 10)}
	}
	status, out := jwtGrant(t, s, assertion(t, key, good()))
	if status != 200 || !strings.HasSuffix(out["id"].(string), s.UserID(integUser)) {
		t.Fatalf("string exp: %d %v", status, out)
	}
	if _, ok := out["refresh_token"]; ok {
		t.Error("JWT flow issues no refresh token")
	}
	// Numeric exp, the login URL as audience, prn wins over sub.
	c := good()
	c["exp"] = exp
	c["aud"] = s.LoginURL()
	c["sub"] = integUser
	c["prn"] = adminUser
	if status, out = jwtGrant(t, s, assertion(t, key, c)); status != 200 || !strings.HasSuffix(out["id"].(string), s.UserID(adminUser)) {
		t.Fatalf("numeric exp + prn: %d %v", status, out)
	}
	c = good()
	c["aud"] = s.MyDomainURL()
	if status, _ = jwtGrant(t, s, assertion(t, key, c)); status != 200 {
		t.Fatalf("My Domain audience refused")
	}

	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	bad := []struct {
		name      string
		mutate    func(jwt.MapClaims)
		key       *rsa.PrivateKey
		err, desc string
	}{
		{"bad aud", func(c jwt.MapClaims) { c["aud"] = "https://evil.example.com" }, key, "invalid_grant", "audience is invalid"},
		{"exp too far", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(10 * time.Minute).Unix() }, key, "invalid_grant", "invalid assertion"},
		{"exp past", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, key, "invalid_grant", "expired authorization code"},
		{"no exp", func(c jwt.MapClaims) { delete(c, "exp") }, key, "invalid_grant", "invalid assertion"},
		{"wrong key", func(jwt.MapClaims) {}, otherKey, "invalid_grant", "invalid assertion"},
		{"unknown iss", func(c jwt.MapClaims) { c["iss"] = "nope" }, key, "invalid_client_id", "client identifier invalid"},
		{"unknown user", func(c jwt.MapClaims) { c["sub"] = "ghost@acme.demo" }, key, "invalid_grant", "user hasn't approved this consumer"},
	}
	for _, b := range bad {
		c := good()
		b.mutate(c)
		status, out := jwtGrant(t, s, assertion(t, b.key, c))
		if status != 400 || out["error"] != b.err || out["error_description"] != b.desc {
			t.Errorf("%s: %d %v", b.name, status, out)
		}
	}
	// Unapproved user: the app's pre-authorised profiles no longer cover it.
	s.SetOrg(func(o *Org) { o.ConnectedApps[0].PreAuthorizedProfiles = []string{demoAdminProfile} })
	if status, out := jwtGrant(t, s, assertion(t, key, good())); status != 400 || out["error_description"] != "user hasn't approved this consumer" {
		t.Errorf("unapproved user: %d %v", status, out)
	}
}

func TestJWTWithUploadedCertificate(t *testing.T) {
	s := NewTestServer(t, nil)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	c := jwt.MapClaims{"iss": DemoClientID, "sub": integUser, "aud": "https://login.salesforce.com", "exp": time.Now().Add(time.Minute).Unix()}
	if status, _ := jwtGrant(t, s, assertion(t, key, c)); status != 400 {
		t.Fatal("a key the app does not know was accepted")
	}
	if err := s.SetConnectedAppCertificate(DemoClientID, selfSignedPEM(t, key)); err != nil {
		t.Fatal(err)
	}
	if status, out := jwtGrant(t, s, assertion(t, key, c)); status != 200 {
		t.Fatalf("after upload: %d %v", status, out)
	}
	if err := s.SetConnectedAppCertificate(DemoClientID, "garbage"); err == nil {
		t.Fatal("garbage certificate accepted")
	}
}

func TestRefreshTokenGrant(t *testing.T) {
	s := NewTestServer(t, nil)
	rt := s.IssueRefreshToken(DemoClientID, integUser)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}}
	status, out := tokenRequest(t, s.LoginURL(), form)
	if status != 200 || out["refresh_token"] != nil {
		t.Fatalf("%d %v", status, out)
	}
	if out["signature"] != Signature(DemoClientSecret, out["id"].(string), out["issued_at"].(string)) {
		t.Error("bad signature")
	}
	access := out["access_token"].(string)
	// Revoking the refresh token revokes its access tokens.
	if status, body := post(t, s.LoginURL()+"/services/oauth2/revoke", "application/x-www-form-urlencoded", "token="+url.QueryEscape(rt)); status != 200 {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if s.IsTokenActive(access) || s.IsTokenActive(rt) {
		t.Fatal("tokens still active after revoking the refresh token")
	}
	status, out = tokenRequest(t, s.LoginURL(), form)
	if status != 400 || out["error_description"] != "expired access/refresh token" {
		t.Fatalf("revoked refresh token: %d %v", status, out)
	}
}

func TestRevoke(t *testing.T) {
	s := NewTestServer(t, nil)
	a := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	b := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	if status, _ := post(t, s.LoginURL()+"/services/oauth2/revoke", "application/x-www-form-urlencoded", "token="+url.QueryEscape(a)); status != 200 {
		t.Fatal("POST revoke failed")
	}
	resp, err := http.Get(s.LoginURL() + "/services/oauth2/revoke?token=" + url.QueryEscape(b))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET revoke: %v %v", err, resp.StatusCode)
	}
	resp.Body.Close()
	if s.IsTokenActive(a) || s.IsTokenActive(b) || s.RevokedTokens() != 2 {
		t.Fatalf("active a=%v b=%v revoked=%d", s.IsTokenActive(a), s.IsTokenActive(b), s.RevokedTokens())
	}
	if r, _ := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/limits", a, ""); r.StatusCode != 401 {
		t.Fatalf("revoked token still works: %d", r.StatusCode)
	}
	status, body := post(t, s.LoginURL()+"/services/oauth2/revoke", "application/x-www-form-urlencoded", "token="+url.QueryEscape(a))
	if status != 400 || !strings.Contains(body, "invalid_token") {
		t.Fatalf("revoking twice: %d %s", status, body)
	}
}

func introspect(t *testing.T, s *Server, token string, basic bool) (int, map[string]any) {
	t.Helper()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if !basic {
		form.Set("client_id", DemoClientID)
		form.Set("client_secret", DemoClientSecret)
	}
	req, _ := http.NewRequest("POST", s.LoginURL()+"/services/oauth2/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(DemoClientID, DemoClientSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestIntrospect(t *testing.T) {
	s := NewTestServer(t, nil)
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	for _, basic := range []bool{true, false} {
		status, out := introspect(t, s, tok, basic)
		if status != 200 || out["active"] != true || out["username"] != adminUser || out["client_id"] != DemoClientID || out["token_type"] != "access_token" {
			t.Fatalf("basic=%v: %d %v", basic, status, out)
		}
		exp, iat := out["exp"].(float64), out["iat"].(float64)
		if exp-iat != 7200 {
			t.Errorf("exp-iat = %v, want the 2h session timeout", exp-iat)
		}
	}
	if status, out := introspect(t, s, "00Dbogus!token", true); status != 200 || len(out) != 1 || out["active"] != false {
		t.Fatalf("unknown token: %d %v", status, out)
	}
	post(t, s.LoginURL()+"/services/oauth2/revoke", "application/x-www-form-urlencoded", "token="+url.QueryEscape(tok))
	if _, out := introspect(t, s, tok, true); out["active"] != false {
		t.Fatalf("revoked token: %v", out)
	}
	status, body := post(t, s.LoginURL()+"/services/oauth2/introspect", "application/x-www-form-urlencoded", "token=x&client_id="+DemoClientID+"&client_secret=wrong")
	if status != 400 || !strings.Contains(body, "invalid_client") {
		t.Fatalf("bad client secret: %d %s", status, body)
	}
}

func TestUserInfoAndIdentity(t *testing.T) {
	s := NewTestServer(t, nil)
	status, out := tokenRequest(t, s.LoginURL(), passwordForm(adminUser, adminPass+adminTok))
	if status != 200 {
		t.Fatal(out)
	}
	tok, idURL := out["access_token"].(string), out["id"].(string)
	resp, body := restDo(t, "GET", s.LoginURL()+"/services/oauth2/userinfo", tok, "")
	var info map[string]any
	_ = json.Unmarshal([]byte(body), &info)
	if resp.StatusCode != 200 || info["preferred_username"] != adminUser || info["user_id"] != s.UserID(adminUser) || info["organization_id"] != DemoOrgID || info["sub"] != idURL {
		t.Fatalf("userinfo: %d %v", resp.StatusCode, info)
	}
	resp, body = restDo(t, "GET", idURL, tok, "")
	var id map[string]any
	_ = json.Unmarshal([]byte(body), &id)
	if resp.StatusCode != 200 || id["username"] != adminUser || id["id"] != idURL || id["active"] != true {
		t.Fatalf("identity: %d %v", resp.StatusCode, id)
	}
	if resp, _ := restDo(t, "GET", s.LoginURL()+"/id/"+DemoOrgID+"/"+s.UserID(integUser), tok, ""); resp.StatusCode != 403 {
		t.Errorf("another user's identity: %d", resp.StatusCode)
	}
	if resp, _ := restDo(t, "GET", idURL, "00Dbogus!x", ""); resp.StatusCode != 403 {
		t.Errorf("bad token: %d", resp.StatusCode)
	}
}

func TestSessionReuse(t *testing.T) {
	s := NewTestServer(t, nil)
	key := demoKey(t)
	mint := func() string {
		c := jwt.MapClaims{"iss": DemoClientID, "sub": integUser, "aud": "https://login.salesforce.com", "exp": time.Now().Add(time.Minute).Unix()}
		status, out := jwtGrant(t, s, assertion(t, key, c))
		if status != 200 {
			t.Fatalf("%d %v", status, out)
		}
		return out["access_token"].(string)
	}
	if a, b := mint(), mint(); a == b || s.ActiveSessions(integUser) != 2 {
		t.Fatalf("without reuse: same=%v sessions=%d", a == b, s.ActiveSessions(integUser))
	}
	s.SetOrg(func(o *Org) { o.ReuseSessions = true })
	a, b := mint(), mint()
	if a != b {
		t.Fatal("with reuse, two mints returned different tokens")
	}
	// Revoking one holder's token ends the other's too.
	post(t, s.LoginURL()+"/services/oauth2/revoke", "application/x-www-form-urlencoded", "token="+url.QueryEscape(a))
	if s.IsTokenActive(b) {
		t.Fatal("shared session survived revocation")
	}
}
