package sfapi

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The harness behind the fuzz targets in fuzz_test.go: a server that answers
// with the fuzzed reply, and the checks every answer must pass.

// Secrets the fuzz harness sends. Each carries characters every encoding
// changes (<&>"'+%/ and a space), so an echo in any form is told apart
// from the plain value.
const (
	fuzzUser         = "fuzz.user@acme.demo"
	fuzzPassword     = `Fz-Pass<&>"'+% /9`
	fuzzToken        = "FUZZTOKEN0000000000000000"
	fuzzNewPassword  = `Fz-New<&>"'+% /7`
	fuzzSession      = `00Dfuzz000000001!AQfuzz.session+/=`
	fuzzRefresh      = `5AepFuzzRefresh+/=00`
	fuzzClientSecret = `fuzz-client-secret<&>+"`
	fuzzRevokeToken  = `00Dfuzz000000001!AQrevoke+/=`
	fuzzUserID       = "005000000000001AAA"
	fuzzUserLoginID  = "060000000000001AAA"
)

// fuzzReply is what the fuzz server answers.
type fuzzReply struct {
	status int
	ctype  string
	body   []byte
	// pad follows the body with this many bytes of whitespace.
	pad int
}

// fuzzServer answers every request with the current reply, after
// replacing the echo macros (fuzzMacros) with what the request carried.
type fuzzServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	rep fuzzReply
	// seen holds the secret values of the last requests (form fields,
	// SOAP elements, the JSON password, the bearer token), as received.
	seen []string
	// inflight counts handlers still running; a call is over when its
	// handler is, so no work of one input spills into the next.
	inflight atomic.Int32
}

// fuzzMacros are the placeholders a fuzzed body may hold; the server
// replaces each with the request's secrets in one encoding, or with the
// whole request. They let the fuzzer build answers that echo what was
// sent, as a careless proxy or a hostile server would.
var fuzzMacros = []string{"{{S}}", "{{SQ}}", "{{SP}}", "{{SX}}", "{{SJ}}", "{{SN}}", "{{REQ}}"}

// secretForms are the encodings of s a server may echo: plain, URL query
// and path escaped, XML escaped, JSON escaped with and without HTML
// escaping.
func secretForms(s string) []string {
	var xs strings.Builder
	_ = xml.EscapeText(&xs, []byte(s))
	js, _ := json.Marshal(s)
	var nb bytes.Buffer
	enc := json.NewEncoder(&nb)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return []string{
		s,
		url.QueryEscape(s),
		url.PathEscape(s),
		xs.String(),
		strings.Trim(string(js), `"`),
		strings.Trim(strings.TrimSpace(nb.String()), `"`),
	}
}

func newFuzzServer(f *testing.F) *fuzzServer {
	fs := &fuzzServer{}
	fs.srv = httptest.NewUnstartedServer(http.HandlerFunc(fs.serve))
	// A fresh connection per request keeps the code paths, and so the
	// coverage the fuzzer steers by, the same for the same input.
	fs.srv.Config.SetKeepAlivesEnabled(false)
	fs.srv.Start()
	f.Cleanup(fs.srv.Close)
	return fs
}

func (fs *fuzzServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.inflight.Add(1)
	defer fs.inflight.Add(-1)
	reqBody, _ := io.ReadAll(r.Body)
	secrets := requestSecrets(r, reqBody)
	fs.mu.Lock()
	fs.seen = append(fs.seen, secrets...)
	rep := fs.rep
	fs.mu.Unlock()

	body := rep.body
	if bytes.Contains(body, []byte("{{")) {
		enc := make([][]string, 6)
		for _, s := range secrets {
			for i, form := range secretForms(s) {
				enc[i] = append(enc[i], form)
			}
		}
		for i, m := range fuzzMacros[:6] {
			body = bytes.ReplaceAll(body, []byte(m), []byte(strings.Join(enc[i], " ")))
		}
		echo := string(reqBody) + " " + r.Header.Get("Authorization") + " " + r.URL.RawQuery
		body = bytes.ReplaceAll(body, []byte("{{REQ}}"), []byte(echo))
	}
	if rep.ctype != "" {
		w.Header().Set("Content-Type", rep.ctype)
	}
	w.WriteHeader(rep.status)
	w.Write(body)
	if rep.pad > 0 {
		w.Write(bytes.Repeat([]byte(" "), rep.pad))
	}
}

// requestSecrets extracts every credential a request carries, the way
// the receiving server decodes it.
func requestSecrets(r *http.Request, body []byte) []string {
	var out []string
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		out = append(out, strings.TrimPrefix(a, "Bearer "))
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		form, _ := url.ParseQuery(string(body))
		for _, k := range []string{"password", "client_secret", "refresh_token", "assertion", "token", "code"} {
			out = append(out, form[k]...)
		}
	case strings.HasPrefix(ct, "text/xml"):
		var env struct {
			SessionID   string `xml:"Header>SessionHeader>sessionId"`
			Password    string `xml:"Body>login>password"`
			OldPassword string `xml:"Body>changeOwnPassword>oldPassword"`
			NewPassword string `xml:"Body>changeOwnPassword>newPassword"`
		}
		_ = xml.Unmarshal(body, &env)
		out = append(out, env.SessionID, env.Password, env.OldPassword, env.NewPassword)
	case strings.HasPrefix(ct, "application/json"):
		var p struct{ NewPassword string }
		_ = json.Unmarshal(body, &p)
		out = append(out, p.NewPassword)
	}
	kept := out[:0]
	for _, s := range out {
		if s != "" {
			kept = append(kept, s)
		}
	}
	return kept
}

