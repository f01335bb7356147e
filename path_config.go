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
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
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

// adminSessionCache holds the session the config's admin grant produced.
// Its zero value is ready to use.
type adminSessionCache struct {
	// loginMu serialises admin logins so concurrent callers share one.
	loginMu sync.Mutex

	mu      sync.Mutex
	session *Session
	expires time.Time
	// generation changes on every drop, so a login that raced with a
	// config change does not cache a session of the old config.
	generation uint64
}

func (a *adminSessionCache) get(now time.Time) (*Session, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.session != nil && now.Before(a.expires) {
		return a.session, a.generation
	}
	return nil, a.generation
}

func (a *adminSessionCache) put(s *Session, expires time.Time, generation uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if generation != a.generation {
		return
	}
	a.session, a.expires = s, expires
}

func (a *adminSessionCache) drop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.session = nil
	a.expires = time.Time{}
	a.generation++
}

// dropAdminSession forgets the cached admin session, e.g. after Salesforce
// answered INVALID_SESSION_ID.
func (b *backend) dropAdminSession() {
	b.admin.drop()
}

// adminSession returns a session of the config's admin identity, reusing
// a cached one until shortly before it would expire.
func (b *backend) adminSession(ctx context.Context, s logical.Storage) (*Session, error) {
	if sess, _ := b.admin.get(time.Now()); sess != nil {
		return sess, nil
	}
	b.admin.loginMu.Lock()
	defer b.admin.loginMu.Unlock()
	// Another caller may have logged in while this one waited.
	sess, generation := b.admin.get(time.Now())
	if sess != nil {
		return sess, nil
	}
	client, cfg, err := b.getClient(ctx, s)
	if err != nil {
		return nil, err
	}
	vaultKey, err := b.adminVaultKey(ctx, s, cfg)
	if err != nil {
		return nil, err
	}
	issued := time.Now()
	sess, err = adminLogin(ctx, client, cfg, vaultKey)
	if err != nil {
		return nil, err
	}
	b.admin.put(sess, issued.Add(sessionLifetime(sess)-adminSessionMargin), generation)
	return sess, nil
}

// withAdminSession runs fn with the admin session and, when Salesforce
// says the session is gone, once more with a fresh one.
func (b *backend) withAdminSession(ctx context.Context, s logical.Storage, fn func(Client, *Session) error) error {
	for attempt := 0; ; attempt++ {
		sess, err := b.adminSession(ctx, s)
		if err != nil {
			return err
		}
		client, _, err := b.getClient(ctx, s)
		if err != nil {
			return err
		}
		err = fn(client, sess)
		if err == nil || KindOf(err) != KindSession || attempt > 0 {
			return err
		}
		b.dropAdminSession()
	}
}

func sessionLifetime(s *Session) time.Duration {
	if s.SecondsValid > 0 {
		life := time.Duration(s.SecondsValid) * time.Second
		// Keep at least a short reuse window for short session timeouts.
		if life <= adminSessionMargin {
			return adminSessionMargin + life/2
		}
		return life
	}
	return defaultSessionLifetime
}

// adminVaultKey returns config/jwt-key's current key when the config's
// jwt_bearer grant has no private_key of its own; nil otherwise.
func (b *backend) adminVaultKey(ctx context.Context, s logical.Storage, cfg *salesforceConfig) (*rsa.PrivateKey, error) {
	if cfg.GrantType != adminGrantJWTBearer || cfg.PrivateKey != "" {
		return nil, nil
	}
	key, err := b.jwtSigningKey(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("reading config/jwt-key: %w", err)
	}
	return key, nil
}

// adminLogin obtains a session with the config's admin grant. vaultKey is
// the key generated in Vault (config/jwt-key), used by jwt_bearer when the
// config holds no private_key. It never caches; adminSession does.
func adminLogin(ctx context.Context, c Client, cfg *salesforceConfig, vaultKey *rsa.PrivateKey) (*Session, error) {
	switch cfg.GrantType {
	case adminGrantJWTBearer:
		key, err := cfg.privateKey()
		if err != nil {
			return nil, err
		}
		if key == nil {
			key = vaultKey
		}
		if key == nil {
			return nil, errors.New("config has grant_type jwt_bearer but no private_key, and config/jwt-key holds no key")
		}
		return c.JWTBearerGrant(ctx, cfg.Username, key, nil)
	case adminGrantClientCredentials:
		return c.ClientCredentialsGrant(ctx, nil)
	case adminGrantPassword:
		return c.PasswordGrant(ctx, cfg.Username, cfg.Password+cfg.SecurityToken)
	default:
		return nil, fmt.Errorf("config has an unknown grant_type %q", cfg.GrantType)
	}
}

