package salesforce

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

func pathDiagnose(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "accounts/(?P<name>" + accountNameRegex + ")/diagnose$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "diagnose",
			OperationSuffix: "account",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeString,
				Description: "Name of the account.",
				Required:    true,
			},
			"user": {
				Type:        framework.TypeString,
				Description: "For rotation_strategy=dual_account: which user to diagnose, primary (default) or secondary, or its username.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathDiagnoseRead,
				// It logs in with the stored credential: the failed-login
				// count it keeps lives on the active node of the primary.
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis: "Explain why an account's credential does or does not log in.",
		HelpDescription: "Looks at the user with the admin session (active, locked out, password expired), then makes one login " +
			"with the stored credential (within the account's login budget) and explains the answer: wrong password or token, " +
			"security token needed, login rate exceeded, username-password flow blocked.",
	}}
}

func (b *backend) pathDiagnoseRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, bad := accountNameArg(d)
	if bad != nil {
		return bad, nil
	}
	// Held so that diagnose sees no rotation half done; it writes nothing.
	txn := b.lockAccount(req.Storage, name)
	defer txn.unlock()

	acct, err := txn.get(ctx)
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, accountNotFound(name)
	}
	username, msg := tokenUser(name, acct, d.Get("user").(string))
	if msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	acct = acct.viewOf(username)
	rcfg, err := readRotationConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	client, cfg, err := b.getClient(ctx, req.Storage)
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	run := &rotationRun{b: b, storage: req.Storage, name: name, acct: acct, cfg: cfg, rcfg: rcfg, client: client}
	var findings []string
	data := map[string]interface{}{
		"account":               name,
		"username":              acct.Username,
		"security_token_mode":   acct.SecurityTokenMode,
		"security_token_status": tokenStatusOf(acct),
	}

	// What the admin can see, without touching the user's login.
	if admin, err := run.admin(ctx); err != nil {
		findings = append(findings, fmt.Sprintf("the admin login failed, so the user's state could not be read: %v", err))
	} else {
		u, err := client.LookupUser(ctx, admin, acct.Username)
		switch {
		case sfapi.KindOf(err) == sfapi.KindNotFound:
			findings = append(findings, "no Salesforce user has this username (renamed or deleted?)")
		case err != nil:
			findings = append(findings, fmt.Sprintf("looking up the user failed: %v", err))
		default:
			data["user_id"] = u.ID
			data["user_active"] = u.IsActive
			if acct.UserID == "" {
				acct.UserID = u.ID
			}
			if !u.IsActive {
				findings = append(findings, "the user is inactive: activate it in Setup")
			}
			if locked, _, err := client.LoginLocked(ctx, admin, u.ID); err == nil {
				data["login_locked"] = locked
				if locked {
					findings = append(findings, "the user is locked out after too many failed logins: unlock it in Setup, or wait for the lockout interval")
				}
			}
			if expired, err := client.PasswordExpired(ctx, admin, u.ID); err == nil {
				data["password_expired"] = expired
				if expired {
					findings = append(findings, fmt.Sprintf("the password has expired: rotate the account (vault write -f <mount>/rotate/%s) to set a new one", name))
				}
			}
		}
	}

	// One login with the stored credential.
	res, err := b.probeLogin(ctx, req.Storage, client, cfg, name, acct, acct.Password, acct.tokenUsable(), credStored)
	switch {
	case err != nil && isBudgetError(err):
		data["login"] = "not tried"
		findings = append(findings, err.Error())
	case err != nil:
		data["login"] = "error"
		findings = append(findings, loginFinding(name, sfapi.ErrorCode(err), err, acct))
	default:
		switch res.verdict {
		case loginOK:
			data["login"] = "ok"
		case loginExpired:
			data["login"] = "ok, password expired"
		case loginPasswordOnly:
			data["login"] = "security token needed"
			findings = append(findings, loginFinding(name, "LOGIN_MUST_USE_SECURITY_TOKEN", res.cause, acct))
		default:
			data["login"] = "rejected"
			data["login_error_code"] = sfapi.ErrorCode(res.cause)
			findings = append(findings, loginFinding(name, sfapi.ErrorCode(res.cause), res.cause, acct))
		}
	}
	// The OAuth username-password flow answers some questions SOAP login()
	// cannot: whether the flow is blocked, whether the login rate is
	// exceeded. It costs one more login, so only when it can tell something
	// (not when the login above already went through it).
	if cfg != nil && cfg.ClientID != "" && cfg.ClientSecret != "" && res != nil && res.flow == flowSOAP &&
		(res.verdict == loginOK || (res.verdict == loginRejected && sfapi.ErrorCode(res.cause) == "INVALID_LOGIN")) {
		if finding, flow := b.diagnosePasswordFlow(ctx, req.Storage, client, name, acct, res.verdict == loginOK); flow != "" {
			data["password_flow"] = flow
			if finding != "" {
				findings = append(findings, finding)
			}
		}
	}
	// Said once: the login finding above already names a stale token when
	// the login got as far as asking for one.
	if acct.SecurityTokenStatus == tokenStatusStale && data["login"] != "security token needed" {
		findings = append(findings, fmt.Sprintf("the stored security token is stale since the last rotation: write the emailed token to accounts/%s/security-token", name))
	}
	if len(findings) == 0 {
		findings = append(findings, "the stored credential logs in")
	}
	data["findings"] = findings
	return &logical.Response{Data: data}, nil
}

