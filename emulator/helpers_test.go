package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	adminUser = DemoAdminUsername
	adminPass = "Admin-Pass-1234"
	adminTok  = "ADMINTOKEN0000000000000000"
	integUser = DemoIntegUsername
	integPass = "Integ-Pass-1234"
	integTok  = "INTEGTOKEN00000000000000000"
	trustUser = DemoTrustUsername
	trustPass = "Trusted-Pass-1234"
)

func post(t *testing.T, u, contentType, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(u, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func envelope(header, body string) string {
	return `<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header>` +
		header + `</soapenv:Header><soapenv:Body>` + body + `</soapenv:Body></soapenv:Envelope>`
}

func xmlText(s string) string { return xmlEscape(s) }

func soapLogin(t *testing.T, s *Server, version, user, password string) (int, string) {
	t.Helper()
	return post(t, s.LoginURL()+"/services/Soap/u/"+version, "text/xml; charset=utf-8",
		envelope("", `<urn:login><urn:username>`+xmlText(user)+`</urn:username><urn:password>`+xmlText(password)+`</urn:password></urn:login>`))
}

// soapOp posts an operation with a SessionHeader to the My Domain endpoint.
func soapOp(t *testing.T, s *Server, version, sid, op string) (int, string) {
	t.Helper()
	return post(t, s.MyDomainURL()+"/services/Soap/u/"+version+"/"+id15(s.OrgID()), "text/xml; charset=utf-8",
		envelope(`<urn:SessionHeader><urn:sessionId>`+sid+`</urn:sessionId></urn:SessionHeader>`, op))
}

var (
	faultCodeRe = regexp.MustCompile(`<faultcode>sf:(\w+)</faultcode>`)
	sessionRe   = regexp.MustCompile(`<sessionId>([^<]+)</sessionId>`)
	tagRe       = func(tag string) *regexp.Regexp { return regexp.MustCompile(`<` + tag + `>([^<]*)</` + tag + `>`) }
)

func faultCode(body string) string {
	if m := faultCodeRe.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

func tag(body, name string) string {
	if m := tagRe(name).FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// mustSOAPLogin logs in and returns the session id.
func mustSOAPLogin(t *testing.T, s *Server, user, password string) string {
	t.Helper()
	status, body := soapLogin(t, s, "64.0", user, password)
	m := sessionRe.FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("login %s: status %d fault %q", user, status, faultCode(body))
	}
	return m[1]
}

func setPasswordOp(userID, pw string) string {
	return `<urn:setPassword><urn:userId>` + userID + `</urn:userId><urn:password>` + xmlText(pw) + `</urn:password></urn:setPassword>`
}

func tokenRequest(t *testing.T, base string, form url.Values) (int, map[string]any) {
	t.Helper()
	status, body := post(t, base+"/services/oauth2/token", "application/x-www-form-urlencoded", form.Encode())
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("token response is not JSON: %v", err)
	}
	return status, out
}

func passwordForm(user, secret string) url.Values {
	return url.Values{"grant_type": {"password"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret},
		"username": {user}, "password": {secret}}
}

func mustPasswordGrant(t *testing.T, s *Server, user, secret string) string {
	t.Helper()
	status, out := tokenRequest(t, s.LoginURL(), passwordForm(user, secret))
	if status != 200 {
		t.Fatalf("password grant %s: %d %v", user, status, out["error"])
	}
	return out["access_token"].(string)
}

func restDo(t *testing.T, method, u, token, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func restErrorCode(t *testing.T, body string) string {
	t.Helper()
	var errs []restError
	if err := json.Unmarshal([]byte(body), &errs); err != nil || len(errs) != 1 {
		t.Fatalf("not a REST error array: %q", body)
	}
	return errs[0].ErrorCode
}

// fakeClock is a settable clock for SetClock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(s *Server) *fakeClock {
	c := &fakeClock{now: time.Now()}
	s.SetClock(c.Now)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func selfSignedPEM(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func regexpFind(s, pattern string) string {
	if m := regexp.MustCompile(pattern).FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}
