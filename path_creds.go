package salesforce

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
)

func pathCreds(b *backend) []*framework.Path {
	sensitive := &framework.DisplayAttributes{Sensitive: true}
	responseFields := map[string]*framework.FieldSchema{
		"username": {
			Type:        framework.TypeString,
			Description: "Salesforce username.",
		},
		"password": {
			Type:         framework.TypeString,
			Description:  "Current password.",
			DisplayAttrs: sensitive,
		},
		"security_token": {
			Type:         framework.TypeString,
			Description:  "Security token; empty when the user logs in from trusted IP ranges without one.",
			DisplayAttrs: sensitive,
		},
		"password_with_token": {
			Type:         framework.TypeString,
			Description:  "Password followed by the security token: the exact string SOAP login() and the OAuth username-password flow expect as the password.",
			DisplayAttrs: sensitive,
		},
		"login_url": {
			Type:        framework.TypeString,
			Description: "Where to log in, from config.",
		},
		"user_id": {
			Type:        framework.TypeString,
			Description: "Salesforce user id (005...), learned when the credential was last checked.",
		},
		"ttl": {
			Type:        framework.TypeDurationSecond,
			Description: "Scheduled accounts: seconds until the next scheduled rotation (0 while it is due).",
		},
		"rotation_period": {
			Type: framework.TypeDurationSecond,
			Description: "Scheduled accounts: seconds between rotations (for a rotation_schedule, from the next rotation to the one after). " +
				"Vault Agent reads the credential again when ttl runs out only when this is present. Left out while the security token is stale " +
				"or an interrupted rotation is unsettled, when the credential changes before the next rotation.",
		},
		"last_updated": {
			Type:        framework.TypeString,
			Description: "When the credential served here last changed (RFC 3339): a new password or token written, or a rotation; not settings or status.",
		},
	}

	return []*framework.Path{
		{
			Pattern: "creds/(?P<name>" + accountNameRegex + ")$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "credentials",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {
					Type:        framework.TypeString,
					Description: "Name of the account (as stored under accounts/<name>).",
					Required:    true,
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: b.pathCredsRead,
					Summary:  "Read an account's current credential: username, password, security token and both composed.",
					Responses: map[int][]framework.Response{
						http.StatusOK: {{
							Description: "OK",
							Fields:      responseFields,
						}},
					},
				},
			},
			HelpSynopsis:    strings.TrimSpace(credsHelpSynopsis),
			HelpDescription: strings.TrimSpace(credsHelpDescription),
		},
	}
}

func (b *backend) pathCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, bad := accountNameArg(d)
	if bad != nil {
		return bad, nil
	}
	acct, err := b.readAccountCached(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, accountNotFound(name)
	}
	// rotate_after_read: the first read since the last rotation arms it.
	if acct, err = b.armReadRotation(ctx, req.Storage, name, acct); err != nil || acct == nil {
		if err == nil {
			err = accountNotFound(name)
		}
		return nil, err
	}
	stored := acct
	// A dual account serves its active user.
	acct = acct.activeView()
	loginURL := configDefaultLoginURL
	cfg, err := b.readConfigCached(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		loginURL = cfg.LoginURL
	}
	resp := &logical.Response{
		Data: map[string]interface{}{
			"username":            acct.Username,
			"password":            acct.Password,
			"security_token":      acct.SecurityToken,
			"password_with_token": acct.passwordWithToken(),
			"login_url":           loginURL,
			"user_id":             acct.UserID,
			"last_updated":        formatTime(acct.LastUpdated),
		},
	}
	pending, err := b.pendingRotation(ctx, req.Storage, name, stored)
	if err != nil {
		return nil, err
	}
	if pending != nil && !strings.EqualFold(pending.username, acct.Username) {
		// An unsettled rotation of a dual account's inactive user does
		// not touch the credential served here.
		pending = nil
	}
	b.addCredsRotationStatus(name, acct, pending, resp.Data, resp)
	if acct.dual() {
		resp.Data["rotation_strategy"] = strategyDual
		addDualState(acct, resp.Data)
	}
	if acct.RotateAfterRead && !acct.ReadRotationAt.IsZero() {
		resp.Data["read_rotation_at"] = formatTime(acct.ReadRotationAt)
	}
	return resp, nil
}

const credsHelpSynopsis = `Read the current credential of a stored Salesforce account.`