// loginFinding explains a login failure code.
func loginFinding(name, code string, err error, acct *account) string {
	switch code {
	case "LOGIN_MUST_USE_SECURITY_TOKEN":
		if acct.SecurityTokenStatus == tokenStatusStale {
			return fmt.Sprintf("the password is right but the security token is stale (the password changed): write the emailed token to accounts/%s/security-token", name)
		}
		if acct.SecurityToken == "" || !acct.needsToken() {
			return "the password is right but Salesforce needs a security token from Vault's address: store the token (security_token_mode=required) or add Vault's address to the trusted IP ranges"
		}
		return fmt.Sprintf("the password is right but the security token is wrong: write the token from the user's latest email to accounts/%s/security-token", name)
	case "INVALID_LOGIN", "invalid_grant":
		return "Salesforce rejected the username, password or security token (it gives the same answer for a locked-out user, a login from outside the profile's login IP ranges, and an exceeded login rate); the password may have been changed outside Vault"
	case "LOGIN_RATE_EXCEEDED", "rate_limit_exceeded":
		return "the user's login rate (3,600 per hour) is exceeded: find the integration that logs in in a loop"
	case "PASSWORD_LOCKOUT":
		return "the user is locked out after too many failed logins"
	case "INACTIVE_OWNER_OR_USER", "inactive_user":
		return "the user is inactive"
	case "API_DISABLED_FOR_ORG":
		return "the user's profile or the org has no API access"
	case "INVALID_OPERATION", "UNSUPPORTED_API_VERSION", "API_CURRENTLY_DISABLED":
		return "SOAP login() is unavailable in this org or at this API version; the username-password flow may be blocked too (orgs from Summer '23 block it by default)"
	}
	if err != nil {
		return fmt.Sprintf("the login failed: %v", err)
	}
	return "the login failed"
}

// diagnosePasswordFlow logs in once through the OAuth username-password
// flow. soapWorked says whether SOAP login() accepted the credential.
func (b *backend) diagnosePasswordFlow(ctx context.Context, s logical.Storage, client Client, name string, acct *account, soapWorked bool) (finding, flow string) {
	// A login like any other: reserved in the user's budget before it is
	// sent, and its rejection counted.
	slot, err := b.reserveLogin(ctx, s, accountUser(name, acct), purposeCheck, credStored)
	if err != nil {
		return "", ""
	}
	secret := acct.Password
	if acct.tokenUsable() {
		secret += acct.SecurityToken
	}
	_, err = client.PasswordGrant(ctx, acct.Username, secret)
	slot.done(ctx, err)
	switch code := sfapi.ErrorCode(err); {
	case err == nil:
		return "", "ok"
	case code == "rate_limit_exceeded":
		return "the user's login rate is exceeded (Salesforce allows 3,600 logins per user and hour): find the integration that logs in in a loop", "rate limited"
	case code == "inactive_user":
		return "the user is inactive", "inactive user"
	case code == "invalid_grant" && soapWorked:
		return "SOAP login() accepts the credential but the OAuth username-password flow does not: the flow is likely blocked in this org " +
			"(the default for orgs created in Summer '23 or later) or for the connected app; OAuth roles with grant_type=password cannot work", "blocked"
	case sfapi.IsTransient(err):
		return "", ""
	default:
		return "", "rejected"
	}
}
