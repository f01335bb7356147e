package sfapi

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Secrets every client test may send. Each error any client test sees is
// checked against them (and against the session tokens the test adds) by
// checkClientErr, so a leak anywhere in the suite fails the test that
// produced it.
var clientTestSecrets = []string{
	// Literal-response tests.
	"S3cret<&>\"'pw", "TOKEN0123456789abcdefghij", "unit-client-secret", "00Dx0000000001!AQ0AQsecretsession",
	"5Aep861refreshSecret", "00Dx0000000001!AQcurrentAccess",
	// Emulator seed credentials.
	"Admin-Pass-1234", "ADMINTOKEN0000000000000000", "Integ-Pass-1234", "INTEGTOKEN00000000000000000",
	"Trusted-Pass-1234", "TRUSTTOKEN000000000000000", "demo-client-secret",
}

var clientTestSecretsMu sync.Mutex

// addClientTestSecret registers a secret learned during a test (a session
// id, a new password, an emailed token) for all later error checks.
func addClientTestSecret(s string) {
	if len(s) < 4 {
		return
	}
	clientTestSecretsMu.Lock()
	defer clientTestSecretsMu.Unlock()
	clientTestSecrets = append(clientTestSecrets, s)
}

// checkClientErr asserts that err is a *Error whose text holds no secret
// and returns it.
func checkClientErr(t *testing.T, err error, extra ...string) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %q is not a *sfapi.Error", err, err)
	}
	clientTestSecretsMu.Lock()
	secrets := append(append([]string(nil), clientTestSecrets...), extra...)
	clientTestSecretsMu.Unlock()
	text := err.Error()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("error text leaks a secret (%d chars): %q", len(s), text)
		}
	}
	return e
}

func wantKind(t *testing.T, err error, code string, kind ErrorKind) *Error {
	t.Helper()
	e := checkClientErr(t, err)
	if e.Code != code || e.Kind != kind {
		t.Fatalf("got code %q kind %d (%v), want code %q kind %d", e.Code, e.Kind, e, code, kind)
	}
	return e
}

func newTestClient(t *testing.T, loginURL string, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		LoginURL:       loginURL,
		APIVersion:     "66.0",
		SOAPAPIVersion: "64.0",
		ClientID:       "3MVGunitClientId",
		ClientSecret:   "unit-client-secret",
		RequestTimeout: 5 * time.Second,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestClientNewClientValidatesConfig(t *testing.T) {
	bad := []Config{
		{},
		{LoginURL: "login.salesforce.com"},
		{LoginURL: "ftp://login.salesforce.com"},
		{LoginURL: "https://user:pw@login.salesforce.com"},
		{LoginURL: "https://login.salesforce.com?x=1"},
		{LoginURL: "https://login.salesforce.com", APIVersion: "v66"},
		{LoginURL: "https://login.salesforce.com", SOAPAPIVersion: "64.0/../x"},
	}
	for _, cfg := range bad {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted a bad config", cfg)
		} else if strings.Contains(err.Error(), ":pw@") {
			t.Errorf("error quotes the URL user info: %v", err)
		}
	}
	if _, err := New(Config{LoginURL: "https://acme.my.salesforce.com/"}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

func TestClientTimeoutIsTransient(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client hang-up only once the body is read.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.RequestTimeout = 100 * time.Millisecond })
	admin := &Session{AccessToken: "00Dx0000000001!AQcurrentAccess", InstanceURL: srv.URL}

	_, err := c.SOAPLogin(context.Background(), "a@b.c", "S3cret<&>\"'pw")
	wantKind(t, err, "", KindTransient)
	_, err = c.Query(context.Background(), admin, "SELECT Id FROM User WHERE Username = 'x'")
	e := wantKind(t, err, "", KindTransient)
	if strings.Contains(e.Message, "SELECT") || strings.Contains(e.Message, "?") {
		t.Errorf("network error quotes the query string: %q", e.Message)
	}
	// x/oauth2/jwt does not pass its context to the request; the timeout
	// must hold anyway.
	_, err = c.JWTBearerGrant(context.Background(), "a@b.c", testRSAKey(t), nil)
	wantKind(t, err, "", KindTransient)
	_, err = c.PasswordGrant(context.Background(), "a@b.c", "S3cret<&>\"'pw")
	wantKind(t, err, "", KindTransient)
}