func pathConfig(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "config",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "salesforce",
			},
			Fields: configFields(),
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: b.pathConfigRead,
					Summary:  "Read the connection settings (secrets are shown only as *_set flags).",
					DisplayAttrs: &framework.DisplayAttributes{
						OperationSuffix: "configuration",
					},
				},
				logical.CreateOperation: &framework.PathOperation{
					Callback:                    b.pathConfigWrite,
					Summary:                     "Configure the connection to Salesforce.",
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb: "configure",
					},
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback:                    b.pathConfigWrite,
					Summary:                     "Update the connection to Salesforce; omitted fields keep their values.",
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb: "configure",
					},
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:                    b.pathConfigDelete,
					Summary:                     "Delete the connection settings.",
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationSuffix: "configuration",
					},
				},
			},
			ExistenceCheck:  b.pathConfigExists,
			HelpSynopsis:    strings.TrimSpace(configHelpSynopsis),
			HelpDescription: strings.TrimSpace(configHelpDescription),
		},
	}
}

func configFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"login_url": {
			Type: framework.TypeString,
			Description: "Where logins and token requests go: https://login.salesforce.com (production, the default), " +
				"https://test.salesforce.com (sandboxes) or the org's My Domain URL such as https://acme.my.salesforce.com " +
				"(required for the client_credentials grant). Must be https on a Salesforce domain unless allow_non_salesforce_url is true.",
			Default: configDefaultLoginURL,
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Login URL",
			},
		},
		"allow_non_salesforce_url": {
			Type: framework.TypeBool,
			Description: "Allow a login_url that is not https on a Salesforce domain (plain http, another host, a loopback or " +
				"literal IP address, a path). Meant for the Salesforce emulator and tests; leave false in production so the engine " +
				"never sends credentials to an unintended address.",
			Default: false,
		},
		"api_version": {
			Type:        framework.TypeString,
			Description: "Salesforce API version (NN.N, at least 40.0) for REST calls and SOAP calls other than login().",
			Default:     configDefaultAPIVersion,
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "API version",
			},
		},
		"soap_api_version": {
			Type: framework.TypeString,
			Description: "API version (NN.N, 40.0 to 64.0) used for SOAP login(). Salesforce refuses login() from 65.0 on, " +
				"so this stays at or below 64.0 while api_version moves on.",
			Default: configDefaultSOAPAPIVersion,
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "SOAP login API version",
			},
		},
		"client_id": {
			Type:        framework.TypeString,
			Description: "Consumer key of the connected app (or external client app) the engine uses for OAuth.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Client ID",
			},
		},
		"client_secret": {
			Type: framework.TypeString,
			Description: "Consumer secret of the connected app; needed by the client_credentials and password grants. " +
				"Write-only: reads show client_secret_set.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name:      "Client secret",
				Sensitive: true,
			},
		},
		"private_key": {
			Type: framework.TypeString,
			Description: "PEM-encoded RSA private key (PKCS#1 or PKCS#8, at least 2048 bits) whose certificate is uploaded to the " +
				"connected app; used to sign the jwt_bearer assertion. Write-only: reads show private_key_set and the SHA-256 " +
				"fingerprint of the public key.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name:      "Private key",
				Sensitive: true,
			},
		},
		"username": {
			Type: framework.TypeString,
			Description: "Salesforce username of the admin identity for the jwt_bearer and password grants (the user that " +
				"looks up users and sets passwords). This user cannot also be stored as an account.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Admin username",
			},
		},
		"grant_type": {
			Type: framework.TypeString,
			Description: "How the engine obtains its admin session: jwt_bearer (client_id, username, private_key), " +
				"client_credentials (client_id, client_secret; the connected app's run-as user; login_url must be the My Domain URL) " +
				"or password (client_id, client_secret, username, password, security_token). When omitted on the first write: " +
				"jwt_bearer if private_key is given, else client_credentials if client_secret is given without username/password, " +
				"else password. Later writes keep the current grant unless grant_type is given. jwt_bearer without private_key " +
				"signs with the key generated in Vault at config/jwt-key.",
			AllowedValues: []interface{}{adminGrantJWTBearer, adminGrantClientCredentials, adminGrantPassword},
		},
		"password": {
			Type:        framework.TypeString,
			Description: "Password of the admin user, for the password grant. Write-only: reads show password_set.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name:      "Admin password",
				Sensitive: true,
			},
		},
		"security_token": {
			Type: framework.TypeString,
			Description: "Security token of the admin user, appended to the password by the password grant; leave empty when " +
				"Vault's address is inside the user's login IP ranges. Write-only: reads show security_token_set.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name:      "Admin security token",
				Sensitive: true,
			},
		},
		"ca_cert": {
			Type:        framework.TypeString,
			Description: "PEM-encoded CA certificate(s) to trust instead of the system roots when calling login_url.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "CA certificate",
			},
		},
		"request_timeout": {
			Type:        framework.TypeDurationSecond,
			Description: "Time limit of each single call to Salesforce, e.g. 30s (the default); at most 5m.",
			Default:     int(configDefaultRequestTimeout.Seconds()),
		},
		"verify": {
			Type: framework.TypeBool,
			Description: "Check the settings by obtaining an admin session before storing them (default true). A failed " +
				"check returns Salesforce's error code and stores nothing.",
			Default: true,
		},
	}
}

