package salesforce

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The zero-downtime fields of accounts/<name>: two integration users
// (rotation_strategy=dual_account), rotation after a read
// (rotate_after_read, cooldown) and ending the old credential's sessions
// (end_sessions_on_rotation).

func accountDualFields() map[string]*framework.FieldSchema {
	sensitive := func(name string) *framework.DisplayAttributes {
		return &framework.DisplayAttributes{Name: name, Sensitive: true}
	}
	return map[string]*framework.FieldSchema{
		"rotation_strategy": {
			Type:          framework.TypeString,
			AllowedValues: []interface{}{strategySingle, strategyDual},
			Description: "single (default): one Salesforce user, whose password changes at each rotation. dual_account: two interchangeable " +
				"users (username and secondary_username); creds/<name> serves the active one, and a rotation changes the inactive one's password, " +
				"verifies it and makes it active, so the credential served before keeps working until the next rotation.",
		},
		"secondary_username": {
			Type:        framework.TypeString,
			Description: "With rotation_strategy=dual_account: the second Salesforce user, with the same profile, permission sets and permission set groups as username.",
		},
		"secondary_password": {
			Type:         framework.TypeString,
			Description:  "Current password of secondary_username; checked by logging in like password. Write-only.",
			DisplayAttrs: sensitive("Secondary password"),
		},
		"secondary_security_token": {
			Type:         framework.TypeString,
			Description:  "Security token of secondary_username (security_token_mode applies to both users). Write-only.",
			DisplayAttrs: sensitive("Secondary security token"),
		},
		"end_sessions_on_rotation": {
			Type: framework.TypeBool,
			Description: "After each rotation, end the rotated user's other Salesforce sessions and revoke the OAuth tokens apps hold for it " +
				"(refresh tokens, with their access tokens), so the old password cannot keep a session alive. Needs Manage Users and " +
				"Customize Application for the config's admin. The engine's own sessions are kept.",
		},
		"rotate_after_read": {
			Type: framework.TypeBool,
			Description: "Check-out semantics: rotate the password cooldown after the first creds/<name> read since the last rotation, " +
				"for break-glass and short-lived human use. Not with rotation_strategy=dual_account.",
		},
		"cooldown": {
			Type: framework.TypeDurationSecond,
			Description: "With rotate_after_read: how long after the first read the password is rotated (e.g. 1h; at least 5s). " +
				"With rotation_method=self and min_password_lifetime in config/rotation, at least 24h. Reads return it in seconds.",
		},
	}
}

