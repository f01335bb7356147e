package sfapi

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// The host policy of login_url: Salesforce domains only, unless opted in;
// malformed hosts never.
func TestValidateLoginURL(t *testing.T) {
	accepted := map[string]string{
		"https://login.salesforce.com":                      "https://login.salesforce.com",
		"https://test.salesforce.com/":                      "https://test.salesforce.com",
		"https://Acme.My.Salesforce.com":                    "https://acme.my.salesforce.com",
		"https://acme--dev.sandbox.my.salesforce.com":       "https://acme--dev.sandbox.my.salesforce.com",
		"https://acme.my.salesforce.mil":                    "https://acme.my.salesforce.mil",
		"https://acme.lightning.force.com":                  "https://acme.lightning.force.com",
		"https://acme.my.salesforce-setup.com":              "https://acme.my.salesforce-setup.com",
		"https://login.salesforce.com:443":                  "https://login.salesforce.com",
		"https://na1.cloudforce.com":                        "https://na1.cloudforce.com",
		"https://acme.my.salesforce.com/":                   "https://acme.my.salesforce.com",
		"https://acme.sandbox.my.salesforce.com":            "https://acme.sandbox.my.salesforce.com",
		"https://acme--uat.sandbox.my.salesforce-setup.com": "https://acme--uat.sandbox.my.salesforce-setup.com",
	}
	for in, want := range accepted {
		got, err := ValidateLoginURL(in, false)
		if err != nil || got != want {
			t.Errorf("ValidateLoginURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	needOptIn := []string{
		"http://login.salesforce.com",
		"https://evil.example.com",
		"https://salesforce.com.evil.example",
		"https://127.0.0.1",
		"https://[::1]:8443",
		"https://localhost",
		"https://10.0.0.5",
		"https://login.salesforce.com:8443",
		"https://login.salesforce.com/services",
		"https://salesforce.com",
	}
	for _, in := range needOptIn {
		_, err := ValidateLoginURL(in, false)
		if err == nil || !strings.Contains(err.Error(), "login_url") || !strings.Contains(err.Error(), "allow_non_salesforce_url") {
			t.Errorf("ValidateLoginURL(%q) without opt-in: %v", in, err)
		}
		if _, err := ValidateLoginURL(in, true); err != nil {
			t.Errorf("ValidateLoginURL(%q) with opt-in: %v", in, err)
		}
	}
	alwaysRefused := []string{
		"https://user:pw@login.salesforce.com",
		"https://login.salesforce.com?next=x",
		"https://login.salesforce.com#frag",
		"ftp://login.salesforce.com",
		"login.salesforce.com",
		"",
		// Malformed hosts a suffix check alone would take for Salesforce's.
		"https://a..salesforce.com",
		"https://.salesforce.com",
		"https://login.salesforce.com.",
		"https://evil.com\u3002.salesforce.com",
		"https://evil%E3%80%82.salesforce.com",
		"https://log\u00edn.salesforce.com",
		"https://log_in!.salesforce.com",
		"https://" + strings.Repeat("a", 64) + ".my.salesforce.com",
	}
	for _, in := range alwaysRefused {
		for _, optIn := range []bool{false, true} {
			if _, err := ValidateLoginURL(in, optIn); err == nil || !strings.Contains(err.Error(), "login_url") {
				t.Errorf("ValidateLoginURL(%q, %v) = %v, want an error naming login_url", in, optIn, err)
			}
		}
	}
	if _, err := ValidateLoginURL("https://user:s3cr3t-pw@login.salesforce.com", true); err == nil || strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("userinfo error must not echo the password: %v", err)
	}
}

// Issue 9, defect 11: the instance a login answer names (OAuth
// instance_url, SOAP serverUrl) is held to the login_url policy: https on a
// Salesforce domain unless AllowNonSalesforceURL, and never http after an
// https login, even with it. A refused answer gives no session, and calls
// with a session never go to a host the policy refuses, so the bearer token
// and a new password are not posted there.
func TestTrust11InstanceURLPolicy(t *testing.T) {
	var mu sync.Mutex
	instance := ""
	answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		target := instance
		mu.Unlock()
		if r.URL.Path == "/services/oauth2/token" {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{
				"access_token": "00Dx0000000001!AQcurrentAccess", "instance_url": target, "token_type": "Bearer",
				"id": "https://login.salesforce.com/id/00D36000001HDi3EAG/00536000002PmoeAAC",
			})
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, strings.ReplaceAll(recordedLoginResponse, "https://na15.salesforce.com", target))
	})
	login := httptest.NewTLSServer(answer)
	defer login.Close()
	loginHTTP := httptest.NewServer(answer)
	defer loginHTTP.Close()
	roots := x509.NewCertPool()
	roots.AddCert(login.Certificate())
	var stolen []string
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		stolen = append(stolen, r.Header.Get("Authorization")+" "+string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer evil.Close()

	cases := []struct {
		instance string
		allow    bool
		httpsIn  bool // login over https (else http)
		ok       bool
	}{
		{"https://acme.my.salesforce.com", false, true, true},
		{"https://na15.salesforce.com", false, false, true},
		{"https://evil.example.com", false, true, false},
		{"http://acme.my.salesforce.com", false, true, false},
		{"https://acme.my.salesforce.com:8443", false, true, false},
		{"https://10.0.0.1", false, true, false},
		{"https://acme.my.salesforce.com.evil.example", false, true, false},
		{evil.URL, false, true, false},
		{evil.URL, false, false, false},
		{"https://other.example.com", true, true, true},
		{evil.URL, true, true, false}, // http after https: a downgrade, even with the opt-in
		{evil.URL, true, false, true}, // an http login_url (the emulator) may name an http instance
	}
	for _, c := range cases {
		mu.Lock()
		instance = c.instance
		mu.Unlock()
		loginURL := login.URL
		if !c.httpsIn {
			loginURL = loginHTTP.URL
		}
		client := newTestClient(t, loginURL, func(cfg *Config) {
			cfg.RootCAs = roots
			cfg.AllowNonSalesforceURL = c.allow
		})
		for _, flow := range []string{"oauth", "soap"} {
			var s *Session
			var err error
			if flow == "oauth" {
				s, err = client.PasswordGrant(context.Background(), "user@acme.demo", "S3cret<&>\"'pw")
			} else {
				s, err = client.SOAPLogin(context.Background(), "user@acme.demo", "S3cret<&>\"'pw")
			}
			if c.ok != (err == nil) {
				t.Errorf("%s login over %v naming %s (allow_non_salesforce_url=%v): err=%v, want accepted=%v", flow, map[bool]string{true: "https", false: "http"}[c.httpsIn], c.instance, c.allow, err, c.ok)
			}
			if err != nil {
				checkClientErr(t, err)
				if s != nil {
					t.Errorf("%s: a session came with the refusal", flow)
				}
			}
		}
		// A session naming the refused instance, however it was obtained,
		// is not used to post a password there.
		if !c.ok && c.instance == evil.URL {
			own := &Session{AccessToken: "00Dx0000000001!AQcurrentAccess", InstanceURL: c.instance}
			err := client.SetPassword(context.Background(), own, "005a0000001aAA2AAA", "N3w-Secret-Pass")
			if err == nil {
				t.Errorf("SetPassword through a session naming %s was sent", c.instance)
			}
			err = client.ChangeOwnPassword(context.Background(), own, "S3cret<&>\"'pw", "N3w-Secret-Pass")
			if err == nil {
				t.Errorf("ChangeOwnPassword through a session naming %s was sent", c.instance)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range stolen {
		t.Errorf("a refused instance received: %.80s", s)
	}
}