// fuzzStatuses are the statuses a fuzz input picks from by index; other
// values are taken as they come when they are a valid final status.
var fuzzStatuses = []int{200, 200, 400, 401, 403, 404, 500, 201, 204, 302, 405, 415, 429, 502, 503}

func fuzzStatus(s uint16) int {
	if int(s) < len(fuzzStatuses) {
		return fuzzStatuses[s]
	}
	if s >= 200 && s <= 599 {
		return int(s)
	}
	return fuzzStatuses[int(s)%len(fuzzStatuses)]
}

var fuzzContentTypes = []string{
	"text/xml; charset=utf-8", "application/json;charset=UTF-8", "application/x-www-form-urlencoded",
	"text/plain", "text/html", "", "application/xml", "application/json",
}

// countingTransport counts the response bytes the client consumes.
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	max  int64
}

func (ct *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := ct.base.RoundTrip(req)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, ct: ct}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	ct *countingTransport
	n  int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	b.ct.mu.Lock()
	b.ct.max = max(b.ct.max, b.n)
	b.ct.mu.Unlock()
	return n, err
}

// fuzzCall is one client call a target exercises.
type fuzzCall struct {
	// op is the Op its errors must name.
	op string
	// run makes the call; ok is the success property, checked when the
	// call succeeds ("" when it holds).
	run func(ctx context.Context, c *Client) (result any, err error)
	ok  func(result any) string
}

// fuzzHarness runs one target's calls against one server.
type fuzzHarness struct {
	fs      *fuzzServer
	client  *Client
	counter *countingTransport
	calls   []fuzzCall
}

func newFuzzHarness(f *testing.F, calls []fuzzCall) *fuzzHarness {
	fs := newFuzzServer(f)
	c, err := New(Config{
		LoginURL:       fs.srv.URL,
		ClientID:       "3MVGfuzzClientId",
		ClientSecret:   fuzzClientSecret,
		RequestTimeout: 5 * time.Second,
	})
	if err != nil {
		f.Fatalf("New: %v", err)
	}
	ct := &countingTransport{base: c.transport}
	c.transport = ct
	return &fuzzHarness{fs: fs, client: c, counter: ct, calls: calls}
}

func (h *fuzzHarness) do(t *testing.T, call fuzzCall, rep fuzzReply) (any, error) {
	h.fs.mu.Lock()
	h.fs.rep = rep
	h.fs.seen = nil
	h.fs.mu.Unlock()
	h.counter.mu.Lock()
	h.counter.max = 0
	h.counter.mu.Unlock()
	done := make(chan struct{})
	var res any
	var err error
	go func() {
		defer close(done)
		res, err = call.run(context.Background(), h.client)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no return within 20s (request timeout is 5s)", call.op)
	}
	for i := 0; h.fs.inflight.Load() > 0 && i < 2000; i++ {
		time.Sleep(time.Millisecond)
	}
	return res, err
}

// run is the body of every response fuzz target.
func (h *fuzzHarness) run(t *testing.T, which uint8, status uint16, ctype uint8, huge bool, body []byte) {
	call := h.calls[int(which)%len(h.calls)]
	rep := fuzzReply{
		status: fuzzStatus(status),
		ctype:  fuzzContentTypes[int(ctype)%len(fuzzContentTypes)],
		body:   body,
	}
	if huge {
		rep.pad = clientMaxResponseBytes + 4096
	}
	res, err := h.do(t, call, rep)
	h.fs.mu.Lock()
	seen := append([]string(nil), h.fs.seen...)
	h.fs.mu.Unlock()
	h.counter.mu.Lock()
	read := h.counter.max
	h.counter.mu.Unlock()
	if read > clientMaxResponseBytes {
		t.Errorf("%s read %d bytes of a %d-byte answer; the limit is %d", call.op, read, len(body)+rep.pad, clientMaxResponseBytes)
	}
	if err == nil {
		if call.ok != nil {
			if msg := call.ok(res); msg != "" {
				t.Errorf("%s succeeded with status %d: %s (result %+v)", call.op, rep.status, msg, res)
			}
		}
		return
	}
	checkFuzzErr(t, call.op, rep.status, err, seen)
}

