package sfapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jwtv5 "github.com/golang-jwt/jwt/v5"
)

var (
	testRSAKeyOnce sync.Once
	testRSAKeyVal  *rsa.PrivateKey
)

func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	testRSAKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testRSAKeyVal = k
	})
	return testRSAKeyVal
}

// tokenServer answers the token endpoint like Salesforce (recorded field
// set, no expires_in) and hands every request's form to check.
type tokenServer struct {
	*httptest.Server
	mu    sync.Mutex
	forms []url.Values
	auth  []string
	// reply overrides the default success answer when set.
	reply func(w http.ResponseWriter, form url.Values)
}

func newTokenServer(t *testing.T, secret string) *tokenServer {
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/services/oauth2/token" || r.URL.RawQuery != "" {
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("form: %v", err)
		}
		ts.mu.Lock()
		ts.forms = append(ts.forms, r.PostForm)
		ts.auth = append(ts.auth, r.Header.Get("Authorization"))
		reply := ts.reply
		ts.mu.Unlock()
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		if reply != nil {
			reply(w, r.PostForm)
			return
		}
		id := "https://login.salesforce.com/id/00D36000001HDi3EAG/00536000002PmoeAAC"
		issued := "1468448630767"
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(id + issued))
		json.NewEncoder(w).Encode(map[string]string{
			"access_token": "00Dx0000000001!AQcurrentAccess",
			"signature":    base64.StdEncoding.EncodeToString(mac.Sum(nil)),
			"scope":        "refresh_token full",
			"instance_url": "https://naXX.salesforce.com",
			"id":           id,
			"token_type":   "Bearer",
			"issued_at":    issued,
		})
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) lastForm(t *testing.T) (url.Values, string) {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.forms) == 0 {
		t.Fatal("no token request")
	}
	return ts.forms[len(ts.forms)-1], ts.auth[len(ts.auth)-1]
}

func checkRecordedSession(t *testing.T, s *Session) {
	t.Helper()
	want := Session{
		AccessToken: "00Dx0000000001!AQcurrentAccess",
		InstanceURL: "https://naXX.salesforce.com",
		ID:          "https://login.salesforce.com/id/00D36000001HDi3EAG/00536000002PmoeAAC",
		OrgID:       "00D36000001HDi3EAG",
		UserID:      "00536000002PmoeAAC",
		TokenType:   "Bearer",
		Scope:       "refresh_token full",
		IssuedAt:    time.UnixMilli(1468448630767),
		Signature:   s.Signature,
	}
	got := *s
	got.RefreshToken = ""
	if !got.IssuedAt.Equal(want.IssuedAt) {
		t.Errorf("IssuedAt %v, want %v", got.IssuedAt, want.IssuedAt)
	}
	got.IssuedAt = want.IssuedAt
	if got != want {
		t.Errorf("session\n got %+v\nwant %+v", got, want)
	}
	if s.Signature == "" {
		t.Error("signature not kept")
	}
}

func TestClientPasswordGrantRequestAndSession(t *testing.T) {
	ts := newTokenServer(t, "unit-client-secret")
	c := newTestClient(t, ts.URL)
	s, err := c.PasswordGrant(context.Background(), "user@acme.demo", "S3cret<&>\"'pw"+"TOKEN0123456789abcdefghij")
	if err != nil {
		t.Fatalf("PasswordGrant: %v", err)
	}
	checkRecordedSession(t, s)
	form, auth := ts.lastForm(t)
	want := url.Values{
		"grant_type":    {"password"},
		"client_id":     {"3MVGunitClientId"},
		"client_secret": {"unit-client-secret"},
		"username":      {"user@acme.demo"},
		"password":      {"S3cret<&>\"'pw" + "TOKEN0123456789abcdefghij"},
	}
	if form.Encode() != want.Encode() {
		t.Errorf("form %v, want %v", form, want)
	}
	if auth != "" {
		t.Errorf("client credentials must go in the body only, got Authorization %q", auth)
	}
}

func TestClientClientCredentialsGrantRequest(t *testing.T) {
	ts := newTokenServer(t, "unit-client-secret")
	s, err := newTestClient(t, ts.URL).ClientCredentialsGrant(context.Background(), []string{"api"})
	if err != nil {
		t.Fatalf("ClientCredentialsGrant: %v", err)
	}
	checkRecordedSession(t, s)
	form, auth := ts.lastForm(t)
	want := url.Values{"grant_type": {"client_credentials"}, "client_id": {"3MVGunitClientId"},
		"client_secret": {"unit-client-secret"}, "scope": {"api"}}
	if form.Encode() != want.Encode() || auth != "" {
		t.Errorf("form %v auth %q, want %v in the body", form, auth, want)
	}
}

