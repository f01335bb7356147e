package salesforce

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/vault/sdk/logical"
)

const (
	configStoragePath = "config"

	configDefaultLoginURL       = "https://login.salesforce.com"
	configDefaultAPIVersion     = "66.0"
	configDefaultSOAPAPIVersion = "64.0"
	// minAPIVersion is the first version with changeOwnPassword; older
	// versions are retired by Salesforce anyway.
	minAPIVersion = 40.0
	// maxSOAPLoginVersion is the last API version that still serves SOAP
	// login(); from 65.0 on Salesforce refuses it.
	maxSOAPLoginVersion = 64.0

	configDefaultRequestTimeout = 30 * time.Second
	maxRequestTimeout           = 5 * time.Minute

	// Names of the admin grants (config grant_type). Prefixed so they do
	// not collide with the role grant types of the OAuth paths.
	adminGrantJWTBearer         = "jwt_bearer"
	adminGrantClientCredentials = "client_credentials"
	adminGrantPassword          = "password"

	// Salesforce sessions last 2 hours by default; the cached admin
	// session is dropped well before that so a call never starts on a
	// session about to expire.
	defaultSessionLifetime = 2 * time.Hour
	adminSessionMargin     = 15 * time.Minute
)

// errConfigMissing is returned by every path that needs Salesforce before
// the operator has written config.
var errConfigMissing = errors.New("the engine is not configured: write config first (vault write <mount>/config ...)")

// salesforceDomainSuffixes are the hosts a login_url may point at without
// allow_non_salesforce_url. Each needs a subdomain in front, e.g.
// login.salesforce.com or acme.my.salesforce.com.
var salesforceDomainSuffixes = []string{
	".salesforce.com", // login., test., *.my., *.sandbox.my., instance hosts
	".force.com",
	".salesforce.mil",
	".cloudforce.com",
	".salesforce-setup.com",
	".database.com",
}

var configAPIVersionRegex = regexp.MustCompile(`^[0-9]{2,3}\.[0-9]$`)

// salesforceConfig is the stored (seal-wrapped) engine configuration.
type salesforceConfig struct {
	LoginURL              string        `json:"login_url"`
	AllowNonSalesforceURL bool          `json:"allow_non_salesforce_url,omitempty"`
	APIVersion            string        `json:"api_version"`
	SOAPAPIVersion        string        `json:"soap_api_version"`
	ClientID              string        `json:"client_id,omitempty"`
	ClientSecret          string        `json:"client_secret,omitempty"`
	PrivateKey            string        `json:"private_key,omitempty"`
	Username              string        `json:"username,omitempty"`
	GrantType             string        `json:"grant_type"`
	Password              string        `json:"password,omitempty"`
	SecurityToken         string        `json:"security_token,omitempty"`
	CACert                string        `json:"ca_cert,omitempty"`
	RequestTimeout        time.Duration `json:"request_timeout"`
}

func defaultConfig() *salesforceConfig {
	return &salesforceConfig{
		LoginURL:       configDefaultLoginURL,
		APIVersion:     configDefaultAPIVersion,
		SOAPAPIVersion: configDefaultSOAPAPIVersion,
		RequestTimeout: configDefaultRequestTimeout,
	}
}

// readConfig returns the stored config, or nil when none was written.
func readConfig(ctx context.Context, s logical.Storage) (*salesforceConfig, error) {
	entry, err := s.Get(ctx, configStoragePath)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	cfg := defaultConfig()
	if err := entry.DecodeJSON(cfg); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	return cfg, nil
}

// writeConfig stores cfg. Callers that change the admin identity must also
// call b.resetClient() and b.invalidateAllTokens().
func writeConfig(ctx context.Context, s logical.Storage, cfg *salesforceConfig) error {
	entry, err := logical.StorageEntryJSON(configStoragePath, cfg)
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	return nil
}

// clientConfig turns the stored config into what a Client needs.
func (c *salesforceConfig) clientConfig() (ClientConfig, error) {
	cc := ClientConfig{
		LoginURL:       c.LoginURL,
		APIVersion:     c.APIVersion,
		SOAPAPIVersion: c.SOAPAPIVersion,
		ClientID:       c.ClientID,
		ClientSecret:   c.ClientSecret,
		RequestTimeout: c.RequestTimeout,
	}
	if cc.RequestTimeout <= 0 {
		cc.RequestTimeout = configDefaultRequestTimeout
	}
	if c.CACert != "" {
		pool, err := parseCACert(c.CACert)
		if err != nil {
			return ClientConfig{}, err
		}
		cc.RootCAs = pool
	}
	return cc, nil
}

