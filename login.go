package salesforce

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// The one login function for logins with a password (an account's, a
// rotation's candidate, the admin's), and what their answers show. Every
// such login reserves its slot in the login budget (login_budget.go) before
// it is sent.

// Login flows for a login with a password.
const (
	flowUnknown int32 = iota
	flowSOAP
	flowPasswordGrant
)

// soapLoginUnavailable lists the codes with which Salesforce refuses SOAP
// login() itself, as opposed to the credential: a retired API version, the
// org's "SOAP API login()" switch being off, or the user lacking the
// permission login() needs.
var soapLoginUnavailable = map[string]bool{
	"UNSUPPORTED_API_VERSION":   true,
	"API_CURRENTLY_DISABLED":    true,
	"SOAP_LOGIN_DISABLED":       true,
	"INSUFFICIENT_ACCESS":       true,
	"INVALID_OPERATION":         true,
	"FUNCTIONALITY_NOT_ENABLED": true,
}

// errNoLoginFlow: SOAP login() is unavailable and config has no client_id
// and client_secret for the username-password flow.
type errNoLoginFlow struct{ soapErr error }

func (e *errNoLoginFlow) Error() string {
	return fmt.Sprintf("SOAP login() is not available (%s) and the OAuth username-password flow needs client_id and client_secret in config", sfapi.ErrorCode(e.soapErr))
}

func (e *errNoLoginFlow) Unwrap() error { return e.soapErr }

// loginAttempt is one login with a password.
type loginAttempt struct {
	who loginUser
	// secret is the password with the security token already appended, if any.
	secret  string
	purpose loginPurpose
	cred    string
}

// loginResult is the answer to a login.
type loginResult struct {
	session *sfapi.Session
	flow    int32
	// soapErr is SOAP login()'s refusal when the password flow answered instead.
	soapErr error
}

// login logs in once as a.who within the login budget, through the flow
// the org allows: SOAP login(), else the OAuth username-password flow when
// config has client_id and client_secret. An org-wide refusal of login() is
// remembered until config changes (resetClient), so later logins go
// straight to the flow that works. The reservation covers the attempt as
// one login: a refusal of login() itself is no failed login.
func (b *backend) login(ctx context.Context, s logical.Storage, client Client, cfg *salesforceConfig, a loginAttempt) (*loginResult, error) {
	slot, err := b.reserveLogin(ctx, s, a.who, a.purpose, a.cred)
	if err != nil {
		return nil, err
	}
	res := &loginResult{flow: flowSOAP}
	if b.loginFlow.Load() != flowPasswordGrant {
		res.session, err = client.SOAPLogin(ctx, a.who.username, a.secret)
		code := sfapi.ErrorCode(err)
		if err == nil || !soapLoginUnavailable[code] {
			slot.done(ctx, err)
			return res, err
		}
		res.soapErr = err
		if code != "INSUFFICIENT_ACCESS" {
			// Off for the org or the API version, not for this user.
			b.loginFlow.Store(flowPasswordGrant)
		}
	}
	if cfg == nil || cfg.ClientID == "" || cfg.ClientSecret == "" {
		slot.done(ctx, res.soapErr)
		return res, &errNoLoginFlow{soapErr: res.soapErr}
	}
	res.flow = flowPasswordGrant
	res.session, err = client.PasswordGrant(ctx, a.who.username, a.secret)
	slot.done(ctx, err)
	return res, err
}

// Login verdicts of probeLogin.
type loginVerdict int

const (
	// loginOK: logged in; the session is usable.
	loginOK loginVerdict = iota
	// loginPasswordOnly: the password is right but Salesforce asks for a
	// security token (LOGIN_MUST_USE_SECURITY_TOKEN); no session.
	loginPasswordOnly
	// loginExpired: logged in, but the password is expired; the session
	// can only set a new password.
	loginExpired
	// loginRejected: Salesforce rejected the credential.
	loginRejected
	// loginInconclusive: the username-password flow refused a login made
	// without the security token the user may need; its answer
	// (invalid_grant) does not tell a wrong password from a missing token.
	loginInconclusive
)

// probeResult is what a login with an account's credential showed.
type probeResult struct {
	session *sfapi.Session
	verdict loginVerdict
	// cause is Salesforce's rejection for loginRejected and loginInconclusive.
	cause error
	// flow is the login flow that answered.
	flow int32
}

// probeLogin logs in as the account with password (plus its stored
// security token when withToken), within the login budget; cred says which
// credential it is (stored, candidate, operator). A returned error means
// nothing could be concluded (budget, outage, no login flow).
func (b *backend) probeLogin(ctx context.Context, s logical.Storage, client Client, cfg *salesforceConfig, name string, acct *account, password string, withToken bool, cred string) (*probeResult, error) {
	secret := password
	if withToken {
		secret += acct.SecurityToken
	}
	res, err := b.login(ctx, s, client, cfg, loginAttempt{who: accountUser(name, acct), secret: secret, purpose: purposeCheck, cred: cred})
	var flow int32
	if res != nil {
		flow = res.flow
	}
	switch {
	case err == nil && res.session.PasswordExpired:
		return &probeResult{session: res.session, verdict: loginExpired, flow: flow}, nil
	case err == nil:
		return &probeResult{session: res.session, verdict: loginOK, flow: flow}, nil
	case sfapi.ErrorCode(err) == "LOGIN_MUST_USE_SECURITY_TOKEN":
		return &probeResult{verdict: loginPasswordOnly, cause: err, flow: flow}, nil
	case sfapi.ErrorCode(err) == "INVALID_OPERATION_WITH_EXPIRED_PASSWORD":
		return &probeResult{verdict: loginExpired, cause: err, flow: flow}, nil
	case sfapi.IsCredentialError(err) && flow == flowPasswordGrant && !withToken && acct.needsToken():
		return &probeResult{verdict: loginInconclusive, cause: err, flow: flow}, nil
	case sfapi.IsCredentialError(err):
		return &probeResult{verdict: loginRejected, cause: err, flow: flow}, nil
	default:
		return nil, err
	}
}

// passwordFlowOnly reports whether this mount learned that SOAP login() is
// off, so logins go through the username-password flow.
func (b *backend) passwordFlowOnly() bool {
	return b.loginFlow.Load() == flowPasswordGrant
}

// adminProbe logs in as the config's admin user with password (cred says
// which: stored or candidate), within the admin user's login budget,
// without caching a session.
func (b *backend) adminProbe(ctx context.Context, s logical.Storage, client Client, cfg *salesforceConfig, password, cred string) error {
	slot, err := b.reserveLogin(ctx, s, adminUser(cfg), purposeCheck, cred)
	if err != nil {
		return err
	}
	_, err = client.PasswordGrant(ctx, cfg.Username, password+cfg.SecurityToken)
	slot.done(ctx, err)
	return err
}