func TestClientRefreshTokenGrantRequest(t *testing.T) {
	ts := newTokenServer(t, "unit-client-secret")
	s, err := newTestClient(t, ts.URL).RefreshTokenGrant(context.Background(), "5Aep861refreshSecret", nil)
	if err != nil {
		t.Fatalf("RefreshTokenGrant: %v", err)
	}
	checkRecordedSession(t, s)
	if s.RefreshToken != "5Aep861refreshSecret" {
		t.Errorf("refresh token not kept in the session (Salesforce issues no new one)")
	}
	form, _ := ts.lastForm(t)
	want := url.Values{"grant_type": {"refresh_token"}, "client_id": {"3MVGunitClientId"},
		"client_secret": {"unit-client-secret"}, "refresh_token": {"5Aep861refreshSecret"}}
	if form.Encode() != want.Encode() {
		t.Errorf("form %v, want %v", form, want)
	}
}

func TestClientJWTBearerAssertion(t *testing.T) {
	ts := newTokenServer(t, "unit-client-secret")
	key := testRSAKey(t)
	c := newTestClient(t, ts.URL)
	before := time.Now()
	s, err := c.JWTBearerGrant(context.Background(), "user@acme.demo", key, nil)
	if err != nil {
		t.Fatalf("JWTBearerGrant: %v", err)
	}
	checkRecordedSession(t, s)
	form, _ := ts.lastForm(t)
	if form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		t.Errorf("grant_type %q", form.Get("grant_type"))
	}
	if form.Has("client_secret") {
		t.Error("JWT bearer must not send the client secret")
	}
	tok, err := jwtv5.Parse(form.Get("assertion"), func(tk *jwtv5.Token) (any, error) { return &key.PublicKey, nil },
		jwtv5.WithValidMethods([]string{"RS256"}))
	if err != nil || !tok.Valid {
		t.Fatalf("assertion does not verify with the public key: %v", err)
	}
	claims := tok.Claims.(jwtv5.MapClaims)
	if claims["iss"] != "3MVGunitClientId" || claims["sub"] != "user@acme.demo" || claims["aud"] != ts.URL {
		t.Errorf("claims iss=%v sub=%v aud=%v", claims["iss"], claims["sub"], claims["aud"])
	}
	exp, _ := claims.GetExpirationTime()
	if exp == nil || exp.Time.After(before.Add(3*time.Minute+time.Second)) {
		t.Errorf("exp %v is not within Salesforce's 3 minutes", exp)
	}
}

func TestClientJWTAudience(t *testing.T) {
	tests := map[string]string{
		"https://login.salesforce.com":                "https://login.salesforce.com",
		"https://test.salesforce.com":                 "https://test.salesforce.com",
		"https://acme.my.salesforce.com":              "https://login.salesforce.com",
		"https://acme--dev.sandbox.my.salesforce.com": "https://test.salesforce.com",
		"https://acme.my.site.com/customers":          "https://acme.my.site.com/customers",
		"http://127.0.0.1:8443":                       "http://127.0.0.1:8443",
	}
	for login, want := range tests {
		c := newTestClient(t, login)
		if got := c.jwtAudience(); got != want {
			t.Errorf("audience for %s = %q, want %q", login, got, want)
		}
	}
	c := newTestClient(t, "https://acme.my.salesforce.com", func(cfg *Config) { cfg.Audience = "https://x.example" })
	if got := c.jwtAudience(); got != "https://x.example" {
		t.Errorf("configured audience ignored: %q", got)
	}
}

func TestClientTokenSignatureMismatchIsRejected(t *testing.T) {
	ts := newTokenServer(t, "some-other-secret")
	_, err := newTestClient(t, ts.URL).PasswordGrant(context.Background(), "user@acme.demo", "S3cret<&>\"'pw")
	wantKind(t, err, "invalid_signature", KindOther)
}