const credsHelpDescription = `
Returns what an application needs to log in as the account's Salesforce user:

  username             the Salesforce username
  password             the current password
  security_token       the security token (empty if none is stored)
  password_with_token  password and token concatenated: pass this as the password to SOAP
                       login() or the OAuth username-password flow
  login_url            where to log in
  user_id              the Salesforce user id
  last_updated         when the credential served here last changed: a new password or token
                       written, or a rotation (not description, settings or status changes)

With rotation_strategy=dual_account the credential is the active user's, and the read says
which user is active (active_user, active_username), since when (active_since) and until
when the other user's credential stays valid (grace_until: its password changes at the
next rotation). Re-read at least once per rotation period and nothing ever fails a login.

With rotate_after_read the first read since the last rotation arms a rotation cooldown
later (read_rotation_at, ttl).

The response is not a lease: the credential stays valid until it is rotated or changed.

For an account with scheduled rotation it also has next_vault_rotation, ttl (seconds until
then) and rotation_period (seconds between rotations; for a rotation_schedule, from the next
one to the one after). With rotation_period present, Vault Agent reads the credential again
when ttl runs out, right after the scheduled rotation, instead of every
static_secret_render_interval; while a rotation is due, ttl is 0 and the Agent reads again
every second until it has happened. It also means that the Agent does not look before then:
after a manual rotate/<name>, or a new password written to accounts/<name>, restart the
Agents that render the credential, or they keep the old one until their ttl runs out (a
SIGHUP does not make Vault Agent read secrets again). rotation_period is left out, so that
the Agent keeps reading on its interval, while the credential is expected to change before
the next rotation: while the security token is stale (until the emailed token is written)
and while an interrupted rotation is unsettled.

Grant read on this path only to the applications that use the account; applications that
only need an access token should use an OAuth role instead, so the password never leaves Vault.

Example:

  vault read salesforce/creds/etl
`

// credsRotationPeriod is the rotation_period creds/<name> returns: the
// account's period, or for a rotation_schedule the time from the next
// scheduled rotation to the one after it.
func credsRotationPeriod(acct *account) time.Duration {
	if acct.RotationPeriod > 0 {
		return acct.RotationPeriod
	}
	sched, err := rotation.DefaultScheduler.Parse(acct.RotationSchedule)
	if err != nil {
		return 0
	}
	after := sched.Next(acct.NextVaultRotation)
	if after.IsZero() {
		return 0
	}
	return after.Sub(acct.NextVaultRotation)
}

// addCredsRotationStatus adds version, ttl and token status to a creds read.
func (b *backend) addCredsRotationStatus(name string, acct *account, pending *pendingStatus, data map[string]interface{}, resp *logical.Response) {
	data["version"] = acct.Version
	data["last_vault_rotation"] = formatTime(acct.LastVaultRotation)
	if st := tokenStatusOf(acct); st != "" {
		data["security_token_status"] = st
	}
	if acct.scheduled() && !acct.NextVaultRotation.IsZero() {
		ttl := int64(acct.NextVaultRotation.Sub(b.now()).Seconds())
		if ttl < 0 {
			ttl = 0
		}
		data["ttl"] = ttl
		data["next_vault_rotation"] = formatTime(acct.NextVaultRotation)
		// Vault Agent re-reads a secret that is not a lease when its ttl
		// runs out only when rotation_period is present; otherwise every
		// static_secret_render_interval. It is left out while the credential
		// is expected to change before the next rotation: the emailed token
		// is awaited, or an interrupted rotation is not settled.
		if tokenStatusOf(acct) != tokenStatusStale && pending == nil && acct.UnverifiedCandidateAt.IsZero() {
			if period := credsRotationPeriod(acct); period > 0 {
				data["rotation_period"] = int64(period.Seconds())
			}
		}
	}
	if acct.needsToken() && acct.SecurityTokenStatus == tokenStatusStale {
		resp.AddWarning(fmt.Sprintf("security_token is stale: the password was rotated at %s and Salesforce emailed a new "+
			"security token to the user; password_with_token will not log in until the new token is written to accounts/%s/security-token",
			formatTime(acct.PasswordChangedAt), name))
	}
	if !acct.needsToken() && acct.SecurityToken != "" && acct.SecurityTokenStatus == tokenStatusStale {
		resp.AddWarning(fmt.Sprintf("security_token is stale: the password was rotated at %s, which invalidated the stored token. This account "+
			"logs in without a token (security_token_mode=not_required), so password_with_token holds the password alone until the new token "+
			"is written to accounts/%s/security-token", formatTime(acct.PasswordChangedAt), name))
	}
	if pending != nil {
		// The WAL holds a password Salesforce may have instead of this one.
		data["rotation_status"] = "pending_reconciliation"
		data["pending_since"] = formatTime(pending.since)
		resp.AddWarning(pendingWarning(pending))
	} else if !acct.UnverifiedCandidateAt.IsZero() {
		resp.AddWarning("an interrupted rotation may have set a new password in Salesforce that could not be checked yet (see last_rotation_error " +
			"of the account); this password may not log in until it is settled")
	}
	if rotationStatus(acct) == "failing" || rotationStatus(acct) == "blocked" {
		resp.AddWarning("the last rotation of this account failed: " + acct.LastRotationError)
	}
}
