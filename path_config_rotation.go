package salesforce

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const rotationConfigStoragePath = "config/rotation"

// Defaults of config/rotation. The failed-login budget stays below
// Salesforce's smallest lockout threshold (3 failed attempts can be
// configured, 10 is the default); the login budget is far below its login
// rate limit (3,600 per user and hour).
const (
	defaultMaxConcurrentRotations = 2
	defaultRequestsPerMinute      = 60
	defaultFailureBackoffBase     = time.Minute
	defaultFailureBackoffCap      = time.Hour
	defaultLoginBudgetPerHour     = 20
	defaultMaxFailedLogins        = 2
	defaultMaxNewPasswordAttempts = 3
	defaultPasswordLength         = 24
	defaultTickInterval           = 5 * time.Second
	minPasswordLength             = 12
)

// rotationConfig holds mount-wide rotation settings. It is stored at
// config/rotation, apart from the connection config.
type rotationConfig struct {
	PasswordPolicy         string        `json:"password_policy,omitempty"`
	PasswordLength         int           `json:"password_length,omitempty"`
	SkipImportRotation     bool          `json:"skip_import_rotation"`
	MaxConcurrentRotations int           `json:"max_concurrent_rotations"`
	RequestsPerMinute      int           `json:"requests_per_minute"`
	FailureBackoffBase     time.Duration `json:"failure_backoff_base"`
	FailureBackoffCap      time.Duration `json:"failure_backoff_cap"`
	LoginBudgetPerHour     int           `json:"login_budget_per_hour"`
	// MaxFailedLogins bounds the logins Salesforce rejected per account
	// since its last successful login; none is tried once it is reached.
	// Salesforce's count never decays, so neither does this one.
	MaxFailedLogins        int `json:"max_failed_logins"`
	MaxNewPasswordAttempts int `json:"max_new_password_attempts"`
	// MinPasswordLifetime says the org enforces Salesforce's one-day
	// minimum password lifetime. The engine cannot read the org's password
	// policy, so the operator states it; it defaults to true (the safe
	// assumption) and only matters for rotation_method=self.
	MinPasswordLifetime bool   `json:"min_password_lifetime"`
	WebhookURL          string `json:"webhook_url,omitempty"`
	WebhookSecret       string `json:"webhook_secret,omitempty"`
	// AllowInsecureWebhooks lets webhooks use plain http (tests, a
	// receiver on the same host).
	AllowInsecureWebhooks bool `json:"allow_insecure_webhooks,omitempty"`
}

func defaultRotationConfig() *rotationConfig {
	return &rotationConfig{
		PasswordLength:         defaultPasswordLength,
		SkipImportRotation:     true,
		MaxConcurrentRotations: defaultMaxConcurrentRotations,
		RequestsPerMinute:      defaultRequestsPerMinute,
		FailureBackoffBase:     defaultFailureBackoffBase,
		FailureBackoffCap:      defaultFailureBackoffCap,
		LoginBudgetPerHour:     defaultLoginBudgetPerHour,
		MaxFailedLogins:        defaultMaxFailedLogins,
		MaxNewPasswordAttempts: defaultMaxNewPasswordAttempts,
		MinPasswordLifetime:    true,
	}
}

// readRotationConfig returns the stored settings, or the defaults.
func readRotationConfig(ctx context.Context, s logical.Storage) (*rotationConfig, error) {
	rc := defaultRotationConfig()
	entry, err := s.Get(ctx, rotationConfigStoragePath)
	if err != nil {
		return nil, fmt.Errorf("reading rotation config: %w", err)
	}
	if entry == nil {
		return rc, nil
	}
	if err := entry.DecodeJSON(rc); err != nil {
		return nil, fmt.Errorf("decoding rotation config: %w", err)
	}
	return rc, nil
}

