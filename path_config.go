package salesforce

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

func pathConfig(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "config$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
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
			HelpDescription: strings.TrimSpace(configHelpDescription) + "\n\n" + secretInputHelp,
		},
	}
}

func configFields() map[string]*framework.FieldSchema {
	return withAppFields(map[string]*framework.FieldSchema{
		"login_url": {
			Type: framework.TypeString,
			Description: "Where logins and token requests go: https://login.salesforce.com (production, the default), " +
				"https://test.salesforce.com (sandboxes) or the org's My Domain URL such as https://acme.my.salesforce.com " +
				"(required for the client_credentials grant). Must be https on a Salesforce domain unless allow_non_salesforce_url is true. " +
				"Changing it requires the stored client_secret, password and security_token again in the same write.",
			Default: configDefaultLoginURL,
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Login URL",
			},
		},
		"allow_non_salesforce_url": {
			Type: framework.TypeBool,
			Description: "Allow a login_url that is not https on a Salesforce domain (plain http, another host, a loopback or " +
				"literal IP address, a path). Meant for the Salesforce emulator and tests; leave false in production so the engine " +
				"never sends credentials to an unintended address. Turning it on requires the stored client_secret, password and " +
				"security_token again in the same write.",
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
			Type: framework.TypeString,
			Description: "PEM-encoded CA certificate(s) to trust instead of the system roots when calling login_url. " +
				"Changing it requires the stored client_secret, password and security_token again in the same write.",
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
	})
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
	if err := b.addAppReadData(ctx, req.Storage, cfg, data); err != nil {
		return nil, err
	}
	warnings, err := b.addPendingRootRotation(ctx, req.Storage, cfg, data)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: data, Warnings: warnings}, nil
}