func TestClientCallerCancelIsNotTransient(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer close(release)
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := c.SOAPLogin(ctx, "a@b.c", "S3cret<&>\"'pw")
	e := checkClientErr(t, err)
	if e.Kind == KindTransient {
		t.Errorf("a call the caller canceled is reported as transient: %v", e)
	}
}

// dropConnection closes the connection without any answer.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("no hijacker")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestClientDroppedConnectionIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		dropConnection(w)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	admin := &Session{AccessToken: "00Dx0000000001!AQcurrentAccess", InstanceURL: srv.URL}

	_, err := c.SOAPLogin(context.Background(), "a@b.c", "S3cret<&>\"'pw")
	wantKind(t, err, "", KindTransient)
	_, err = c.ClientCredentialsGrant(context.Background(), nil)
	wantKind(t, err, "", KindTransient)
	_, err = c.JWTBearerGrant(context.Background(), "a@b.c", testRSAKey(t), nil)
	wantKind(t, err, "", KindTransient)
	err = c.SetPassword(context.Background(), admin, "005000000000001AAA", "S3cret<&>\"'pw")
	wantKind(t, err, "", KindTransient)
	_, err = c.LookupUser(context.Background(), admin, "o'brien@acme.demo")
	e := wantKind(t, err, "", KindTransient)
	if strings.Contains(e.Message, "brien") {
		t.Errorf("network error quotes the query: %q", e.Message)
	}
}

func TestClientResponseBodyIsSizeLimited(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A valid JSON document larger than the limit: reading it whole
		// would succeed, reading 1 MiB of it cannot.
		io.WriteString(w, `{"totalSize":1,"done":true,"records":[],"pad":"`)
		chunk := strings.Repeat("x", 64<<10)
		for i := 0; i < 32; i++ {
			io.WriteString(w, chunk)
		}
		io.WriteString(w, `"}`)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	_, err := c.Query(context.Background(), &Session{AccessToken: "00Dx0000000001!AQcurrentAccess", InstanceURL: srv.URL}, "SELECT Id FROM Account")
	wantKind(t, err, "", KindOther)
}

func TestClientTLSUsesRootCAs(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, recordedLoginResponse)
	}))
	defer srv.Close()

	untrusting := newTestClient(t, srv.URL)
	_, err := untrusting.SOAPLogin(context.Background(), "a@b.c", "S3cret<&>\"'pw")
	e := wantKind(t, err, "", KindOther)
	if !strings.Contains(e.Message, "certificate") {
		t.Errorf("want a certificate error, got %q", e.Message)
	}

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	trusting := newTestClient(t, srv.URL, func(cfg *Config) { cfg.RootCAs = pool })
	if _, err := trusting.SOAPLogin(context.Background(), "a@b.c", "S3cret<&>\"'pw"); err != nil {
		t.Fatalf("login with the server's CA: %v", err)
	}
}

func TestClientRedirectIsNotFollowed(t *testing.T) {
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	_, err := c.PasswordGrant(context.Background(), "a@b.c", "S3cret<&>\"'pw")
	checkClientErr(t, err)
	mu.Lock()
	defer mu.Unlock()
	if hits != 1 {
		t.Errorf("the credential form was sent %d times; a redirect must not be followed", hits)
	}
}

func TestClientRejectsMalformedIDsBeforeSending(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	admin := &Session{AccessToken: "00Dx0000000001!AQcurrentAccess", InstanceURL: srv.URL}
	for _, id := range []string{"", "005/../../x", "005000000000001' OR Id != '", "005000000000001AAAA"} {
		wantKind(t, c.SetPassword(context.Background(), admin, id, "S3cret<&>\"'pw"), "MALFORMED_ID", KindNotFound)
		_, _, err := c.LoginLocked(context.Background(), admin, id)
		wantKind(t, err, "MALFORMED_ID", KindNotFound)
		wantKind(t, c.UnlockLogin(context.Background(), admin, id), "MALFORMED_ID", KindNotFound)
		_, err = c.PasswordExpired(context.Background(), admin, id)
		wantKind(t, err, "MALFORMED_ID", KindNotFound)
	}
	// No session at all.
	_, err := c.Query(context.Background(), nil, "SELECT Id FROM User")
	wantKind(t, err, "INVALID_SESSION_ID", KindSession)
	_, err = c.UserInfo(context.Background(), &Session{})
	wantKind(t, err, "INVALID_SESSION_ID", KindSession)
}