func pathConfigRotation(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "config/rotation",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "salesforce",
			OperationSuffix: "rotation-configuration",
		},
		Fields: map[string]*framework.FieldSchema{
			"password_policy": {
				Type:        framework.TypeString,
				Description: "Vault password policy used for accounts that set none. Empty: the built-in generator (letters of both cases, digits and Salesforce's special characters, which meets every Salesforce complexity level).",
			},
			"password_length": {
				Type:        framework.TypeInt,
				Default:     defaultPasswordLength,
				Description: "Length of passwords from the built-in generator.",
			},
			"skip_import_rotation": {
				Type:        framework.TypeBool,
				Default:     true,
				Description: "Default of skip_import_rotation for new accounts. Rotating on import invalidates the stored security token.",
			},
			"max_concurrent_rotations": {
				Type:        framework.TypeInt,
				Default:     defaultMaxConcurrentRotations,
				Description: "How many scheduled rotations may run at once.",
			},
			"requests_per_minute": {
				Type:        framework.TypeInt,
				Default:     defaultRequestsPerMinute,
				Description: "How many scheduled rotations may start per minute against the org.",
			},
			"failure_backoff_base": {
				Type:        framework.TypeDurationSecond,
				Default:     int(defaultFailureBackoffBase.Seconds()),
				Description: "First retry delay after a failed scheduled rotation; doubles per failure.",
			},
			"failure_backoff_cap": {
				Type:        framework.TypeDurationSecond,
				Default:     int(defaultFailureBackoffCap.Seconds()),
				Description: "Longest retry delay after failed scheduled rotations.",
			},
			"login_budget_per_hour": {
				Type:        framework.TypeInt,
				Default:     defaultLoginBudgetPerHour,
				Description: "Logins with an account's own credential that the engine may make per hour (checks, validation, token re-entry).",
			},
			"max_failed_logins": {
				Type:        framework.TypeInt,
				Default:     defaultMaxFailedLogins,
				Description: "Logins with an account's own credential that Salesforce may reject before the engine stops logging in as it. Salesforce's count only resets on a successful login, so the engine's resets only on one or on a write of the account's credential or security token. Keep it below the org's lockout threshold (3 at the lowest).",
			},
			"max_new_password_attempts": {
				Type:        framework.TypeInt,
				Default:     defaultMaxNewPasswordAttempts,
				Description: "Fresh candidates tried when Salesforce rejects a new password (INVALID_NEW_PASSWORD) before the rotation fails. A rejected candidate is never sent again.",
			},
			"min_password_lifetime": {
				Type:        framework.TypeBool,
				Default:     true,
				Description: "Whether the org enforces the one-day minimum password lifetime. While true, rotation_method=self accounts cannot rotate more often than every 24 hours.",
			},
			"webhook_url": {
				Type:        framework.TypeString,
				Description: "https URL that receives a signed JSON event after every rotation and failure, for accounts that set no webhook_url. Reads show it with the query string redacted.",
			},
			"allow_insecure_webhooks": {
				Type:        framework.TypeBool,
				Description: "Allow plain http webhook URLs (mount and accounts), e.g. for a receiver on the same host. Default false: https only.",
			},
			"webhook_secret": {
				Type:        framework.TypeString,
				Description: "Key of the HMAC-SHA256 signature sent in X-Signature. Never returned.",
				DisplayAttrs: &framework.DisplayAttributes{
					Sensitive: true,
				},
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathConfigRotationRead,
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigRotationWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigRotationWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.pathConfigRotationDelete,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		ExistenceCheck:  b.pathConfigRotationExists,
		HelpSynopsis:    "Mount-wide password rotation settings.",
		HelpDescription: "Defaults and limits for the rotation of all accounts of this mount: password policy, import rotation, concurrency, request rate, failure backoff, login budget and the notification webhook.",
	}}
}

func (b *backend) pathConfigRotationExists(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	entry, err := req.Storage.Get(ctx, rotationConfigStoragePath)
	return entry != nil, err
}

func (b *backend) pathConfigRotationRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	rc, err := readRotationConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		"password_policy":           rc.PasswordPolicy,
		"password_length":           rc.PasswordLength,
		"skip_import_rotation":      rc.SkipImportRotation,
		"max_concurrent_rotations":  rc.MaxConcurrentRotations,
		"requests_per_minute":       rc.RequestsPerMinute,
		"failure_backoff_base":      int64(rc.FailureBackoffBase.Seconds()),
		"failure_backoff_cap":       int64(rc.FailureBackoffCap.Seconds()),
		"login_budget_per_hour":     rc.LoginBudgetPerHour,
		"max_failed_logins":         rc.MaxFailedLogins,
		"max_new_password_attempts": rc.MaxNewPasswordAttempts,
		"min_password_lifetime":     rc.MinPasswordLifetime,
		"webhook_url":               redactWebhookURL(rc.WebhookURL),
		"webhook_secret_set":        rc.WebhookSecret != "",
		"allow_insecure_webhooks":   rc.AllowInsecureWebhooks,
	}}, nil
}