func (b *backend) pathConfigExists(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	cfg, err := readConfig(ctx, req.Storage)
	if err != nil {
		return false, err
	}
	return cfg != nil, nil
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, nil
	}
	data := map[string]interface{}{
		"login_url":                cfg.LoginURL,
		"allow_non_salesforce_url": cfg.AllowNonSalesforceURL,
		"api_version":              cfg.APIVersion,
		"soap_api_version":         cfg.SOAPAPIVersion,
		"client_id":                cfg.ClientID,
		"username":                 cfg.Username,
		"grant_type":               cfg.GrantType,
		"ca_cert":                  cfg.CACert,
		"request_timeout":          int64(cfg.RequestTimeout.Seconds()),
		"client_secret_set":        cfg.ClientSecret != "",
		"private_key_set":          cfg.PrivateKey != "",
		"password_set":             cfg.Password != "",
		"security_token_set":       cfg.SecurityToken != "",
	}
	if key, err := cfg.privateKey(); err == nil && key != nil {
		data["public_key_fingerprint"] = publicKeyFingerprint(&key.PublicKey)
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	// Serialised with rotate-root, which rewrites the admin password in
	// config: neither may overwrite the other's change.
	b.rot.rootMu.Lock()
	defer b.rot.rootMu.Unlock()

	existing, err := readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	cfg := defaultConfig()
	if existing != nil {
		c := *existing
		cfg = &c
	}

	// A jwt_bearer admin grant may sign with the key generated in Vault
	// (config/jwt-key) instead of a private_key written here.
	vaultKey, err := b.jwtSigningKey(ctx, req.Storage)
	if err != nil {
		return nil, fmt.Errorf("reading config/jwt-key: %w", err)
	}
	if err := applyConfigFields(cfg, d, existing == nil, vaultKey != nil); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	if cfg.GrantType != adminGrantJWTBearer || cfg.PrivateKey != "" {
		vaultKey = nil
	}
	var warnings []string
	if cfg.GrantType == adminGrantClientCredentials && isGenericLoginHost(cfg.LoginURL) {
		warnings = append(warnings, "Salesforce serves the client_credentials grant only on the org's My Domain URL "+
			"(https://<domain>.my.salesforce.com); set login_url to it if verification fails with invalid_grant")
	}

	if cfg.Username != "" && (existing == nil || !strings.EqualFold(existing.Username, cfg.Username)) {
		name, err := accountWithUsername(ctx, req.Storage, cfg.Username)
		if err != nil {
			return nil, err
		}
		if name != "" {
			return logical.ErrorResponse("username %q is already managed as account %q; the admin user cannot also be an ordinary account", cfg.Username, name), nil
		}
	}

	if d.Get("verify").(bool) {
		if resp, err := b.verifyConfig(ctx, cfg, vaultKey); resp != nil || err != nil {
			return resp, err
		}
	}

	if err := writeConfig(ctx, req.Storage, cfg); err != nil {
		return nil, err
	}
	b.resetClient()
	b.invalidateAllTokens()
	if len(warnings) == 0 {
		return nil, nil
	}
	return &logical.Response{Warnings: warnings}, nil
}