// privateKey parses the stored PEM key; nil when none is stored.
func (c *salesforceConfig) privateKey() (*rsa.PrivateKey, error) {
	if c.PrivateKey == "" {
		return nil, nil
	}
	return parseRSAPrivateKey(c.PrivateKey)
}

// validateLoginURL checks login_url and returns it without a trailing
// slash. Without the opt-in only https on a Salesforce domain passes, so
// nobody sends credentials to an internal address by accident.
func validateLoginURL(raw string, allowNonSalesforce bool) (string, error) {
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
	if err := validateLoginHost(host); err != nil {
		return "", err
	}
	path := strings.TrimRight(u.Path, "/")
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
	if !isSalesforceHost(host) {
		return "", fmt.Errorf("login_url host %q is not a Salesforce domain (%s)%s", host, strings.Join(salesforceDomainSuffixes, ", "), optIn)
	}
	return "https://" + host, nil
}

// validateLoginHost refuses host names that are malformed even with the
// opt-in: non-ASCII ones (look-alikes such as the ideographic full stop in
// "evil.com\u3002.salesforce.com" pass a suffix check yet are no Salesforce
// name), empty labels ("a..salesforce.com", a leading or trailing dot) and
// characters outside DNS names. IP literals are checked by the caller.
func validateLoginHost(host string) error {
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

func isSalesforceHost(host string) bool {
	for _, suffix := range salesforceDomainSuffixes {
		if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
			return true
		}
	}
	return false
}

// isGenericLoginHost reports whether loginURL is one of Salesforce's
// shared login hosts, where client_credentials is not served.
func isGenericLoginHost(loginURL string) bool {
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

// validateAPIVersion checks the NN.N format, the 40.0 floor and, when max
// is not 0, a ceiling.
func validateAPIVersion(field, v string, max float64) error {
	if !configAPIVersionRegex.MatchString(v) {
		return fmt.Errorf("%s must look like 66.0 (NN.N)", field)
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("%s must look like 66.0 (NN.N)", field)
	}
	if n < minAPIVersion {
		return fmt.Errorf("%s must be at least %.1f", field, minAPIVersion)
	}
	if max != 0 && n > max {
		return fmt.Errorf("%s must be at most %.1f: Salesforce refuses SOAP login() from API 65.0 on", field, max)
	}
	return nil
}

// validateUsername checks the shape of a Salesforce username, which is
// always in email format.
func validateUsername(field, username string) error {
	if strings.ContainsFunc(username, isSpaceOrControl) {
		return fmt.Errorf("%s must not contain spaces or control characters", field)
	}
	at := strings.LastIndex(username, "@")
	if at <= 0 || at == len(username)-1 || len(username) > 80 {
		return fmt.Errorf("%s must be a Salesforce username in email format, such as integration@example.com", field)
	}
	return nil
}

// validateSecurityToken accepts letters and digits only. Its length is not
// enforced: Salesforce documents 24 characters but real tokens vary.
func validateSecurityToken(field, token string) error {
	for _, r := range token {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return fmt.Errorf("%s must contain only letters and digits", field)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isSpaceOrControl(r rune) bool { return r == ' ' || isControl(r) }

// parseRSAPrivateKey accepts one PEM block with a PKCS#1 or PKCS#8 RSA key.
// Errors never quote the key.
func parseRSAPrivateKey(pemText string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("private_key must be a PEM-encoded RSA private key")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("private_key: the PKCS#1 RSA key cannot be parsed")
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("private_key: the PKCS#8 key cannot be parsed")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("private_key must be an RSA key (Salesforce signs JWT bearer assertions with RS256)")
		}
		key = rk
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("private_key must not be encrypted; decrypt it before writing it to Vault")
	default:
		return nil, fmt.Errorf("private_key must be an RSA private key, not a PEM block of type %q", block.Type)
	}
	if key.N.BitLen() < 2048 {
		return nil, errors.New("private_key must be at least 2048 bits")
	}
	return key, nil
}

// parseCACert accepts one or more PEM certificates.
func parseCACert(pemText string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	rest := []byte(pemText)
	count := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("ca_cert must hold only CERTIFICATE PEM blocks, found %q", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, errors.New("ca_cert holds a certificate that cannot be parsed")
		}
		pool.AddCert(cert)
		count++
	}
	if count == 0 {
		return nil, errors.New("ca_cert must be one or more PEM-encoded certificates")
	}
	return pool, nil
}

// publicKeyFingerprint is "SHA256:" and the base64 SHA-256 of the DER
// public key, so an operator can match it with the connected app's
// certificate.
func publicKeyFingerprint(pub *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
