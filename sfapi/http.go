// Package sfapi is the Salesforce wire client: SOAP partner API, OAuth 2.0
// flows and REST calls, with errors sorted by what a caller should do next.
// It knows nothing of Vault; the engine reaches it through the small Client
// interface of the root package.
package sfapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

const (
	// clientMaxResponseBytes bounds every response body we read: Salesforce's
	// answers to our calls are a few KiB, and an unbounded read would let a
	// broken proxy exhaust the plugin's memory.
	clientMaxResponseBytes = 1 << 20

	clientDefaultRequestTimeout = 30 * time.Second
	clientDefaultAPIVersion     = "66.0"
	clientDefaultSOAPAPIVersion = "64.0"
	// clientMaxIdleConnsPerHost is how many connections to one host stay
	// open between calls.
	clientMaxIdleConnsPerHost = 64
)

var clientAPIVersionPattern = regexp.MustCompile(`^[0-9]{2,3}\.[0-9]$`)

// Client speaks to one org over HTTP. It keeps no mutable state besides the
// shared transport, so one value serves concurrent requests.
type Client struct {
	cfg       Config
	loginURL  *url.URL
	transport http.RoundTripper
}

// New checks cfg and returns a Client for one org. It does not
// contact Salesforce.
func New(cfg Config) (*Client, error) {
	cfg.LoginURL = strings.TrimRight(strings.TrimSpace(cfg.LoginURL), "/")
	if cfg.LoginURL == "" {
		return nil, errors.New("salesforce client: login URL is required")
	}
	u, err := url.Parse(cfg.LoginURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("salesforce client: login URL %q must be an absolute http(s) URL", redactClientURL(cfg.LoginURL))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("salesforce client: login URL must not carry user info, a query or a fragment")
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = clientDefaultAPIVersion
	}
	if cfg.SOAPAPIVersion == "" {
		cfg.SOAPAPIVersion = clientDefaultSOAPAPIVersion
	}
	for _, v := range []string{cfg.APIVersion, cfg.SOAPAPIVersion} {
		if !clientAPIVersionPattern.MatchString(v) {
			return nil, fmt.Errorf("salesforce client: API version %q must look like 66.0", v)
		}
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = clientDefaultRequestTimeout
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Rotations run concurrently against one host (max_concurrent_rotations,
	// up to dozens): keep that many connections open instead of Go's
	// default 2, so calls do not pay a new TCP and TLS handshake each.
	tr.MaxIdleConnsPerHost = clientMaxIdleConnsPerHost
	tr.TLSClientConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    cfg.RootCAs,
	}
	return &Client{cfg: cfg, loginURL: u, transport: tr}, nil
}

// httpClient returns an http.Client that records transport failures in rec,
// so that errors surfacing through golang.org/x/oauth2 (which flattens them
// to strings) can still be classified. Redirects are not followed: none of
// our calls should be redirected, and following one would re-send a form
// that carries credentials to another place.
func (c *Client) httpClient(rec *transportRecorder) *http.Client {
	rt := c.transport
	if rec != nil {
		rec.base = c.transport
		rt = rec
	}
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// transportRecorder remembers the last transport error and the request it
// belonged to.
type transportRecorder struct {
	// ctx bounds every request of the call: x/oauth2/jwt posts without
	// passing its context to the request.
	ctx    context.Context
	base   http.RoundTripper
	err    error
	method string
	url    string
	// sent holds the credential values of the forms x/oauth2 posted (the
	// JWT assertion among them), so that errors can be scrubbed of them.
	sent []string
}

// sensitiveFormFields are the form fields whose values are credentials.
var sensitiveFormFields = []string{"password", "client_secret", "refresh_token", "assertion", "token", "code"}

func (r *transportRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.ctx != nil {
		req = req.WithContext(r.ctx)
	}
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(io.LimitReader(rc, clientMaxResponseBytes))
			rc.Close()
			if form, err := url.ParseQuery(string(b)); err == nil {
				for _, k := range sensitiveFormFields {
					r.sent = append(r.sent, form[k]...)
				}
			}
		}
	}
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		r.err, r.method, r.url = err, req.Method, req.URL.String()
	}
	return resp, err
}

// withTimeout bounds one call by RequestTimeout on top of the caller's ctx.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, c.cfg.RequestTimeout)
}

