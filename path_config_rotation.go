package salesforce

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathConfigRotation(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "config/rotation$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "rotation-configuration",
		},
		Fields: withClientSecretScheduleFields(map[string]*framework.FieldSchema{
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
			"requests_per_second": {
				Type:    framework.TypeInt,
				Default: defaultRequestsPerSecond,
				Description: "The most Salesforce calls the engine makes to the org per second, whatever makes them: logins, token grants, " +
					"introspection, revocations, password changes, queries. Calls beyond it wait their turn (within their request's deadline).",
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
				Description: "Logins as one user that Salesforce may reject before the engine stops logging in as it; each login is reserved before it is sent, so no concurrency exceeds it. Salesforce's count only resets on a successful login, so the engine's resets only on one, or when an operator writes accounts/<name> with reset_failed_logins=true (config, for the admin user). Keep it below the org's lockout threshold (3 at the lowest).",
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
				Type: framework.TypeString,
				Description: "https URL that receives a signed JSON event after every rotation and failure, for accounts that set no webhook_url. " +
					"Write-only (receivers such as Slack's carry a secret in the path): reads show webhook_url_set and webhook_url_host.",
				DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
			},
			"webhook_allowed_networks": {
				Type: framework.TypeCommaStringSlice,
				Description: "Networks (CIDRs such as 10.20.0.0/16, or single addresses) of internal webhook receivers. " +
					"Webhooks (mount and accounts) never reach loopback, private, link-local (cloud metadata), carrier-grade NAT, " +
					"unspecified or multicast addresses unless listed here; the address is checked when the connection is made. Default: none.",
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
		}),
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
		HelpDescription: "Defaults and limits for the rotation of all accounts of this mount: password policy, import rotation, concurrency, request rate, failure backoff, login budget and the notification webhook; and the schedule of config's consumer key rotation (client_secret_rotation_*).\n\n" + secretInputHelp,
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
	data := map[string]interface{}{
		"password_policy":           rc.PasswordPolicy,
		"password_length":           rc.PasswordLength,
		"skip_import_rotation":      rc.SkipImportRotation,
		"max_concurrent_rotations":  rc.MaxConcurrentRotations,
		"requests_per_minute":       rc.RequestsPerMinute,
		"requests_per_second":       rc.RequestsPerSecond,
		"failure_backoff_base":      int64(rc.FailureBackoffBase.Seconds()),
		"failure_backoff_cap":       int64(rc.FailureBackoffCap.Seconds()),
		"login_budget_per_hour":     rc.LoginBudgetPerHour,
		"max_failed_logins":         rc.MaxFailedLogins,
		"max_new_password_attempts": rc.MaxNewPasswordAttempts,
		"min_password_lifetime":     rc.MinPasswordLifetime,
		"webhook_url_set":           rc.WebhookURL != "",
		"webhook_secret_set":        rc.WebhookSecret != "",
		"allow_insecure_webhooks":   rc.AllowInsecureWebhooks,
		"webhook_allowed_networks":  append([]string{}, rc.WebhookAllowedNetworks...),
	}
	showWebhookURL(data, "webhook_url", rc.WebhookURL)
	clientSecretScheduleData(rc, data)
	return &logical.Response{Data: data}, nil
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
	if v, ok := d.GetOk("requests_per_second"); ok {
		rc.RequestsPerSecond = v.(int)
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
	if v, ok := d.GetOk("webhook_allowed_networks"); ok {
		networks, err := normalizeAllowedNetworks(v.([]string))
		if err != nil {
			return logical.ErrorResponse(err.Error()), nil
		}
		rc.WebhookAllowedNetworks = networks
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
		secret, err := secretInput("webhook_secret", v.(string), true)
		if err != nil {
			return logical.ErrorResponse(err.Error()), nil
		}
		rc.WebhookSecret = secret
	}
	if err := applyClientSecretSchedule(d, rc); err != nil {
		return logical.ErrorResponse(err.Error()), nil
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
	err = req.Storage.Put(ctx, entry)
	b.rotationConfigChanged()
	if err != nil {
		return nil, err
	}
	return nil, b.rescheduleClientSecret(ctx, req.Storage, rc)
}

func (b *backend) pathConfigRotationDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	err := req.Storage.Delete(ctx, rotationConfigStoragePath)
	b.rotationConfigChanged()
	return nil, err
}

// rotationConfigChanged follows a write of config/rotation, here or (through
// Invalidate) on another node.
func (b *backend) rotationConfigChanged() {
	b.cache.rotation.drop(rotationConfigStoragePath)
}
