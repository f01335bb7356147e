package salesforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// Checking a stored credential by logging in with it (account writes with
// verify=true), within the user's login budget, and the hints a rejection
// comes back with (never the secret).

// verifyAccountCredential logs in with the account's own credential. It
// never uses or touches the admin session. It returns the session, or a
// response/error for the caller to return as is.
func (b *backend) verifyAccountCredential(ctx context.Context, s logical.Storage, name string, acct *account) (*sfapi.Session, *logical.Response, error) {
	client, cfg, err := b.getClient(ctx, s)
	if err != nil {
		if errors.Is(err, errConfigMissing) {
			return nil, logical.ErrorResponse(err.Error()), nil
		}
		return nil, nil, err
	}
	// One login through the flow the org allows (SOAP login(), else the
	// OAuth username-password flow), within the user's login budget. A
	// rejected credential is never tried with the other flow, so a wrong
	// password costs one failed login, not two.
	res, err := b.login(ctx, s, client, cfg, loginAttempt{
		who: accountUser(name, acct), secret: acct.passwordWithToken(), purpose: purposeOperator, cred: credOperator,
	})
	var noFlow *errNoLoginFlow
	switch {
	case err == nil:
		// The session is deliberately not logged out: Salesforce may share
		// one session among logins of the same user, and logout would end
		// the integration's own session.
		return res.session, nil, nil
	case isBudgetError(err):
		return nil, logical.ErrorResponse("not checking the credential of account %q: %v; nothing was stored", name, err), nil
	case errors.As(err, &noFlow):
		b.logger.Info("account credential check impossible", "account", name, "soap_code", sfapi.ErrorCode(noFlow.soapErr))
		return nil, logical.ErrorResponse(noLoginFlowMessage(name, acct, noFlow.soapErr, nil)), nil
	case res.soapErr != nil && !sfapi.IsTransient(err):
		// invalid_grant is also what a blocked flow answers, so the
		// operator must hear about both refusals.
		b.logger.Info("account credential check failed", "account", name, "soap_code", sfapi.ErrorCode(res.soapErr), "code", sfapi.ErrorCode(err))
		return nil, logical.ErrorResponse(noLoginFlowMessage(name, acct, res.soapErr, err)), nil
	}
	method := "SOAP login()"
	if res.flow == flowPasswordGrant {
		method = "the OAuth username-password flow"
	}

	code := sfapi.ErrorCode(err)
	b.logger.Info("account credential check failed", "account", name, "username", acct.Username, "method", method, "code", code, "error", err)
	if sfapi.IsTransient(err) {
		return nil, nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
			"checking the credential of account %q: Salesforce could not be reached (%s); nothing was stored. Try again, or write with verify=false", name, err))
	}
	msg := fmt.Sprintf("Salesforce rejected the credential of account %q (%s) with %s", name, acct.Username, method)
	if code != "" {
		msg += ": " + code
	}
	msg += fmt.Sprintf(" (%s); nothing was stored", err)
	if hint := credentialHint(code, acct); hint != "" {
		msg += ". Hint: " + hint
	}
	return nil, logical.ErrorResponse(msg), nil
}

// noLoginFlowMessage explains a credential check that SOAP login() could not
// do and the username-password flow did not (grantErr) or could not (nil).
func noLoginFlowMessage(name string, acct *account, soapErr, grantErr error) string {
	soap := sfapi.ErrorCode(soapErr)
	if soap == "INSUFFICIENT_ACCESS" {
		soap += ", the user lacks the Use Any API Auth permission"
	}
	grant := "cannot be tried without client_id and client_secret in config"
	if grantErr != nil {
		grant = fmt.Sprintf("refused the login (%s), which Salesforce also answers for a wrong password or a locked user; the flow is blocked by default in orgs created Summer '23 or later", sfapi.ErrorCode(grantErr))
	}
	return fmt.Sprintf("could not check the credential of account %q (%s): SOAP login() is not available (%s) and the OAuth username-password flow %s; "+
		"neither login flow could verify it, so nothing was stored. Write the account with verify=false to store it unchecked, "+
		"or enable a flow: \"Enable SOAP API login()\" with the user's \"Use Any API Auth\" permission, "+
		"or the username-password flow (OAuth and OpenID Connect Settings) with client_id and client_secret in config",
		name, acct.Username, soap, grant)
}

// credentialHint explains a login failure code in the operator's terms.
func credentialHint(code string, acct *account) string {
	switch code {
	case "LOGIN_MUST_USE_SECURITY_TOKEN":
		if acct.SecurityToken == "" {
			return "Salesforce needs the user's security token for logins from Vault's address: set security_token, or add Vault's address to the profile's login IP ranges"
		}
		return "the security_token does not match; the user gets a new one by email after each password change"
	case "INVALID_LOGIN":
		return "check username, password and security_token; Salesforce gives the same answer for a locked-out user (accounts lock after repeated failures)"
	case "invalid_grant":
		return "wrong password or security_token, a locked or inactive user, an IP restriction, or the username-password flow is blocked in this org"
	case "PASSWORD_LOCKOUT":
		return "the user is locked out after too many failed logins; wait for the lockout to end or unlock the user in Setup"
	case "INACTIVE_OWNER_OR_USER", "inactive_user":
		return "the Salesforce user is inactive"
	case "API_DISABLED_FOR_ORG":
		return "the org or the user's profile has no API access (API Enabled permission)"
	case "INSUFFICIENT_ACCESS":
		return "the user lacks a permission SOAP login() needs (Use Any API Auth) and no connected app is configured to fall back on"
	case "UNSUPPORTED_API_VERSION":
		return "SOAP login() is not served at config's soap_api_version; set it to 64.0 or lower, or configure client_id and client_secret to use the username-password flow"
	}
	return ""
}
