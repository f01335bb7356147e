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
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
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
	// AppType and AppDeveloperName describe the app of ClientID
	// (external_client_app.go).
	AppType          string `json:"app_type,omitempty"`
	AppDeveloperName string `json:"app_developer_name,omitempty"`
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
func (c *salesforceConfig) clientConfig() (sfapi.Config, error) {
	cc := sfapi.Config{
		LoginURL: c.LoginURL,
		// The instance hosts logins name are held to login_url's policy.
		AllowNonSalesforceURL: c.AllowNonSalesforceURL,
		APIVersion:            c.APIVersion,
		SOAPAPIVersion:        c.SOAPAPIVersion,
		ClientID:              c.ClientID,
		ClientSecret:          c.ClientSecret,
		RequestTimeout:        c.RequestTimeout,
	}
	if cc.RequestTimeout <= 0 {
		cc.RequestTimeout = configDefaultRequestTimeout
	}
	if c.CACert != "" {
		pool, err := parseCACert(c.CACert)
		if err != nil {
			return sfapi.Config{}, err
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

// defaultAdminGrant picks the admin grant from the credentials given.
func defaultAdminGrant(cfg *salesforceConfig) string {
	switch {
	case cfg.PrivateKey != "":
		return adminGrantJWTBearer
	case cfg.ClientSecret != "" && cfg.Username == "" && cfg.Password == "":
		return adminGrantClientCredentials
	default:
		return adminGrantPassword
	}
}

// validateAdminGrant checks that the chosen grant has what it needs.
// haveVaultKey says config/jwt-key holds a key jwt_bearer can sign with.
func validateAdminGrant(cfg *salesforceConfig, haveVaultKey bool) error {
	var needs []string
	switch cfg.GrantType {
	case adminGrantJWTBearer:
		key := cfg.PrivateKey
		if haveVaultKey && key == "" {
			key = "config/jwt-key"
		}
		needs = missing(map[string]string{"client_id": cfg.ClientID, "username": cfg.Username, "private_key": key})
	case adminGrantClientCredentials:
		needs = missing(map[string]string{"client_id": cfg.ClientID, "client_secret": cfg.ClientSecret})
	case adminGrantPassword:
		needs = missing(map[string]string{"client_id": cfg.ClientID, "client_secret": cfg.ClientSecret, "username": cfg.Username, "password": cfg.Password})
	default:
		return fmt.Errorf("grant_type must be one of %s, %s or %s", adminGrantJWTBearer, adminGrantClientCredentials, adminGrantPassword)
	}
	if len(needs) > 0 {
		msg := fmt.Sprintf("grant_type %s needs %s", cfg.GrantType, strings.Join(needs, ", "))
		if cfg.GrantType == adminGrantJWTBearer && cfg.PrivateKey == "" {
			msg += " (or a key generated in Vault with config/jwt-key)"
		}
		return errors.New(msg)
	}
	return nil
}

func missing(fields map[string]string) []string {
	var out []string
	for _, name := range []string{"client_id", "client_secret", "username", "password", "private_key"} {
		if v, ok := fields[name]; ok && v == "" {
			out = append(out, name)
		}
	}
	return out
}