// applyAccountDual applies the zero-downtime fields of a write to acct,
// before applyAccountRotation (whose checks depend on the strategy). A new
// or changed secondary credential is checked by one login within the
// secondary user's login budget. It returns a response to send as is (a
// bad field, a rejected credential: HTTP 400), or an error.
func (b *backend) applyAccountDual(ctx context.Context, req *logical.Request, d *framework.FieldData, txn *accountTxn, acct *account, cfg *salesforceConfig) (*logical.Response, []string, error) {
	name := txn.name
	var warnings []string
	now := b.now().UTC()
	strategy := acct.RotationStrategy
	if v, ok := d.GetOk("rotation_strategy"); ok {
		strategy = v.(string)
	}
	secUser, userSet := d.GetOk("secondary_username")
	secPassword, passwordSet := d.GetOk("secondary_password")
	secToken, tokenSet := d.GetOk("secondary_security_token")

	if strategy != strategyDual {
		if userSet || passwordSet || tokenSet {
			return logical.ErrorResponse("secondary_username, secondary_password and secondary_security_token need rotation_strategy=dual_account"), nil, nil
		}
		if acct.dual() {
			if !acct.flatIsActive() || !acct.SwitchPendingSince.IsZero() {
				return logical.ErrorResponse("rotation_strategy cannot go back to single while creds/%s serves the secondary user %s or a switch is pending: "+
					"rotate until the primary user %s is active", name, acct.ActiveUsername, acct.Username), nil, nil
			}
			warnings = append(warnings, fmt.Sprintf("the account no longer keeps the credential of %s; its password is unchanged in Salesforce", acct.Secondary.Username))
		}
		acct.accountDual = accountDual{}
	} else {
		sec := userCredential{}
		if acct.Secondary != nil {
			sec = *acct.Secondary
		}
		changed := false
		if userSet {
			u := strings.TrimSpace(secUser.(string))
			if err := validateUsername("secondary_username", u); err != nil {
				return logical.ErrorResponse(err.Error()), nil, nil
			}
			if !strings.EqualFold(u, sec.Username) {
				if acct.dual() && (!acct.flatIsActive() || !acct.SwitchPendingSince.IsZero()) {
					return logical.ErrorResponse("secondary_username cannot change while creds/%s serves it or a switch to it is pending", name), nil, nil
				}
				sec = userCredential{Username: u}
				changed = true
			}
		}
		if sec.Username == "" {
			return logical.ErrorResponse("rotation_strategy=dual_account needs secondary_username and secondary_password (and secondary_security_token where the users need one)"), nil, nil
		}
		if strings.EqualFold(sec.Username, acct.Username) {
			return logical.ErrorResponse("secondary_username must be another Salesforce user than username %s", acct.Username), nil, nil
		}
		if cfg != nil && strings.EqualFold(cfg.Username, sec.Username) {
			return logical.ErrorResponse("secondary_username %s is the admin user of config; the engine's admin identity cannot also be managed as an account", sec.Username), nil, nil
		}
		if changed {
			other, err := txn.claimUsername(ctx, sec.Username)
			if err != nil {
				return nil, nil, err
			}
			if other != "" && other != name {
				return logical.ErrorResponse("secondary_username %s is already managed by account %q; one Salesforce user can be stored only once", sec.Username, other), nil, nil
			}
		}
		if passwordSet {
			pw, err := secretInput("secondary_password", secPassword.(string), true)
			if err != nil {
				return logical.ErrorResponse(err.Error()), nil, nil
			}
			if pw == "" {
				return logical.ErrorResponse("secondary_password must not be empty"), nil, nil
			}
			changed = changed || pw != sec.Password
			sec.Password = pw
		}
		if sec.Password == "" {
			return logical.ErrorResponse("secondary_password is required with secondary_username %s", sec.Username), nil, nil
		}
		if tokenSet {
			tok, err := secretInput("secondary_security_token", secToken.(string), false)
			if err == nil {
				err = validateSecurityToken("secondary_security_token", tok)
			}
			if err != nil {
				return logical.ErrorResponse(err.Error()), nil, nil
			}
			changed = changed || tok != sec.SecurityToken
			sec.SecurityToken = tok
		}
		if tokenModeOf(d, acct) == tokenModeRequired && sec.SecurityToken == "" {
			// Checked before the login, which would fail without it.
			return logical.ErrorResponse("security_token_mode=required applies to both users: set secondary_security_token"), nil, nil
		}
		if !acct.dual() {
			// Until the first rotation creds/<name> serves the primary user.
			acct.ActiveUsername, acct.ActiveSince = acct.Username, now
		}
		acct.RotationStrategy = strategyDual
		acct.Secondary = &sec
		if d.Get("reset_failed_logins").(bool) {
			// Both users: the operator checked them in Salesforce. Before
			// this write's own login, as for the primary.
			if err := b.resetFailedLogins(ctx, req.Storage, accountUser(name, acct.viewOf(sec.Username))); err != nil {
				return nil, nil, err
			}
		}
		if changed {
			sec.SecurityTokenStatus = tokenStatusCurrent
			sec.UnverifiedCandidateAt = time.Time{}
			// Whatever blocked the rotation of the inactive user is the
			// operator's fixed, as for a write of the primary credential.
			acct.RotationBlocked, acct.ConsecutiveFailures = "", 0
			view := acct.viewOf(sec.Username)
			if verifyRequested(d) {
				if cfg == nil {
					return logical.ErrorResponse("%s; or write the account with verify=false to store it unchecked", errConfigMissing), nil, nil
				}
				sess, resp, err := b.verifyAccountCredential(ctx, req.Storage, name, view)
				if resp != nil || err != nil {
					return resp, nil, err
				}
				if sess.UserID != "" {
					sec.UserID = sess.UserID
				}
			} else {
				warnings = append(warnings, "the secondary credential was stored without checking it against Salesforce (verify=false)")
			}
		}
	}

	if v, ok := d.GetOk("end_sessions_on_rotation"); ok {
		acct.EndSessionsOnRotation = v.(bool)
		if !acct.EndSessionsOnRotation {
			// Nothing left pending for the users either.
			acct.EndSessionsPendingSince = time.Time{}
			if acct.Secondary != nil {
				acct.Secondary.EndSessionsPendingSince = time.Time{}
			}
		}
	}
	if v, ok := d.GetOk("rotate_after_read"); ok {
		acct.RotateAfterRead = v.(bool)
		if !acct.RotateAfterRead && !acct.ReadRotationAt.IsZero() {
			// Disarmed: the next rotation follows the schedule alone.
			acct.ReadRotationAt, acct.NextVaultRotation = time.Time{}, time.Time{}
		}
	}
	if v, ok := d.GetOk("cooldown"); ok {
		acct.Cooldown = time.Duration(v.(int)) * time.Second
	}
	return nil, warnings, nil
}