func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	// Serialised with rotate-root, which rewrites the admin password in
	// config: neither may overwrite the other's change.
	b.rootMu.Lock()
	defer b.rootMu.Unlock()

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
	if resp, err := applyAppConfig(ctx, req.Storage, cfg, d); resp != nil || err != nil {
		return resp, err
	}
	// Checked whatever verify says: with verify=false the next admin login
	// would ship the stored secrets instead of this write's check.
	if existing != nil {
		if err := requireSecretsForNewEndpoint(existing, cfg, d); err != nil {
			return logical.ErrorResponse(err.Error()), nil
		}
	}
	if cfg.GrantType != adminGrantJWTBearer || cfg.PrivateKey != "" {
		vaultKey = nil
	}
	var warnings []string
	if cfg.GrantType == adminGrantClientCredentials && sfapi.IsGenericLoginHost(cfg.LoginURL) {
		warnings = append(warnings, "Salesforce serves the client_credentials grant only on the org's My Domain URL "+
			"(https://<domain>.my.salesforce.com); set login_url to it if verification fails with invalid_grant")
	}

	if cfg.Username != "" && (existing == nil || !strings.EqualFold(existing.Username, cfg.Username)) {
		name, err := b.accountWithUsername(ctx, req.Storage, cfg.Username, "")
		if err != nil {
			return nil, err
		}
		if name != "" {
			return logical.ErrorResponse("username %q is already managed as account %q; the admin user cannot also be an ordinary account", cfg.Username, name), nil
		}
	}

	verified := time.Time{}
	if d.Get("verify").(bool) {
		verified = b.now()
		if resp, err := b.verifyConfig(ctx, cfg, vaultKey); resp != nil || err != nil {
			return resp, err
		}
	}

	if err := writeConfig(ctx, req.Storage, cfg); err != nil {
		return nil, err
	}
	b.resetClient()
	b.invalidateAllTokens()
	// For the admin user a write of config is the operator's word that the
	// credential is current, as reset_failed_logins is for accounts.
	if err := b.resetFailedLogins(ctx, req.Storage, adminUser(cfg)); err != nil {
		return nil, err
	}
	if !verified.IsZero() && cfg.GrantType == adminGrantPassword {
		b.settleRootWALsByLogin(ctx, req.Storage, cfg, verified)
	}
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
	client = b.limitRequests(client, nil)
	_, err = adminLogin(ctx, client, cfg, vaultKey)
	if err == nil {
		return nil, nil
	}
	code := sfapi.ErrorCode(err)
	b.logger.Warn("config verification failed", "grant_type", cfg.GrantType, "login_url", cfg.LoginURL, "code", code, "error", err)
	if sfapi.IsTransient(err) {
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
			"verifying config: Salesforce could not be reached (%s); nothing was stored. Try again, or write with verify=false", err))
	}
	msg := fmt.Sprintf("verifying config: Salesforce refused the %s admin grant", cfg.GrantType)
	if code != "" {
		msg += " with " + code
	}
	msg += fmt.Sprintf(" (%s); nothing was stored. Fix the settings, or write with verify=false to store them unchecked", err)
	if cfg.GrantType == adminGrantClientCredentials && sfapi.IsGenericLoginHost(cfg.LoginURL) {
		msg += ". Hint: Salesforce serves client_credentials only on the org's My Domain URL; set login_url to https://<domain>.my.salesforce.com"
	}
	return logical.ErrorResponse(msg), nil
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.rootMu.Lock()
	defer b.rootMu.Unlock()
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
	normalized, err := sfapi.ValidateLoginURL(cfg.LoginURL, cfg.AllowNonSalesforceURL)
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
		if cfg.ClientSecret, err = secretInput("client_secret", v.(string), false); err != nil {
			return err
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
		if cfg.Password, err = secretInput("password", v.(string), true); err != nil {
			return err
		}
	}
	if v, ok := d.GetOk("security_token"); ok {
		if cfg.SecurityToken, err = secretInput("security_token", v.(string), false); err != nil {
			return err
		}
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

const configHelpSynopsis = `Configure how the engine connects to Salesforce and which admin identity it uses.`

const configHelpDescription = `
The config path holds the connection to one Salesforce org:

  login_url         where logins go (https://login.salesforce.com, https://test.salesforce.com
                    or the org's My Domain URL); only https Salesforce hosts unless
                    allow_non_salesforce_url=true
  api_version       REST API version (default 66.0)
  soap_api_version  version for SOAP login() (default 64.0; login() is gone from 65.0)
  client_id, client_secret, private_key
                    the connected app or External Client App (app_type=external_client_app,
                    app_developer_name for rotate-client-secret)
  grant_type        how the engine logs in as admin: jwt_bearer, client_credentials or password
  username, password, security_token
                    the admin user for the jwt_bearer and password grants

The admin session is used to look up users and set passwords. Writes check the settings
by obtaining an admin session unless verify=false; a failed check returns Salesforce's
error code and stores nothing. Updates merge with the stored settings. Reads never return
client_secret, private_key, password or security_token; they show *_set flags and the
fingerprint of the private key's public half instead, and root_rotation_status
pending_reconciliation while an interrupted rotate-root is not settled.

Who may update config decides where credentials go. login_url, allow_non_salesforce_url
and ca_cert choose the host that every later admin login, account check, rotation and
token request talks to, so whoever can update config receives every account's password
and security token from then on. Treat update on config like root for this mount: grant
it only to those trusted with every credential the mount holds.

Stored secrets are never sent to a new endpoint. A write that changes login_url or
ca_cert, or turns allow_non_salesforce_url on, must give client_secret, password and
security_token again when they are stored (or clear them with "" if the grant does not
need them); otherwise it fails with a 400 naming them and stores nothing. private_key
is exempt: it never leaves Vault, only assertions signed with it for the new
login_url's audience do.

Example:

  vault write salesforce/config \
      login_url=https://acme.my.salesforce.com \
      client_id=3MVG9... private_key=@vault-jwt.key username=vault-admin@acme.com
`
