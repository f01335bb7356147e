package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// controlDo sends a request through the real listener (a loopback caller).
func controlDo(t *testing.T, method, u, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// recordCalls collects the CallInfo of every request from now on.
func recordCalls(s *Server) func() []CallInfo {
	var mu sync.Mutex
	var calls []CallInfo
	s.SetCallHook(func(c CallInfo) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, c)
	})
	return func() []CallInfo {
		mu.Lock()
		defer mu.Unlock()
		return append([]CallInfo(nil), calls...)
	}
}

// rotateIntegPassword changes the integration user's password through the
// REST API, which makes the org email a new security token.
func rotateIntegPassword(t *testing.T, s *Server, newPassword string) {
	t.Helper()
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	body := `{"NewPassword":"` + newPassword + `"}`
	if resp, _ := restDo(t, "POST", restPasswordURL(s, s.UserID(integUser)), tok, body); resp.StatusCode != 204 {
		t.Fatalf("set password: %d", resp.StatusCode)
	}
}

func TestControlMailboxShowsEmailedToken(t *testing.T) {
	s := NewTestServer(t, nil)
	calls := recordCalls(s)
	mailboxURL := s.LoginURL() + ControlPrefix + "mailbox/" + integUser

	status, body := controlDo(t, "GET", mailboxURL, "", "")
	if status != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("empty mailbox: %d %s", status, body)
	}
	if status, _ := controlDo(t, "GET", s.LoginURL()+ControlPrefix+"mailbox/"+integUser+"/security-token", "", ""); status != 404 {
		t.Fatalf("latest token before any email: %d, want 404", status)
	}

	rotateIntegPassword(t, s, "Rotated-Pass-77")
	status, body = controlDo(t, "GET", mailboxURL, "", "")
	var mails []struct {
		To, Subject, SecurityToken string
		At                         time.Time
	}
	if err := json.Unmarshal([]byte(body), &mails); err != nil || status != 200 {
		t.Fatalf("mailbox: %d %s (%v)", status, body, err)
	}
	newTok := s.LatestSecurityToken(integUser)
	if len(mails) != 1 || mails[0].SecurityToken != newTok || mails[0].To != integUser || mails[0].At.IsZero() ||
		!strings.Contains(mails[0].Subject, "security token") {
		t.Fatalf("mailbox does not show the emailed token: %s", body)
	}

	// The shortcut answers in the shape `vault write …/security-token -` reads,
	// and the token it gives logs in with the new password.
	status, body = controlDo(t, "GET", s.MyDomainURL()+ControlPrefix+"mailbox/"+integUser+"/security-token", "", "")
	var latest map[string]string
	if err := json.Unmarshal([]byte(body), &latest); err != nil || status != 200 || len(latest) != 1 {
		t.Fatalf("latest token: %d %s", status, body)
	}
	if code, fault := soapLogin(t, s, "64.0", integUser, "Rotated-Pass-77"+latest["security_token"]); code != 200 {
		t.Fatalf("the mailbox token does not log in: %s", faultCode(fault))
	}

	if status, _ := controlDo(t, "GET", s.LoginURL()+ControlPrefix+"mailbox/nobody@acme.demo", "", ""); status != 404 {
		t.Errorf("unknown user's mailbox: %d, want 404", status)
	}
	if status, _ := controlDo(t, "DELETE", mailboxURL, "", ""); status != 405 {
		t.Errorf("DELETE mailbox: %d, want 405", status)
	}

	// The log sees the endpoint and user, never a token; control calls are
	// not Salesforce calls, so they are not counted.
	var sawMailbox bool
	for _, c := range calls() {
		if c.Endpoint == controlMailbox && c.Username == integUser && c.Status == 200 {
			sawMailbox = true
		}
		if strings.Contains(c.Path+c.Username+c.Endpoint, newTok) {
			t.Fatal("a call log field carries the token")
		}
	}
	if !sawMailbox {
		t.Errorf("no call info for the mailbox read: %+v", calls())
	}
	for _, name := range []string{controlMailbox, controlSecurityToken, "control.unknown"} {
		if s.Calls(name) != 0 {
			t.Errorf("control endpoint %s counted as a Salesforce call", name)
		}
	}
}

