package sfapi

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Where logins may go: the host policy of the engine's login_url, kept
// with the wire client so that hosts a login answer names can be held to
// it too.

// SalesforceDomainSuffixes are the hosts a login_url may point at without
// allow_non_salesforce_url. Each needs a subdomain in front, e.g.
// login.salesforce.com or acme.my.salesforce.com.
var SalesforceDomainSuffixes = []string{
	".salesforce.com", // login., test., *.my., *.sandbox.my., instance hosts
	".force.com",
	".salesforce.mil",
	".cloudforce.com",
	".salesforce-setup.com",
	".database.com",
}

// ValidateLoginURL checks login_url and returns it without a trailing
// slash. Without the opt-in only https on a Salesforce domain passes, so
// nobody sends credentials to an internal address by accident.
func ValidateLoginURL(raw string, allowNonSalesforce bool) (string, error) {
	const optIn = "; set allow_non_salesforce_url=true to use it anyway (for the emulator or tests)"
	if raw == "" {
		return "", errors.New("login_url must not be empty")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return "", errors.New("login_url must be an absolute URL such as https://login.salesforce.com")
	}
	if u.User != nil {
		return "", errors.New("login_url must not contain a user name or password")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", errors.New("login_url must not contain a query or fragment")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", errors.New("login_url must use https")
	}
	host := strings.ToLower(u.Hostname())
	if err := ValidateLoginHost(host); err != nil {
		return "", err
	}
	// The escaped form: a decoded path may hold characters (%1e) that make
	// the normalised URL unparseable.
	path := strings.TrimRight(u.EscapedPath(), "/")
	normalized := scheme + "://" + strings.ToLower(u.Host) + path

	if allowNonSalesforce {
		return normalized, nil
	}
	if scheme != "https" {
		return "", errors.New("login_url must use https" + optIn)
	}
	if net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "", errors.New("login_url must name a Salesforce host, not an IP or loopback address" + optIn)
	}
	if port := u.Port(); port != "" && port != "443" {
		return "", errors.New("login_url must use the standard https port" + optIn)
	}
	if path != "" {
		return "", errors.New("login_url must not have a path" + optIn)
	}
	if !IsSalesforceHost(host) {
		return "", fmt.Errorf("login_url host %q is not a Salesforce domain (%s)%s", host, strings.Join(SalesforceDomainSuffixes, ", "), optIn)
	}
	return "https://" + host, nil
}

// ValidateLoginHost refuses host names that are malformed even with the
// opt-in: non-ASCII ones (look-alikes such as the ideographic full stop in
// "evil.com\u3002.salesforce.com" pass a suffix check yet are no Salesforce
// name), empty labels ("a..salesforce.com", a leading or trailing dot) and
// characters outside DNS names. IP literals are checked by the caller.
func ValidateLoginHost(host string) error {
	if host == "" {
		return errors.New("login_url must name a host")
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	for _, r := range host {
		if r >= utf8.RuneSelf {
			return fmt.Errorf("login_url host %+q must be ASCII; write an internationalized domain name in its xn-- form", host)
		}
	}
	if len(host) > 253 {
		return errors.New("login_url host must be at most 253 characters")
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" {
			return fmt.Errorf("login_url host %q has an empty label (two dots in a row, or a leading or trailing dot)", host)
		}
		if len(label) > 63 {
			return fmt.Errorf("login_url host %q has a label longer than 63 characters", host)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("login_url host %q may contain only letters, digits, hyphens, underscores and dots", host)
			}
		}
	}
	return nil
}

// CheckInstanceURL holds the instance a login answer names (OAuth
// instance_url, SOAP serverUrl) to the policy of the login_url the login
// went to, and returns its base URL (scheme and host, no path). Calls with
// the session carry the bearer token, and for rotations a new password, so
// they go only where login_url itself could point: https on a Salesforce
// host unless allowNonSalesforce, and never http after an https login,
// whatever allowNonSalesforce says.
func CheckInstanceURL(raw, loginURL string, allowNonSalesforce bool) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", errors.New("the login answer names an unusable instance URL")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if ValidateLoginHost(host) != nil {
		return "", errors.New("the login answer names an instance host that is not a valid host name")
	}
	base := scheme + "://" + u.Host
	login, err := url.Parse(loginURL)
	loginHTTPS := err != nil || !strings.EqualFold(login.Scheme, "http")
	switch {
	case scheme == "https":
	case scheme == "http" && loginHTTPS:
		return "", fmt.Errorf("the login answer names the instance %s over http after an https login; calls with the session go only over https", base)
	case scheme == "http" && !allowNonSalesforce:
		return "", fmt.Errorf("the login answer names the instance %s over http; calls with the session go only over https", base)
	case scheme != "http":
		return "", errors.New("the login answer names an instance URL that is neither https nor http")
	}
	if allowNonSalesforce {
		return base, nil
	}
	if net.ParseIP(host) != nil || !IsSalesforceHost(host) {
		return "", fmt.Errorf("the login answer names the instance host %q, which is not a Salesforce domain (%s); calls with the session go only to Salesforce hosts unless allow_non_salesforce_url is set",
			host, strings.Join(SalesforceDomainSuffixes, ", "))
	}
	if port := u.Port(); port != "" && port != "443" {
		return "", fmt.Errorf("the login answer names the instance %s on a non-standard port; calls with the session go only to the standard https port unless allow_non_salesforce_url is set", base)
	}
	return base, nil
}

func IsSalesforceHost(host string) bool {
	for _, suffix := range SalesforceDomainSuffixes {
		if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
			return true
		}
	}
	return false
}

// IsGenericLoginHost reports whether loginURL is one of Salesforce's
// shared login hosts, where client_credentials is not served.
func IsGenericLoginHost(loginURL string) bool {
	u, err := url.Parse(loginURL)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Hostname()) {
	case "login.salesforce.com", "test.salesforce.com":
		return true
	}
	return false
}