// verifyConfig logs in with the candidate config through a client built
// for it alone, so the cached client and admin session stay untouched
// until the config is stored. (nil, nil) means success.
func (b *backend) verifyConfig(ctx context.Context, cfg *salesforceConfig, vaultKey *rsa.PrivateKey) (*logical.Response, error) {
	cc, err := cfg.clientConfig()
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	client, err := b.newClient(cc)
	if err != nil {
		return logical.ErrorResponse("cannot build a Salesforce client from this config: %s", err), nil
	}
	_, err = adminLogin(ctx, client, cfg, vaultKey)
	if err == nil {
		return nil, nil
	}
	code := ErrorCode(err)
	b.logger.Warn("config verification failed", "grant_type", cfg.GrantType, "login_url", cfg.LoginURL, "code", code, "error", err)
	if IsTransient(err) {
		return nil, logical.CodedError(httpStatusForSalesforce(err), fmt.Sprintf(
			"verifying config: Salesforce could not be reached (%s); nothing was stored. Try again, or write with verify=false", err))
	}
	msg := fmt.Sprintf("verifying config: Salesforce refused the %s admin grant", cfg.GrantType)
	if code != "" {
		msg += " with " + code
	}
	msg += fmt.Sprintf(" (%s); nothing was stored. Fix the settings, or write with verify=false to store them unchecked", err)
	if cfg.GrantType == adminGrantClientCredentials && isGenericLoginHost(cfg.LoginURL) {
		msg += ". Hint: Salesforce serves client_credentials only on the org's My Domain URL; set login_url to https://<domain>.my.salesforce.com"
	}
	return logical.ErrorResponse(msg), nil
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.rot.rootMu.Lock()
	defer b.rot.rootMu.Unlock()
	if err := req.Storage.Delete(ctx, configStoragePath); err != nil {
		return nil, fmt.Errorf("deleting config: %w", err)
	}
	b.resetClient()
	b.invalidateAllTokens()
	return nil, nil
}