func TestControlCertificateUploadTrustsNewKey(t *testing.T) {
	s := NewTestServer(t, nil)
	certURL := s.LoginURL() + ControlPrefix + "connected-apps/" + DemoClientID + "/certificate"
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"iss": DemoClientID, "sub": integUser, "aud": s.MyDomainURL(), "exp": time.Now().Add(time.Minute).Unix()}
	if status, _ := jwtGrant(t, s, assertion(t, key, claims)); status != 400 {
		t.Fatal("a key the app does not trust was accepted")
	}

	certPEM := selfSignedPEM(t, key)
	status, body := controlDo(t, "PUT", certURL, "application/x-pem-file", certPEM)
	var info struct{ ClientID, Certificate, FingerprintSHA256 string }
	if err := json.Unmarshal([]byte(body), &info); err != nil || status != 200 {
		t.Fatalf("upload: %d %s", status, body)
	}
	block, _ := pem.Decode([]byte(certPEM))
	sum := sha256.Sum256(block.Bytes)
	if info.ClientID != DemoClientID || info.FingerprintSHA256 != hex.EncodeToString(sum[:]) || info.Certificate != "" {
		t.Errorf("upload answer: %+v", info)
	}
	if status, out := jwtGrant(t, s, assertion(t, key, claims)); status != 200 {
		t.Fatalf("JWT with the uploaded certificate's key: %d %v", status, out)
	}
	if status, _ := jwtGrant(t, s, assertion(t, demoKey(t), claims)); status != 400 {
		t.Error("the replaced demo key still works")
	}
	if status, body := controlDo(t, "GET", certURL, "", ""); status != 200 || !strings.Contains(body, hex.EncodeToString(sum[:])) {
		t.Errorf("GET certificate: %d %s", status, body)
	}

	if status, _ := controlDo(t, "PUT", certURL, "text/plain", "not a certificate"); status != 400 {
		t.Errorf("garbage PEM: %d, want 400", status)
	}
	if status, out := jwtGrant(t, s, assertion(t, key, claims)); status != 200 {
		t.Fatalf("a refused upload replaced the certificate: %d %v", status, out)
	}
	if status, _ := controlDo(t, "PUT", s.LoginURL()+ControlPrefix+"connected-apps/nope/certificate", "", certPEM); status != 404 {
		t.Errorf("unknown app: %d, want 404", status)
	}
}

func TestControlRefreshTokenWorksForRefreshGrant(t *testing.T) {
	s := NewTestServer(t, nil)
	issueURL := s.LoginURL() + ControlPrefix + "refresh-tokens"
	form := url.Values{"client_id": {DemoClientID}, "username": {integUser}}
	calls := recordCalls(s)
	status, body := controlDo(t, "POST", issueURL, "application/x-www-form-urlencoded", form.Encode())
	var out map[string]string
	if err := json.Unmarshal([]byte(body), &out); err != nil || status != 200 || len(out) != 1 || out["refresh_token"] == "" {
		t.Fatalf("issue: %d %s", status, body)
	}
	rt := out["refresh_token"]
	status, tok := tokenRequest(t, s.MyDomainURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {DemoClientID}, "client_secret": {DemoClientSecret}})
	if status != 200 || !strings.HasSuffix(tok["id"].(string), s.UserID(integUser)) {
		t.Fatalf("refresh grant with the issued token: %d %v", status, tok)
	}
	for _, c := range calls() {
		if strings.Contains(c.Path+c.Username+c.Endpoint, rt) {
			t.Fatal("a call log field carries the refresh token")
		}
	}

	for _, c := range []struct {
		form url.Values
		want int
	}{
		{url.Values{"client_id": {"nope"}, "username": {integUser}}, 404},
		{url.Values{"client_id": {DemoClientID}, "username": {"nobody@acme.demo"}}, 400},
		{url.Values{"client_id": {DemoClientID}}, 400},
	} {
		if status, body := controlDo(t, "POST", issueURL, "application/x-www-form-urlencoded", c.form.Encode()); status != c.want {
			t.Errorf("%v: %d %s, want %d", c.form, status, body, c.want)
		}
	}
	s.SetUserState(integUser, func(u *User) { u.IsActive = false })
	if status, _ := controlDo(t, "POST", issueURL, "application/x-www-form-urlencoded", form.Encode()); status != 400 {
		t.Errorf("inactive user: %d, want 400", status)
	}
}