// clientHTTPResponse is a fully read, size-limited response.
type clientHTTPResponse struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request within RequestTimeout and reads at most
// clientMaxResponseBytes of the answer. A non-nil *Error is always a failure to
// get an answer; HTTP error statuses are left to the caller.
func (c *Client) do(ctx context.Context, op, method, rawURL string, header http.Header, body []byte) (*clientHTTPResponse, *Error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, &Error{Op: op, Message: "cannot build request for " + redactClientURL(rawURL), Kind: KindOther}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.httpClient(nil).Do(req)
	if err != nil {
		return nil, c.transportError(ctx, op, method, rawURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, clientMaxResponseBytes))
	if err != nil {
		e := c.transportError(ctx, op, method, rawURL, err)
		e.HTTPStatus = resp.StatusCode
		return nil, e
	}
	return &clientHTTPResponse{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// transportError turns a failure to reach Salesforce or to read its answer
// into a *Error. The message names the method and the URL without query or
// user info; net/http's own text is not used because it quotes the full URL.
func (c *Client) transportError(ctx context.Context, op, method, rawURL string, err error) *Error {
	where := method + " " + redactClientURL(rawURL)
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled:
		// The caller gave up; retrying on its behalf would be wrong.
		return &Error{Op: op, Message: where + ": request canceled", Kind: KindOther}
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return &Error{Op: op, Message: fmt.Sprintf("%s: no answer within %s", where, c.cfg.RequestTimeout), Kind: KindTransient}
	case errors.As(err, &ne) && ne.Timeout():
		return &Error{Op: op, Message: fmt.Sprintf("%s: timeout", where), Kind: KindTransient}
	case isCertificateError(err):
		// A certificate we do not trust will not become trusted by retrying.
		return &Error{Op: op, Message: where + ": " + innerNetError(err), Kind: KindOther}
	}
	return &Error{Op: op, Message: where + ": " + innerNetError(err), Kind: KindTransient}
}

func isCertificateError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr)
}

// innerNetError describes a network failure without the *url.Error prefix
// (which quotes the URL, query included).
func innerNetError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed by server"
	}
	msg := err.Error()
	// Paranoia: nothing below url.Error should quote the URL, but if
	// something does, cut it at the first query.
	if i := strings.IndexByte(msg, '?'); i >= 0 {
		msg = msg[:i] + "?[redacted]"
	}
	return msg
}

// redactClientURL drops user info, query and fragment from a URL for messages.
func redactClientURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i]
		}
		return raw
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}

// scrubSecrets replaces every secret, also in its URL-, XML- and
// JSON-escaped forms, in the error's text. Salesforce's messages are not
// known to echo credentials, but this keeps the promise of Error even if a
// server (or a proxy, or an emulator) ever does.
func scrubSecrets(err *error, secrets ...string) {
	var e *Error
	if err == nil || *err == nil || !errors.As(*err, &e) {
		return
	}
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		var xs strings.Builder
		_ = xml.EscapeText(&xs, []byte(s))
		js, _ := json.Marshal(s)
		forms := []string{s, url.QueryEscape(s), url.PathEscape(s), xs.String(), strings.Trim(string(js), `"`)}
		for _, f := range forms {
			e.Message = strings.ReplaceAll(e.Message, f, "[redacted]")
			e.Code = strings.ReplaceAll(e.Code, f, "[redacted]")
		}
	}
}

// sfIDPattern matches 15- and 18-character Salesforce ids; ids go into URL
// paths and SOQL literals, so nothing else is accepted.
var sfIDPattern = regexp.MustCompile(`^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$`)

func checkSalesforceID(op, id string) *Error {
	if !sfIDPattern.MatchString(id) {
		return &Error{Op: op, Code: "MALFORMED_ID", Message: "not a 15 or 18 character Salesforce id", Kind: KindNotFound}
	}
	return nil
}

// checkClientSession rejects calls without a usable session before any request.
func checkClientSession(op string, s *Session) *Error {
	if s == nil || s.AccessToken == "" {
		return &Error{Op: op, Code: "INVALID_SESSION_ID", Message: "no session", Kind: KindSession}
	}
	return nil
}

// instanceBase is where calls with a session go: the session's instance,
// or the login host when the session does not say. The instance is checked
// again here, whoever built the session, so that nothing carrying the
// session's token goes to a host the login_url policy refuses.
func (c *Client) instanceBase(op string, s *Session) (string, *Error) {
	if s != nil && s.InstanceURL != "" {
		return c.checkInstance(op, s.InstanceURL)
	}
	return c.cfg.LoginURL, nil
}

// checkInstance applies CheckInstanceURL with the client's login URL and
// opt-in.
func (c *Client) checkInstance(op, raw string) (string, *Error) {
	base, err := CheckInstanceURL(raw, c.cfg.LoginURL, c.cfg.AllowNonSalesforceURL)
	if err != nil {
		return "", &Error{Op: op, Message: err.Error(), Kind: KindOther}
	}
	return base, nil
}
