package salesforce

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
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
	defaultRequestsPerSecond      = 50
	maxRequestsPerSecond          = 10000
	defaultFailureBackoffBase     = time.Minute
	defaultFailureBackoffCap      = time.Hour
	defaultLoginBudgetPerHour     = 20
	defaultMaxFailedLogins        = 2
	defaultMaxNewPasswordAttempts = 3
	defaultPasswordLength         = 24
	minPasswordLength             = 12
)

// rotationConfig holds mount-wide rotation settings. It is stored at
// config/rotation, apart from the connection config.
type rotationConfig struct {
	PasswordPolicy         string `json:"password_policy,omitempty"`
	PasswordLength         int    `json:"password_length,omitempty"`
	SkipImportRotation     bool   `json:"skip_import_rotation"`
	MaxConcurrentRotations int    `json:"max_concurrent_rotations"`
	RequestsPerMinute      int    `json:"requests_per_minute"`
	// RequestsPerSecond caps every Salesforce call of the mount
	// (request_rate.go).
	RequestsPerSecond  int           `json:"requests_per_second"`
	FailureBackoffBase time.Duration `json:"failure_backoff_base"`
	FailureBackoffCap  time.Duration `json:"failure_backoff_cap"`
	LoginBudgetPerHour int           `json:"login_budget_per_hour"`
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
	// WebhookAllowedNetworks are the CIDRs of internal receivers that
	// webhooks may reach besides public addresses (webhook_policy.go).
	WebhookAllowedNetworks []string `json:"webhook_allowed_networks,omitempty"`
	// ClientSecretRotation schedules rotations of config's consumer key
	// and secret (client_secret_schedule.go).
	ClientSecretRotation automatedrotationutil.AutomatedRotationParams `json:"client_secret_rotation"`
}

func defaultRotationConfig() *rotationConfig {
	return &rotationConfig{
		PasswordLength:         defaultPasswordLength,
		SkipImportRotation:     true,
		MaxConcurrentRotations: defaultMaxConcurrentRotations,
		RequestsPerMinute:      defaultRequestsPerMinute,
		RequestsPerSecond:      defaultRequestsPerSecond,
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

// validate returns a message naming the first bad field, or "".
func (rc *rotationConfig) validate() string {
	switch {
	case rc.PasswordLength < minPasswordLength || rc.PasswordLength > 128:
		return fmt.Sprintf("password_length must be between %d and 128", minPasswordLength)
	case rc.MaxConcurrentRotations < 1:
		return "max_concurrent_rotations must be at least 1"
	case rc.RequestsPerMinute < 1:
		return "requests_per_minute must be at least 1"
	case rc.RequestsPerSecond < 1 || rc.RequestsPerSecond > maxRequestsPerSecond:
		return fmt.Sprintf("requests_per_second must be between 1 and %d", maxRequestsPerSecond)
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
	if _, err := normalizeAllowedNetworks(rc.WebhookAllowedNetworks); err != nil {
		return err.Error()
	}
	if rc.WebhookURL != "" {
		if err := validateWebhookURL(rc.WebhookURL, rc.webhookPolicy()); err != nil {
			return "webhook_url " + err.Error()
		}
	}
	return ""
}

// backoff is the delay before retrying after n consecutive failures:
// exponential from failure_backoff_base, capped, with jitter.
func (rcfg *rotationConfig) backoff(n int) time.Duration {
	d := rcfg.FailureBackoffBase
	for i := 1; i < n && d < rcfg.FailureBackoffCap; i++ {
		d *= 2
	}
	if d > rcfg.FailureBackoffCap {
		d = rcfg.FailureBackoffCap
	}
	return rotationJitter(d)
}

// rotationJitter returns a duration between 80% and 100% of d, so that accounts
// failing together do not retry together.
func rotationJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}