// Remote callers, foreign Host names (DNS rebinding) and a switched-off
// control API all get no data.
func TestControlRefusesNonLocalCallers(t *testing.T) {
	s, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetBaseURL("http://127.0.0.1:8787", "http://localhost:8787")
	rotate := func() {
		s.mu.Lock()
		s.resetSecurityToken(s.users[integUser])
		s.mu.Unlock()
	}
	rotate()
	secret := s.LatestSecurityToken(integUser)
	requests := map[string]func() *http.Request{
		"mailbox": func() *http.Request {
			return httptest.NewRequest("GET", "http://127.0.0.1:8787"+ControlPrefix+"mailbox/"+integUser, nil)
		},
		"security-token": func() *http.Request {
			return httptest.NewRequest("GET", "http://127.0.0.1:8787"+ControlPrefix+"mailbox/"+integUser+"/security-token", nil)
		},
		"certificate": func() *http.Request {
			return httptest.NewRequest("PUT", "http://127.0.0.1:8787"+ControlPrefix+"connected-apps/"+DemoClientID+"/certificate",
				strings.NewReader(DemoCertificatePEM))
		},
		"refresh-tokens": func() *http.Request {
			r := httptest.NewRequest("POST", "http://127.0.0.1:8787"+ControlPrefix+"refresh-tokens",
				strings.NewReader(url.Values{"client_id": {DemoClientID}, "username": {integUser}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		},
	}
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	for name, mk := range requests {
		t.Run(name, func(t *testing.T) {
			r := mk()
			r.RemoteAddr = "192.0.2.10:40000"
			if w := serve(r); w.Code != 403 || strings.Contains(w.Body.String(), secret) || strings.Contains(w.Body.String(), "refresh_token") {
				t.Errorf("remote caller: %d %s", w.Code, w.Body)
			}
			r = mk()
			r.RemoteAddr = "127.0.0.1:40000"
			r.Host = "attacker.example:8787"
			if w := serve(r); w.Code != 403 {
				t.Errorf("foreign Host from loopback: %d %s", w.Code, w.Body)
			}
			r = mk()
			r.RemoteAddr = "[::1]:40000"
			r.Host = "localhost:8787"
			if w := serve(r); w.Code != 200 {
				t.Errorf("IPv6 loopback caller: %d %s", w.Code, w.Body)
			}
		})
	}

	s.SetControlAPI(false)
	for name, mk := range requests {
		r := mk()
		r.RemoteAddr = "127.0.0.1:40000"
		if w := serve(r); w.Code != 404 || strings.Contains(w.Body.String(), secret) {
			t.Errorf("%s with the control API off: %d %s", name, w.Code, w.Body)
		}
	}
}

func TestControlAppsOrgAndClock(t *testing.T) {
	s := NewTestServer(t, nil)
	base := s.LoginURL() + ControlPrefix
	status, body := controlDo(t, "POST", base+"apps", "application/json",
		`{"name":"Billing Sync","runAsUser":"integration2@acme.demo","preAuthorizedProfiles":["Integration"]}`)
	app := decode[controlApp](t, body)
	if status != 201 || app.Kind != KindExternalClientApp || !validID(app.ID, "0xI") || app.DeveloperName != "Billing_Sync" ||
		len(app.Consumers) != 1 || !validID(app.Consumers[0].ConsumerID, "888") || len(app.Consumers[0].ClientSecret) != 64 {
		t.Fatalf("create: %d %s", status, body)
	}
	if status, out := clientCredentialsLogin(t, s, app.Consumers[0].ClientID, app.Consumers[0].ClientSecret); status != 200 ||
		!strings.HasSuffix(out["id"].(string), s.UserID(DemoInteg2Username)) {
		t.Fatalf("new app's client credentials: %d %v", status, out)
	}
	admin := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	if _, body := connectDo(t, s, admin, "GET", "65.0", "/apps/oauth/usage", ""); !strings.Contains(body, `"developerName":"Billing_Sync"`) {
		t.Errorf("usage lists the new app: %s", body)
	}
	for _, tc := range []struct {
		body, want string
	}{
		{`{"name":"X","runAsUser":"nobody@acme.demo"}`, "unknown runAsUser"},
		{`{"name":"Y","clientId":"` + DemoClientID + `"}`, "client id used twice"},
		{`{"name":"Z","kind":"gizmo"}`, "kind must be"},
		{`{"name":"Billing Sync"}`, "duplicate id or developerName"},
		{`{"kind":"externalClientApp"}`, "needs a name"},
		{`{"name":"W","secret":"x"}`, "unknown field"},
	} {
		if status, body := controlDo(t, "POST", base+"apps", "application/json", tc.body); status != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s", tc.body, status, body)
		}
	}
	for _, ref := range []string{"Acme_ETL", DemoETLAppID, DemoETLClientID} {
		if status, body := controlDo(t, "GET", base+"apps/"+ref, "", ""); status != 200 || !strings.Contains(body, `"name":"Acme ETL"`) {
			t.Errorf("GET apps/%s: %d %s", ref, status, body)
		}
	}
	if status, _ := controlDo(t, "GET", base+"apps/nope", "", ""); status != 404 {
		t.Errorf("unknown app: %d", status)
	}
	// Org switches.
	status, body = controlDo(t, "PATCH", base+"org", "application/json", `{"stageOverRotated":true,"stagedIdFollowsCredential":true}`)
	settings := decode[OrgSettings](t, body)
	if status != 200 || !settings.StageOverRotated || !settings.StagedIDFollowsCredential || !settings.EnableClientSecretInRESTAPIAccess {
		t.Fatalf("PATCH org: %d %s", status, body)
	}
	if status, body := controlDo(t, "PATCH", base+"org", "application/json", `{"passwordPolicy":{}}`); status != 400 || !strings.Contains(body, "unknown field") {
		t.Errorf("unknown setting: %d %s", status, body)
	}
	// The clock moves for everything: the staged credential expires.
	_, body = connectDo(t, s, admin, "POST", "65.0", etlPath("/staged"), "")
	st := decode[stagedCollectionResp](t, body).StagedCredentials[0]
	before := s.Now()
	if status, body := controlDo(t, "POST", base+"clock", "application/json", `{"advance":"31d"}`); status != 200 || !strings.Contains(body, `"now"`) {
		t.Fatalf("advance: %d %s", status, body)
	}
	if d := s.Now().Sub(before); d < 31*24*time.Hour || d > 31*24*time.Hour+time.Minute {
		t.Errorf("advanced by %s", d)
	}
	if status, _ := clientCredentialsLogin(t, s, st.Key, st.Secret); status != 400 {
		t.Errorf("staged key 31 days later: %d", status)
	}
	if status, body := controlDo(t, "GET", base+"apps/Acme_ETL", "", ""); status != 200 || !strings.Contains(body, `"state":"Expired"`) {
		t.Errorf("control view of the slot: %s", body)
	}
	if status, _ := controlDo(t, "POST", base+"clock", "application/json", `{"advance":"-1h"}`); status != 400 {
		t.Errorf("backwards: %d", status)
	}
}

// After a rotation the previous key still identifies the app as JWT
// bearer issuer until its credential is deleted.