func TestClientOAuthErrors(t *testing.T) {
	tests := []struct {
		status int
		body   string
		code   string
		kind   ErrorKind
		msg    string
	}{
		{400, `{"error":"invalid_grant","error_description":"authentication failure"}`, "invalid_grant", KindCredentials, "authentication failure"},
		{400, `{"error":"invalid_grant","error_description":"expired access/refresh token"}`, "invalid_grant", KindCredentials, "expired access/refresh token"},
		{400, `{"error":"invalid_grant","error_description":"request not supported on this domain"}`, "invalid_grant", KindPermission, "request not supported on this domain"},
		{400, `{"error":"invalid_grant","error_description":"no client credentials user enabled"}`, "invalid_grant", KindPermission, "no client credentials user enabled"},
		{400, `{"error":"invalid_grant","error_description":"user hasn't approved this consumer"}`, "invalid_grant", KindPermission, "user hasn't approved this consumer"},
		{400, `{"error":"invalid_client_id","error_description":"client identifier invalid"}`, "invalid_client_id", KindCredentials, "client identifier invalid"},
		{400, `{"error":"invalid_client","error_description":"invalid client credentials"}`, "invalid_client", KindCredentials, "invalid client credentials"},
		{400, `{"error":"unsupported_grant_type","error_description":"grant type not supported"}`, "unsupported_grant_type", KindPermission, "grant type not supported"},
		{400, `{"error":"inactive_user","error_description":"inactive user"}`, "inactive_user", KindCredentials, "inactive user"},
		{400, `{"error":"rate_limit_exceeded","error_description":"rate limit exceeded"}`, "rate_limit_exceeded", KindTransient, "rate limit exceeded"},
		{503, `<html>maintenance</html>`, "", KindTransient, "unexpected HTTP status 503 Service Unavailable"},
		{500, `{"error":"server_error","error_description":"oops"}`, "server_error", KindTransient, "oops"},
	}
	for _, tc := range tests {
		t.Run(tc.code+"/"+tc.msg, func(t *testing.T) {
			ts := newTokenServer(t, "unit-client-secret")
			ts.reply = func(w http.ResponseWriter, _ url.Values) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}
			c := newTestClient(t, ts.URL)
			calls := map[string]func() error{
				"oauth token (password)": func() error {
					_, err := c.PasswordGrant(context.Background(), "u@acme.demo", "S3cret<&>\"'pw")
					return err
				},
				"oauth token (client_credentials)": func() error { _, err := c.ClientCredentialsGrant(context.Background(), nil); return err },
				"oauth token (jwt_bearer)": func() error {
					_, err := c.JWTBearerGrant(context.Background(), "u@acme.demo", testRSAKey(t), nil)
					return err
				},
				"oauth token (refresh_token)": func() error {
					_, err := c.RefreshTokenGrant(context.Background(), "5Aep861refreshSecret", nil)
					return err
				},
			}
			for op, call := range calls {
				e := wantKind(t, call(), tc.code, tc.kind)
				if e.Op != op || e.Message != tc.msg || e.HTTPStatus != tc.status {
					t.Errorf("%s: got op %q status %d message %q", op, e.Op, e.HTTPStatus, e.Message)
				}
			}
		})
	}
}