func (b *backend) pathConfigRotationWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	rc, err := readRotationConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if v, ok := d.GetOk("password_policy"); ok {
		rc.PasswordPolicy = v.(string)
	}
	if v, ok := d.GetOk("password_length"); ok {
		rc.PasswordLength = v.(int)
	}
	if v, ok := d.GetOk("skip_import_rotation"); ok {
		rc.SkipImportRotation = v.(bool)
	}
	if v, ok := d.GetOk("max_concurrent_rotations"); ok {
		rc.MaxConcurrentRotations = v.(int)
	}
	if v, ok := d.GetOk("requests_per_minute"); ok {
		rc.RequestsPerMinute = v.(int)
	}
	if v, ok := d.GetOk("failure_backoff_base"); ok {
		rc.FailureBackoffBase = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("failure_backoff_cap"); ok {
		rc.FailureBackoffCap = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("login_budget_per_hour"); ok {
		rc.LoginBudgetPerHour = v.(int)
	}
	if v, ok := d.GetOk("max_failed_logins"); ok {
		rc.MaxFailedLogins = v.(int)
	}
	if v, ok := d.GetOk("allow_insecure_webhooks"); ok {
		rc.AllowInsecureWebhooks = v.(bool)
	}
	if v, ok := d.GetOk("max_new_password_attempts"); ok {
		rc.MaxNewPasswordAttempts = v.(int)
	}
	if v, ok := d.GetOk("min_password_lifetime"); ok {
		rc.MinPasswordLifetime = v.(bool)
	}
	if v, ok := d.GetOk("webhook_url"); ok {
		rc.WebhookURL = v.(string)
	}
	if v, ok := d.GetOk("webhook_secret"); ok {
		rc.WebhookSecret = v.(string)
	}
	if msg := rc.validate(); msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	if _, ok := d.GetOk("password_policy"); ok && rc.PasswordPolicy != "" {
		if _, err := b.System().GeneratePasswordFromPolicy(ctx, rc.PasswordPolicy); err != nil {
			return logical.ErrorResponse("password_policy %q cannot generate passwords: %v", rc.PasswordPolicy, err), nil
		}
	}
	entry, err := logical.StorageEntryJSON(rotationConfigStoragePath, rc)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, entry); err != nil {
		return nil, err
	}
	b.rotationConfigChanged()
	return nil, nil
}

func (b *backend) pathConfigRotationDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if err := req.Storage.Delete(ctx, rotationConfigStoragePath); err != nil {
		return nil, err
	}
	b.rotationConfigChanged()
	return nil, nil
}

// validate returns a message naming the first bad field, or "".
func (rc *rotationConfig) validate() string {
	switch {
	case rc.PasswordLength < minPasswordLength || rc.PasswordLength > 128:
		return fmt.Sprintf("password_length must be between %d and 128", minPasswordLength)
	case rc.MaxConcurrentRotations < 1:
		return "max_concurrent_rotations must be at least 1"
	case rc.RequestsPerMinute < 1:
		return "requests_per_minute must be at least 1"
	case rc.FailureBackoffBase < time.Second:
		return "failure_backoff_base must be at least 1s"
	case rc.FailureBackoffCap < rc.FailureBackoffBase:
		return "failure_backoff_cap must not be below failure_backoff_base"
	case rc.LoginBudgetPerHour < 1 || rc.LoginBudgetPerHour > 60:
		return "login_budget_per_hour must be between 1 and 60"
	case rc.MaxFailedLogins < 1 || rc.MaxFailedLogins > 9:
		return "max_failed_logins must be between 1 and 9 (and below the org's lockout threshold)"
	case rc.MaxNewPasswordAttempts < 1 || rc.MaxNewPasswordAttempts > 10:
		return "max_new_password_attempts must be between 1 and 10"
	}
	if rc.WebhookURL != "" {
		if err := validateWebhookURL(rc.WebhookURL, rc.AllowInsecureWebhooks); err != nil {
			return "webhook_url " + err.Error()
		}
	}
	return ""
}

// validateWebhookURL accepts absolute https URLs (http too when
// allowInsecure) without user:password, which would be sent with every
// event and shown in reads.
func validateWebhookURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("must be an absolute https URL")
	}
	if u.User != nil {
		return fmt.Errorf("must not contain a user name or password; receivers can check events with the webhook_secret signature")
	}
	if u.Scheme == "http" && !allowInsecure {
		return fmt.Errorf("must use https (events would travel unencrypted); set allow_insecure_webhooks=true in config/rotation to allow http")
	}
	return nil
}

// redactWebhookURL shows a webhook URL in reads without the values of its
// query string, which often carry an access token.
func redactWebhookURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unreadable URL)"
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, url.QueryEscape(k)+"=redacted")
		}
		sort.Strings(keys)
		u.RawQuery = strings.Join(keys, "&")
	}
	return u.String()
}