// checkAccountModes checks how the zero-downtime settings combine with the
// rest of the account and the org's policy, once every field is applied.
func (b *backend) checkAccountModes(ctx context.Context, req *logical.Request, d *framework.FieldData, name string, acct *account) ([]string, error) {
	rcfg, err := readRotationConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	var warnings []string
	if acct.dual() {
		if acct.SecurityTokenMode == tokenModeRequired && acct.Secondary.SecurityToken == "" {
			return nil, fmt.Errorf("security_token_mode=required applies to both users: set secondary_security_token")
		}
		if acct.SecurityTokenMode == tokenModeRequired && acct.HasNonzeroRotationValues() {
			warnings = append(warnings, fmt.Sprintf("each rotation makes Salesforce email the inactive user a new security token; the switch to that user "+
				"waits until it is written to accounts/%s/security-token (creds/%s keeps serving the active user meanwhile)", name, name))
		}
	}
	if acct.Cooldown < 0 || acct.Cooldown > 0 && acct.Cooldown < minRotationPeriod {
		return nil, fmt.Errorf("cooldown must be at least %s", minRotationPeriod)
	}
	if !acct.RotateAfterRead {
		if _, set := d.GetOk("cooldown"); set && acct.Cooldown > 0 {
			return nil, fmt.Errorf("cooldown needs rotate_after_read=true")
		}
		return warnings, nil
	}
	switch {
	case acct.dual():
		return nil, fmt.Errorf("rotate_after_read is refused with rotation_strategy=dual_account: a dual account's credential stays valid until " +
			"the rotation after next, so a rotation after a read would not end the credential that was read")
	case acct.Cooldown == 0:
		return nil, fmt.Errorf("rotate_after_read needs cooldown: how long after the first read the password is rotated (e.g. cooldown=1h)")
	case acct.method() == rotationMethodSelf && rcfg.MinPasswordLifetime && acct.Cooldown < 24*time.Hour:
		return nil, fmt.Errorf("rotate_after_read with cooldown %s is refused: the org's minimum password lifetime (min_password_lifetime in "+
			"config/rotation) lets a user change its own password (rotation_method=self) at most once a day, so the password read could not "+
			"be rotated that soon. Use cooldown=24h or longer, rotation_method=admin (an admin's password reset is not bound by it), or "+
			"min_password_lifetime=false if the org does not enforce it", acct.Cooldown)
	}
	warnings = append(warnings, fmt.Sprintf("the password is rotated %s after the first creds/%s read since the last rotation", acct.Cooldown, name))
	return warnings, nil
}

// addAccountDualStatus adds the zero-downtime settings and state to an
// accounts/<name> read; never a password or token.
// Like the other optional settings, each shows only where it is used.
func (b *backend) addAccountDualStatus(ctx context.Context, s logical.Storage, name string, acct *account, data map[string]interface{}) error {
	if acct.EndSessionsOnRotation {
		data["end_sessions_on_rotation"] = true
	}
	if e := acct.LastSessionsEnded; e != nil {
		data["last_sessions_ended_at"] = formatTime(e.At)
		data["last_sessions_ended_username"] = e.Username
		data["last_sessions_ended"] = e.Sessions
		data["last_oauth_tokens_revoked"] = e.OAuthGrants
	}
	if acct.RotateAfterRead || acct.Cooldown > 0 {
		data["rotate_after_read"] = acct.RotateAfterRead
		data["cooldown"] = int64(acct.Cooldown.Seconds())
		setIfNotEmpty(data, "read_rotation_at", formatTime(acct.ReadRotationAt))
	}
	if !acct.dual() {
		return nil
	}
	sec := acct.Secondary
	data["rotation_strategy"] = strategyDual
	data["secondary_username"] = sec.Username
	data["secondary_security_token_set"] = sec.SecurityToken != ""
	data["secondary_user_id"] = sec.UserID
	view := acct.viewOf(sec.Username)
	data["secondary_security_token_status"] = tokenStatusOf(view)
	logins, err := b.loginStatus(ctx, s, accountUser(name, view))
	if err != nil {
		return err
	}
	data["secondary_failed_logins"] = logins.Failed
	addDualState(acct, data)
	return nil
}

// addDualState adds who is active, since when and until when the other
// user's credential stays valid, to a read of a dual account.
func addDualState(acct *account, data map[string]interface{}) {
	data["active_user"] = acct.roleOf(acct.ActiveUsername)
	data["active_username"] = acct.ActiveUsername
	data["active_since"] = formatTime(acct.ActiveSince)
	if acct.SwitchPendingSince.IsZero() && acct.scheduled() {
		// The other user's password changes at the next rotation.
		data["grace_until"] = formatTime(acct.NextVaultRotation)
	}
	if st := acct.switchStatus(); st != "" {
		data["switch_status"] = st
		data["switch_pending_since"] = formatTime(acct.SwitchPendingSince)
		setIfNotEmpty(data, "switch_reason", acct.SwitchReason)
	}
}

// tokenModeOf is the security_token_mode the write leaves the account with,
// as applyAccountRotation decides it: the field, else required when a
// token is stored.
func tokenModeOf(d *framework.FieldData, acct *account) string {
	if v, ok := d.GetOk("security_token_mode"); ok {
		return v.(string)
	}
	if _, written := d.GetOk("security_token"); !written && acct.SecurityTokenMode != "" {
		return acct.SecurityTokenMode
	}
	if acct.SecurityToken != "" {
		return tokenModeRequired
	}
	return tokenModeNotRequired
}