func TestClientRevokeIntrospectUserInfoRequests(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]*http.Request{}
	forms := map[string]url.Values{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		seen[r.URL.Path], forms[r.URL.Path] = r, r.PostForm
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/services/oauth2/revoke":
			if r.PostForm.Get("token") == "gone" {
				w.WriteHeader(400)
				io.WriteString(w, `{"error":"invalid_token","error_description":"Invalid token"}`)
			}
		case "/services/oauth2/introspect":
			if r.PostForm.Get("token") == "00Dx0000000001!AQcurrentAccess" {
				io.WriteString(w, `{"active":true,"scope":"api refresh_token","client_id":"3MVGunitClientId","username":"user@acme.demo","sub":"https://login.salesforce.com/id/00D36000001HDi3EAG/00536000002PmoeAAC","token_type":"access_token","exp":1767229200,"iat":1767222000,"nbf":1767222000}`)
			} else {
				io.WriteString(w, `{"active":false}`)
			}
		case "/services/oauth2/userinfo":
			if r.Header.Get("Authorization") != "Bearer 00Dx0000000001!AQcurrentAccess" {
				w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
				w.WriteHeader(403)
				io.WriteString(w, `Bad_OAuth_Token`)
				return
			}
			io.WriteString(w, `{"sub":"https://login.salesforce.com/id/00D36000001HDi3EAG/00536000002PmoeAAC","user_id":"00536000002PmoeAAC","organization_id":"00D36000001HDi3EAG","preferred_username":"user@acme.demo","email":"user@acme.example","email_verified":true,"active":true,"user_type":"STANDARD"}`)
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx := context.Background()

	if err := c.Revoke(ctx, "00Dx0000000001!AQcurrentAccess"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if r := seen["/services/oauth2/revoke"]; r.Method != http.MethodPost || r.URL.RawQuery != "" ||
		forms["/services/oauth2/revoke"].Get("token") != "00Dx0000000001!AQcurrentAccess" {
		t.Errorf("revoke sent %s ?%s form %v; the token must go in a POST body", r.Method, r.URL.RawQuery, forms["/services/oauth2/revoke"])
	}
	wantKind(t, c.Revoke(ctx, "gone"), "invalid_token", KindSession)

	in, err := c.Introspect(ctx, "00Dx0000000001!AQcurrentAccess")
	if err != nil {
		t.Fatalf("Introspect: %v", err)
	}
	f := forms["/services/oauth2/introspect"]
	if f.Get("token_type_hint") != "access_token" || f.Get("client_id") != "3MVGunitClientId" || f.Get("client_secret") != "unit-client-secret" {
		t.Errorf("introspect form %v", f)
	}
	want := Introspection{Active: true, Username: "user@acme.demo", Scope: "api refresh_token", ClientID: "3MVGunitClientId",
		Expires: time.Unix(1767229200, 0), IssuedAt: time.Unix(1767222000, 0)}
	if *in != want {
		t.Errorf("introspection %+v, want %+v", *in, want)
	}
	if in, err := c.Introspect(ctx, "other"); err != nil || in.Active {
		t.Errorf("inactive token: %+v %v", in, err)
	}

	// UserInfo goes to the session's instance; with none, to the login host.
	ui, err := c.UserInfo(ctx, &Session{AccessToken: "00Dx0000000001!AQcurrentAccess"})
	if err != nil {
		t.Fatalf("UserInfo: %v", err)
	}
	wantUI := UserInfo{UserID: "00536000002PmoeAAC", OrganizationID: "00D36000001HDi3EAG", Username: "user@acme.demo", Email: "user@acme.example", Active: true}
	if *ui != wantUI {
		t.Errorf("userinfo %+v, want %+v", *ui, wantUI)
	}
	_, err = c.UserInfo(ctx, &Session{AccessToken: "00Dx0000000001!AQ0AQsecretsession", InstanceURL: srv.URL})
	wantKind(t, err, "Bad_OAuth_Token", KindSession)
}

func TestClientParseIdentityURL(t *testing.T) {
	tests := map[string][2]string{
		"https://login.salesforce.com/id/00D36000001HDi3EAG/00536000002PmoeAAC": {"00D36000001HDi3EAG", "00536000002PmoeAAC"},
		"https://acme.my.salesforce.com/id/00D36000001HDi3/00536000002Pmoe":     {"00D36000001HDi3", "00536000002Pmoe"},
		"https://login.salesforce.com/id/00D/005":                               {"", ""},
		"": {"", ""},
	}
	for in, want := range tests {
		org, user := parseIdentityURL(in)
		if org != want[0] || user != want[1] {
			t.Errorf("parseIdentityURL(%q) = %q, %q", in, org, user)
		}
	}
}

func TestClientTokenResponseWithoutSignatureOrIssuedAt(t *testing.T) {
	// The JWT bearer answer may lack signature and issued_at.
	ts := newTokenServer(t, "unit-client-secret")
	ts.reply = func(w http.ResponseWriter, _ url.Values) {
		io.WriteString(w, `{"access_token":"00Dx0000000001!AQcurrentAccess","scope":"id full","instance_url":"https://acme.my.salesforce.com/","id":"https://login.salesforce.com/id/00D36000001HDi3EAG/00536000002PmoeAAC","token_type":"Bearer"}`)
	}
	s, err := newTestClient(t, ts.URL).JWTBearerGrant(context.Background(), "u@acme.demo", testRSAKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.InstanceURL != "https://acme.my.salesforce.com" || !s.IssuedAt.IsZero() || s.Signature != "" || s.UserID != "00536000002PmoeAAC" {
		t.Errorf("session %+v", s)
	}
	if strings.Contains(s.InstanceURL, "//acme.my.salesforce.com/") {
		t.Error("trailing slash kept")
	}
}