// Salesforce codes that justify each kind; a kind without its evidence is
// a guess, and guesses are costly: a garbage answer taken for a rejected
// credential spends the user's failed-login allowance, one taken for an
// outage is retried.
var (
	fuzzCredentialCodes = map[string]bool{
		"INVALID_LOGIN": true, "LOGIN_MUST_USE_SECURITY_TOKEN": true, "PASSWORD_LOCKOUT": true,
		"INACTIVE_OWNER_OR_USER": true, "INVALID_OLD_PASSWORD": true,
		"invalid_grant": true, "invalid_client_id": true, "invalid_client": true, "invalid_app_access": true,
		"inactive_user": true,
	}
	fuzzTransientCodes = map[string]bool{
		"REQUEST_LIMIT_EXCEEDED": true, "SERVER_UNAVAILABLE": true, "SSO_SERVICE_DOWN": true,
		"UNABLE_TO_LOCK_ROW": true, "LOGIN_RATE_EXCEEDED": true,
		"rate_limit_exceeded": true, "server_error": true, "temporarily_unavailable": true,
	}
	fuzzSessionCodes = map[string]bool{
		"INVALID_SESSION_ID": true, "invalid_token": true, "Bad_OAuth_Token": true, "Missing_OAuth_Token": true,
	}
	fuzzNotFoundCodes = map[string]bool{
		"NOT_FOUND": true, "INVALID_ID_FIELD": true, "MALFORMED_ID": true,
		"INVALID_CROSS_REFERENCE_KEY": true, "ENTITY_IS_DELETED": true,
	}
)

// checkFuzzErr asserts the error properties for a call that got status.
func checkFuzzErr(t *testing.T, op string, status int, err error, sent []string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %T %q is not a *sfapi.Error", op, err, err)
	}
	if e.Op != op {
		t.Errorf("%s: error names op %q", op, e.Op)
	}
	if e.HTTPStatus != 0 && e.HTTPStatus != status {
		t.Errorf("%s: error says HTTP %d, the server answered %d", op, e.HTTPStatus, status)
	}
	if msg := checkFuzzKind(e, status); msg != "" {
		t.Errorf("%s: status %d, error %q: %s", op, status, e, msg)
	}
	text := err.Error()
	for _, s := range append(sent, fuzzPassword, fuzzPassword+fuzzToken, fuzzNewPassword, fuzzSession,
		fuzzRefresh, fuzzClientSecret, fuzzRevokeToken) {
		for _, form := range secretForms(s) {
			if strings.Contains(text, form) {
				t.Errorf("%s: error text echoes a secret the call sent (%d chars, as %q): %q", op, len(s), form, text)
			}
		}
	}
}

// checkFuzzKind returns why e's kind is not justified by the answer, or "".
func checkFuzzKind(e *Error, status int) string {
	code := e.Code
	switch e.Kind {
	case KindOther:
	case KindCredentials:
		if !fuzzCredentialCodes[code] && !strings.HasPrefix(code, "LOGIN_CHALLENGE_") {
			return "credential kind without a credential code"
		}
	case KindTransient:
		if status < 500 && status != http.StatusTooManyRequests && !fuzzTransientCodes[code] {
			return "transient kind for a 2xx-4xx answer without a transient code"
		}
	case KindSession:
		if status != http.StatusUnauthorized && !fuzzSessionCodes[code] {
			return "session kind without 401 or a session code"
		}
	case KindPassword:
		if code != "INVALID_NEW_PASSWORD" {
			return "password kind without INVALID_NEW_PASSWORD"
		}
	case KindPermission:
		if status != http.StatusForbidden && code == "" {
			return "permission kind without 403 or a code"
		}
	case KindNotFound:
		if status != http.StatusNotFound && !fuzzNotFoundCodes[code] {
			return "not-found kind without 404 or a not-found code"
		}
	default:
		return fmt.Sprintf("unknown kind %d", e.Kind)
	}
	return ""
}

// sessionOK is the success property of calls that return a Session.
func sessionOK(res any) string {
	s, _ := res.(*Session)
	if s == nil {
		return "nil session"
	}
	if s.AccessToken == "" {
		return "no access token"
	}
	// Ids are stored on the account and go into REST paths.
	for _, id := range []string{s.UserID, s.OrgID} {
		if id != "" && !sfIDPattern.MatchString(id) {
			return fmt.Sprintf("id %q is not a Salesforce id", id)
		}
	}
	if s.InstanceURL == "" {
		return ""
	}
	u, err := url.Parse(s.InstanceURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return fmt.Sprintf("instance URL %q is not http(s) with a host and no user info, query or fragment", s.InstanceURL)
	}
	return ""
}

func fuzzAdmin(srvURL string) *Session {
	return &Session{AccessToken: fuzzSession, InstanceURL: srvURL}
}

// addFuzzSeeds adds every body under every status and content type the
// seeds name; which selects the call.
func addFuzzSeeds(f *testing.F, which uint8, bodies ...string) {
	for _, b := range bodies {
		for _, st := range []uint16{0, 2, 3, 6} { // 200, 400, 401, 500
			f.Add(which, st, uint8(0), false, []byte(b))
			f.Add(which, st, uint8(1), false, []byte(b))
		}
	}
}
