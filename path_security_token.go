package salesforce

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

func pathSecurityToken(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "accounts/(?P<name>" + accountNameRegex + ")/security-token$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "write",
			OperationSuffix: "security-token",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeString,
				Description: "Name of the account.",
				Required:    true,
			},
			"security_token": {
				Type:        framework.TypeString,
				Description: "The security token Salesforce emailed to the user after the last password change.",
				Required:    true,
				DisplayAttrs: &framework.DisplayAttributes{
					Sensitive: true,
				},
			},
			"user": {
				Type: framework.TypeString,
				Description: "Whose token it is, for rotation_strategy=dual_account: primary (default) or secondary, or the user's username. " +
					"The token of the user a rotation changed makes that user active.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathSecurityTokenWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis: "Store the security token Salesforce emailed after a rotation.",
		HelpDescription: "After each password change Salesforce emails the user a new security token; no API returns it. " +
			"Write it here: the engine logs in with the stored password and this token, and stores the token only if that login works. " +
			"The account's validation_query runs with that session.\n\n" + secretInputHelp,
	}}
}

func (b *backend) pathSecurityTokenWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, bad := accountNameArg(d)
	if bad != nil {
		return bad, nil
	}
	token, err := secretInput("security_token", d.Get("security_token").(string), false)
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	if token == "" {
		return logical.ErrorResponse("security_token is required"), nil
	}
	if err := validateSecurityToken("security_token", token); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}

	txn := b.lockAccount(req.Storage, name)
	defer txn.unlock()

	acct, err := txn.get(ctx)
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, accountNotFound(name)
	}
	// The user whose token it is: a dual account's secondary is stored in
	// a view (account_dual.go).
	username, msg := tokenUser(name, acct, d.Get("user").(string))
	if msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	txn.asUser(username)
	if acct, err = txn.get(ctx); err != nil {
		return nil, err
	}
	client, cfg, err := b.getClient(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	// One login with the stored password and this token, within the user's
	// login budget: a rejection adds one failed login, as it does in
	// Salesforce, and nothing else changes.
	candidate := *acct
	candidate.SecurityToken = token
	res, err := b.probeLogin(ctx, req.Storage, client, cfg, name, &candidate, candidate.Password, true, credOperator)
	if err != nil {
		if sfapi.IsTransient(err) {
			return nil, logical.CodedError(http.StatusBadGateway, "checking the security token: "+err.Error())
		}
		return logical.ErrorResponse("checking the security token: %v; nothing was stored", err), nil
	}
	if res.verdict != loginOK && res.verdict != loginExpired {
		return logical.ErrorResponse("Salesforce did not accept the stored password with this security token (%v); nothing was stored. "+
			"Use the token from the most recent email: each password change makes the previous one invalid", res.cause), nil
	}

	before := *acct
	acct.SecurityToken = token
	if acct.SecurityTokenMode == "" {
		acct.SecurityTokenMode = tokenModeRequired
	}
	acct.SecurityTokenStatus = tokenStatusCurrent
	if acct.RotationBlocked == "token_stale" || acct.RotationBlocked == "drift" {
		acct.RotationBlocked = ""
	}
	if acct.dual() && !acct.flatIsActive() && acct.SwitchStatus == switchAwaitingToken {
		// The token the switch waited for: stored with it, the switch is
		// merely unfinished, so a crash before it is made (below) leaves
		// work the restart finishes, not a switch that waits forever.
		acct.SwitchStatus, acct.SwitchReason = "", ""
	}
	noteCredentialChange(&before, acct, b.now())
	if err := txn.put(ctx, acct); err != nil {
		return nil, err
	}
	if err := b.step(stepTokenStored); err != nil {
		return nil, err
	}
	b.invalidateTokensForAccount(name)

	resp := &logical.Response{Data: map[string]interface{}{
		"account":               name,
		"security_token_status": tokenStatusCurrent,
		"version":               acct.Version,
	}}
	if acct.dual() {
		resp.Data["user"] = acct.roleOf(acct.Username)
		resp.Data["username"] = acct.Username
		// The token of the user a rotation changed: the switch it waited for.
		run := &rotationRun{b: b, storage: req.Storage, txn: txn, name: name, acct: acct, cfg: cfg, client: client,
			trigger: triggerManual, verified: res.verdict == loginOK, ownSession: res.session}
		if run.rcfg, err = readRotationConfig(ctx, req.Storage); err != nil {
			return nil, err
		}
		switched, err := b.completeSwitch(ctx, run)
		if err != nil {
			resp.AddWarning(fmt.Sprintf("the token is stored; the switch to %s could not be made yet and is tried again: %v", acct.Username, err))
			b.markUnfinished(name, b.now().Add(walRetryInterval))
		}
		for _, w := range run.warnings {
			resp.AddWarning(w)
		}
		if switched == switchDone {
			b.notify(ctx, name, acct, run.rcfg, outcomeSwitched, nil)
			b.requeueStored(ctx, req.Storage, name)
		}
		addDualState(acct, resp.Data)
	}
	if acct.ValidationQuery != "" && res.session != nil && res.verdict == loginOK {
		if err := runValidationQuery(ctx, client, res.session, acct.ValidationQuery); err != nil {
			resp.AddWarning(err.Error())
		} else {
			resp.Data["validation_query"] = "ok"
		}
	}
	if res.verdict == loginExpired {
		resp.AddWarning("the password has expired: rotate the account to repair it")
	}
	return resp, nil
}

// tokenUser resolves the user field of a security-token write: primary
// (default), secondary, or a username the account holds. A message says
// why not.
func tokenUser(name string, acct *account, user string) (string, string) {
	switch {
	case user == "" || user == rolePrimary:
		return acct.Username, ""
	case user == roleSecondary:
		if !acct.dual() {
			return "", fmt.Sprintf("account %q has no secondary user (rotation_strategy=dual_account)", name)
		}
		return acct.Secondary.Username, ""
	case acct.holdsUsername(user):
		return user, ""
	}
	return "", fmt.Sprintf("user must be primary, secondary or a username of account %q", name)
}