// applyConfigFields merges the request into cfg and validates the result.
// Errors name the field at fault and never contain a secret value.
func applyConfigFields(cfg *salesforceConfig, d *framework.FieldData, isCreate, haveVaultKey bool) error {
	if v, ok := d.GetOk("allow_non_salesforce_url"); ok {
		cfg.AllowNonSalesforceURL = v.(bool)
	}
	if v, ok := d.GetOk("login_url"); ok {
		cfg.LoginURL = strings.TrimSpace(v.(string))
	}
	normalized, err := validateLoginURL(cfg.LoginURL, cfg.AllowNonSalesforceURL)
	if err != nil {
		return err
	}
	cfg.LoginURL = normalized

	if v, ok := d.GetOk("api_version"); ok {
		cfg.APIVersion = strings.TrimPrefix(strings.TrimSpace(v.(string)), "v")
	}
	if err := validateAPIVersion("api_version", cfg.APIVersion, 0); err != nil {
		return err
	}
	if v, ok := d.GetOk("soap_api_version"); ok {
		cfg.SOAPAPIVersion = strings.TrimPrefix(strings.TrimSpace(v.(string)), "v")
	}
	if err := validateAPIVersion("soap_api_version", cfg.SOAPAPIVersion, maxSOAPLoginVersion); err != nil {
		return err
	}

	if v, ok := d.GetOk("client_id"); ok {
		cfg.ClientID = strings.TrimSpace(v.(string))
		if strings.ContainsFunc(cfg.ClientID, isSpaceOrControl) {
			return errors.New("client_id must not contain spaces or control characters")
		}
	}
	if v, ok := d.GetOk("client_secret"); ok {
		cfg.ClientSecret = v.(string)
		if strings.ContainsFunc(cfg.ClientSecret, isSpaceOrControl) {
			return errors.New("client_secret must not contain spaces or control characters")
		}
	}
	if v, ok := d.GetOk("private_key"); ok {
		cfg.PrivateKey = strings.TrimSpace(v.(string))
		if cfg.PrivateKey != "" {
			if _, err := parseRSAPrivateKey(cfg.PrivateKey); err != nil {
				return err
			}
		}
	}
	if v, ok := d.GetOk("username"); ok {
		cfg.Username = strings.TrimSpace(v.(string))
		if cfg.Username != "" {
			if err := validateUsername("username", cfg.Username); err != nil {
				return err
			}
		}
	}
	if v, ok := d.GetOk("password"); ok {
		cfg.Password = v.(string)
		if strings.ContainsFunc(cfg.Password, isControl) {
			return errors.New("password must not contain control characters such as newlines")
		}
	}
	if v, ok := d.GetOk("security_token"); ok {
		cfg.SecurityToken = strings.TrimSpace(v.(string))
		if err := validateSecurityToken("security_token", cfg.SecurityToken); err != nil {
			return err
		}
	}
	if v, ok := d.GetOk("ca_cert"); ok {
		cfg.CACert = strings.TrimSpace(v.(string))
		if cfg.CACert != "" {
			if _, err := parseCACert(cfg.CACert); err != nil {
				return err
			}
		}
	}
	if v, ok := d.GetOk("request_timeout"); ok {
		timeout := time.Duration(v.(int)) * time.Second
		if timeout <= 0 || timeout > maxRequestTimeout {
			return fmt.Errorf("request_timeout must be between 1s and %s", maxRequestTimeout)
		}
		cfg.RequestTimeout = timeout
	}

	if v, ok := d.GetOk("grant_type"); ok {
		cfg.GrantType = strings.TrimSpace(v.(string))
	} else if isCreate || cfg.GrantType == "" {
		cfg.GrantType = defaultAdminGrant(cfg)
	}
	return validateAdminGrant(cfg, haveVaultKey)
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

// accountWithUsername returns the name of the stored account whose
// username is username (case-insensitively, as Salesforce compares them),
// or "".
func accountWithUsername(ctx context.Context, s logical.Storage, username string) (string, error) {
	keys, err := logical.CollectKeysWithPrefix(ctx, s, accountStoragePrefix)
	if err != nil {
		return "", fmt.Errorf("listing accounts: %w", err)
	}
	for _, key := range keys {
		name := strings.TrimPrefix(key, accountStoragePrefix)
		acct, err := readAccount(ctx, s, name)
		if err != nil {
			return "", err
		}
		if acct != nil && strings.EqualFold(acct.Username, username) {
			return name, nil
		}
	}
	return "", nil
}

// httpStatusForSalesforce maps a Salesforce failure to the status Vault
// returns: transient failures are the upstream's fault, the rest the
// caller's.
func httpStatusForSalesforce(err error) int {
	if IsTransient(err) {
		return http.StatusBadGateway
	}
	return http.StatusBadRequest
}

const configHelpSynopsis = `Configure how the engine connects to Salesforce and which admin identity it uses.`

const configHelpDescription = `
The config path holds the connection to one Salesforce org:

  login_url         where logins go (https://login.salesforce.com, https://test.salesforce.com
                    or the org's My Domain URL); only https Salesforce hosts unless
                    allow_non_salesforce_url=true
  api_version       REST API version (default 66.0)
  soap_api_version  version for SOAP login() (default 64.0; login() is gone from 65.0)
  client_id, client_secret, private_key
                    the connected app
  grant_type        how the engine logs in as admin: jwt_bearer, client_credentials or password
  username, password, security_token
                    the admin user for the jwt_bearer and password grants

The admin session is used to look up users and set passwords. Writes check the settings
by obtaining an admin session unless verify=false; a failed check returns Salesforce's
error code and stores nothing. Updates merge with the stored settings. Reads never return
client_secret, private_key, password or security_token; they show *_set flags and the
fingerprint of the private key's public half instead.

Example:

  vault write salesforce/config \
      login_url=https://acme.my.salesforce.com \
      client_id=3MVG9... private_key=@vault-jwt.key username=vault-admin@acme.com
`
