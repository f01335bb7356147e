package salesforce

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
)

// minRotationPeriod is the queue's resolution; shorter periods cannot be
// honoured.
const minRotationPeriod = 5 * time.Second

// accountRotationFields are the rotation fields of accounts/<name>.
func accountRotationFields() map[string]*framework.FieldSchema {
	fields := map[string]*framework.FieldSchema{
		"rotation_method": {
			Type:          framework.TypeString,
			AllowedValues: []interface{}{rotationMethodAdmin, rotationMethodSelf},
			Description: "How the password is changed: admin (default; the config's admin session sets it through REST) or " +
				"self (the account logs in and changes its own password with SOAP changeOwnPassword, for orgs that grant the engine no admin).",
		},
		"password_policy": {
			Type:        framework.TypeString,
			Description: "Vault password policy for this account's new passwords; default: config/rotation's, else the built-in generator.",
		},
		"security_token_mode": {
			Type:          framework.TypeString,
			AllowedValues: []interface{}{tokenModeNotRequired, tokenModeRequired},
			Description: "not_required: the user logs in from trusted IP ranges without a token (checked on write), so it rotates freely. " +
				"required: logins need the security token, which Salesforce only emails after a password change. " +
				"Default: required when a security_token is stored, else not_required.",
		},
		"allow_scheduled_rotation_with_token": {
			Type: framework.TypeBool,
			Description: "Opt in to scheduled rotation of a security_token_mode=required account. Each rotation leaves the stored " +
				"token stale until the emailed one is written to accounts/<name>/security-token.",
		},
		"skip_import_rotation": {
			Type:        framework.TypeBool,
			Description: "On create: do not rotate right away (default true, or config/rotation's default). Rotating on import invalidates the stored security token.",
		},
		"next_rotation": {
			Type:        framework.TypeString,
			Description: "Explicit time (RFC 3339) of the next scheduled rotation, e.g. to stagger accounts; later rotations follow the period or schedule.",
		},
		"validation_query": {
			Type:        framework.TypeString,
			Description: "SOQL the integration depends on, run with the new credential after each rotation (SELECT ...).",
		},
		"validation_webhook": {
			Type: framework.TypeString,
			Description: "URL told after each rotation; a non-2xx answer is reported as a failed validation. " +
				"Write-only: reads show validation_webhook_set and validation_webhook_host.",
			DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
		},
		"pre_rotation_webhook": {
			Type: framework.TypeString,
			Description: "URL asked before each rotation; a non-2xx answer postpones the rotation. " +
				"Write-only: reads show pre_rotation_webhook_set and pre_rotation_webhook_host.",
			DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
		},
		"unlock_after_rotation": {
			Type:        framework.TypeBool,
			Description: "After a rotation, unlock the user's login if integrations still holding the old password locked it.",
		},
		"webhook_url": {
			Type: framework.TypeString,
			Description: "URL that receives a signed JSON event after each rotation and failure; default: config/rotation's webhook_url. " +
				"Write-only: reads show webhook_url_set and webhook_url_host.",
			DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
		},
	}
	automatedrotationutil.AddAutomatedRotationFields(fields)
	// The rotation manager's retry policy is Enterprise-only; the engine
	// runs its own queue.
	delete(fields, "rotation_policy")
	// The SDK's descriptions speak of Vault Enterprise's rotation manager;
	// this engine schedules rotations itself, also on the community edition.
	for name, desc := range accountRotationFieldDescriptions {
		fields[name].Description = desc
	}
	return fields
}

var accountRotationFieldDescriptions = map[string]string{
	"rotation_period": "Rotate the password this long after the last rotation (e.g. 24h or 86400 seconds; at least 5s). " +
		"Mutually exclusive with rotation_schedule; 0 turns periodic rotation off. The engine's own queue runs it, on Vault community edition too. " +
		"Reads return it in seconds, and only when set. The next rotation is one period after the last one (after the write for a new account), " +
		"or at next_rotation; a new account rotates at once when skip_import_rotation=false.",
	"rotation_schedule": "Cron-style schedule of rotations in UTC (e.g. \"0 3 * * SAT\"), run by the engine's own queue. " +
		"Mutually exclusive with rotation_period; empty turns scheduled rotation off. next_rotation overrides only the next run.",
	"rotation_window": "With rotation_schedule: how long after each scheduled time a rotation may still start (e.g. 2h, at least 1h). " +
		"A rotation that could not start in its window is skipped and reported as rotation_status=missed_window; the next one follows the schedule. " +
		"Reads return it in seconds, and only with a schedule. 0: no limit.",
	"disable_automated_rotation": "Pause scheduled rotation while keeping rotation_period or rotation_schedule: the engine's queue skips the account " +
		"and next_vault_rotation is cleared until this is set back to false. rotate/<name> still rotates on demand.",
}

