package sfapi

import (
	"strings"
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