// applyAccountRotation validates and applies the rotation fields of a
// write to acct before it is stored. A returned error is the caller's fault
// (HTTP 400) and names the field.
func (b *backend) applyAccountRotation(ctx context.Context, req *logical.Request, d *framework.FieldData, name string, acct *account, isCreate bool) (warnings []string, err error) {
	rcfg, err := b.readRotationConfigCached(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	now := b.now()

	before := acct.AutomatedRotationParams
	p := acct.AutomatedRotationParams
	if err := p.ParseAutomatedRotationFields(d); err != nil {
		return nil, err
	}
	// An update that switches between period and schedule drops the other.
	if v, ok := d.GetOk("rotation_schedule"); ok && v.(string) != "" {
		if _, set := d.GetOk("rotation_period"); !set {
			p.RotationPeriod = 0
		}
	}
	if v, ok := d.GetOk("rotation_period"); ok && v.(int) != 0 {
		if _, set := d.GetOk("rotation_schedule"); !set {
			p.RotationSchedule = ""
			p.RotationWindow = 0
		}
	}
	if p.RotationSchedule != "" && p.RotationPeriod != 0 {
		return nil, automatedrotationutil.ErrRotationMutuallyExclusiveFields
	}
	if p.RotationSchedule != "" {
		if err := scheduleFires(p.RotationSchedule, now); err != nil {
			return nil, err
		}
	}
	if p.RotationPeriod < 0 || (p.RotationPeriod > 0 && p.RotationPeriod < minRotationPeriod) {
		return nil, fmt.Errorf("rotation_period must be at least %s", minRotationPeriod)
	}
	if p.RotationWindow != 0 {
		if p.RotationSchedule == "" {
			return nil, fmt.Errorf("rotation_window needs rotation_schedule")
		}
		if err := rotation.DefaultScheduler.ValidateRotationWindow(int(p.RotationWindow.Seconds())); err != nil {
			return nil, err
		}
	}
	acct.AutomatedRotationParams = p

	if v, ok := d.GetOk("rotation_method"); ok {
		acct.RotationMethod = v.(string)
	}
	if acct.RotationMethod == "" {
		acct.RotationMethod = rotationMethodAdmin
	}
	if v, ok := d.GetOk("password_policy"); ok {
		policy := v.(string)
		if policy != "" {
			if _, err := b.System().GeneratePasswordFromPolicy(ctx, policy); err != nil {
				return nil, fmt.Errorf("password_policy %q cannot generate passwords: %v", policy, err)
			}
		}
		acct.PasswordPolicy = policy
	}

	_, tokenWritten := d.GetOk("security_token")
	_, passwordWritten := d.GetOk("password")
	modeChanged := false
	if v, ok := d.GetOk("security_token_mode"); ok {
		modeChanged = acct.SecurityTokenMode != v.(string)
		acct.SecurityTokenMode = v.(string)
	} else if tokenWritten {
		// Without an explicit mode, the mode follows whether a token is
		// stored.
		acct.SecurityTokenMode = ""
	}
	if acct.SecurityTokenMode == "" {
		acct.SecurityTokenMode = tokenModeNotRequired
		if acct.SecurityToken != "" {
			acct.SecurityTokenMode = tokenModeRequired
		}
		modeChanged = true
	}
	if acct.SecurityTokenMode == tokenModeRequired && acct.SecurityToken == "" {
		return nil, fmt.Errorf("security_token_mode=required needs a security_token")
	}
	if tokenWritten || passwordWritten || isCreate {
		// The core checked the new credential by logging in (unless
		// verify=false): whatever blocked rotation is the operator's fixed.
		acct.SecurityTokenStatus = tokenStatusCurrent
		acct.RotationBlocked = ""
		acct.ConsecutiveFailures = 0
		// The failed-login count is not the account's but the user's in
		// Salesforce: the check's successful login reset it (as it did
		// Salesforce's), a write with verify=false does not.
	}
	// Without a stored token the core's login check already logged in
	// without one; with a token stored, not_required needs its own proof.
	if acct.SecurityTokenMode == tokenModeNotRequired && acct.SecurityToken != "" &&
		(modeChanged || tokenWritten || passwordWritten) && verifyRequested(d) {
		if err := b.checkLoginWithoutToken(ctx, req.Storage, name, acct); err != nil {
			return nil, err
		}
	}

	for _, f := range []struct {
		field string
		dst   *string
	}{
		{"validation_webhook", &acct.ValidationWebhook},
		{"pre_rotation_webhook", &acct.PreRotationWebhook},
		{"webhook_url", &acct.WebhookURL},
	} {
		if v, ok := d.GetOk(f.field); ok {
			u := strings.TrimSpace(v.(string))
			if u != "" {
				if err := validateWebhookURL(u, rcfg.webhookPolicy()); err != nil {
					return nil, fmt.Errorf("%s %w", f.field, err)
				}
			}
			*f.dst = u
		}
	}
	if v, ok := d.GetOk("validation_query"); ok {
		q := strings.TrimSpace(v.(string))
		if q != "" && !strings.HasPrefix(strings.ToUpper(q), "SELECT ") {
			return nil, fmt.Errorf("validation_query must be a SOQL SELECT statement")
		}
		acct.ValidationQuery = q
	}
	if v, ok := d.GetOk("unlock_after_rotation"); ok {
		acct.UnlockAfterRotation = v.(bool)
	}
	if v, ok := d.GetOk("allow_scheduled_rotation_with_token"); ok {
		acct.AllowScheduledRotationWithToken = v.(bool)
	}
	if isCreate {
		acct.SkipImportRotation = rcfg.SkipImportRotation
	}
	if v, ok := d.GetOk("skip_import_rotation"); ok {
		if isCreate {
			acct.SkipImportRotation = v.(bool)
		} else if v.(bool) != acct.SkipImportRotation {
			warnings = append(warnings, "skip_import_rotation only applies when an account is created; ignored")
		}
	}

	// A dual account serves the other user until the emailed token is
	// written, so its rotations never hand out a stale token.
	if (acct.scheduled() || acct.RotateAfterRead) && acct.SecurityTokenMode == tokenModeRequired && !acct.AllowScheduledRotationWithToken && !acct.dual() {
		return nil, fmt.Errorf("scheduled rotation (or rotate_after_read) of an account with security_token_mode=required is refused: "+
			"every password change makes Salesforce email a new security token that no API returns, so after each "+
			"scheduled rotation the stored token is stale and integrations using password+token fail until someone writes "+
			"the emailed token to accounts/%s/security-token. Prefer an OAuth role (JWT bearer or client credentials, "+
			"no password needed), add Vault's address to the trusted IP ranges and set security_token_mode=not_required, or use "+
			"rotation_strategy=dual_account; or opt in with allow_scheduled_rotation_with_token=true", name)
	}
	// (A rotation a read armed is checked with rotate_after_read's cooldown.)
	if acct.method() == rotationMethodSelf && acct.scheduled() && acct.HasNonzeroRotationValues() && rcfg.MinPasswordLifetime {
		if gap := shortestRotationGap(acct, now); gap < 24*time.Hour {
			return nil, fmt.Errorf("rotation_method=self with the org's one-day minimum password lifetime needs at least 24h between rotations (this setting allows %s); "+
				"use rotation_method=admin, a longer period, or set min_password_lifetime=false in config/rotation if the org does not enforce it", gap)
		}
	}

	if acct.scheduled() && acct.SecurityTokenMode == tokenModeRequired && !acct.dual() {
		warnings = append(warnings, "each scheduled rotation leaves the security token stale until the emailed token is written to accounts/"+name+"/security-token")
	}
	if acct.scheduled() && acct.RotationPeriod > 0 && acct.RotationPeriod < time.Hour {
		warnings = append(warnings, "rotation_period is under an hour; every rotation uses logins from the account's hourly login budget")
	}

	// The next rotation is stored explicitly, so restarts never rotate
	// anything that is not due.
	nextRaw, nextSet := d.GetOk("next_rotation")
	switch {
	case !acct.scheduled():
		if nextSet && nextRaw.(string) != "" {
			return nil, fmt.Errorf("next_rotation needs rotation_period or rotation_schedule")
		}
		acct.NextVaultRotation = time.Time{}
	case nextSet && nextRaw.(string) != "":
		t, err := time.Parse(time.RFC3339, nextRaw.(string))
		if err != nil {
			return nil, fmt.Errorf("next_rotation must be an RFC 3339 time such as 2030-01-02T15:04:05Z")
		}
		acct.NextVaultRotation = t.UTC()
	case isCreate && !acct.SkipImportRotation:
		acct.NextVaultRotation = now.UTC()
	case isCreate || acct.NextVaultRotation.IsZero() || before != acct.AutomatedRotationParams:
		base := now
		if acct.RotationPeriod > 0 && !acct.LastVaultRotation.IsZero() {
			base = acct.LastVaultRotation
		}
		next := nextRotation(acct, base)
		if next.Before(now) {
			next = now.UTC()
		}
		acct.NextVaultRotation = next
	}
	return warnings, nil
}

// verifyRequested reads the core's verify field (default true).
func verifyRequested(d *framework.FieldData) bool {
	v, ok := d.GetOk("verify")
	if !ok {
		return true
	}
	b, _ := v.(bool)
	return b
}

// checkLoginWithoutToken proves that security_token_mode=not_required
// holds: the account logs in from Vault's address without a token.
func (b *backend) checkLoginWithoutToken(ctx context.Context, s logical.Storage, name string, acct *account) error {
	client, cfg, err := b.getClient(ctx, s)
	if err != nil {
		return err
	}
	res, err := b.probeLogin(ctx, s, client, cfg, name, acct, acct.Password, false, credOperator)
	if err != nil {
		return fmt.Errorf("could not check that the account logs in without a security token: %v", err)
	}
	switch res.verdict {
	case loginOK, loginExpired:
		return nil
	case loginPasswordOnly:
		return fmt.Errorf("security_token_mode=not_required, but Salesforce asks for a security token when Vault logs in as %s: "+
			"add Vault's address to the org's trusted IP ranges or the profile's login IP ranges, or use security_token_mode=required", acct.Username)
	default:
		return fmt.Errorf("security_token_mode=not_required, but logging in without a security token failed: %v", res.cause)
	}
}

// scheduleFires refuses a cron schedule that matches no date, such as
// "0 3 30 2 *" (30 February): the scheduler finds no next time for it, and
// an account with no next time must not be taken for one that is due.
func scheduleFires(schedule string, now time.Time) error {
	sched, err := rotation.DefaultScheduler.Parse(schedule)
	if err != nil {
		return fmt.Errorf("rotation_schedule %q cannot be parsed: %v", schedule, err)
	}
	if sched.Next(now).IsZero() {
		return fmt.Errorf("rotation_schedule %q never fires: no date matches its day of the month and month (such as 30 February)", schedule)
	}
	return nil
}

// shortestRotationGap is the shortest time between two scheduled
// rotations of acct.
func shortestRotationGap(acct *account, now time.Time) time.Duration {
	if acct.RotationSchedule == "" {
		return acct.RotationPeriod
	}
	sched, err := rotation.DefaultScheduler.Parse(acct.RotationSchedule)
	if err != nil {
		return 0
	}
	shortest := time.Duration(1<<63 - 1)
	t := sched.Next(now)
	// A year of fires covers every cron pattern's gaps (weekday, monthly).
	for i := 0; i < 400; i++ {
		n := sched.Next(t)
		if n.IsZero() {
			break
		}
		if g := n.Sub(t); g < shortest {
			shortest = g
		}
		if shortest < 24*time.Hour {
			break
		}
		t = n
	}
	return shortest
}
