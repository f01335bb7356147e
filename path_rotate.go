package salesforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

func pathRotate(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "rotate/(?P<name>" + accountNameRegex + ")$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "rotate",
				OperationSuffix: "account",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {
					Type:        framework.TypeString,
					Description: "Name of the account to rotate.",
					Required:    true,
				},
				"force": {
					Type: framework.TypeBool,
					Description: "Rotate an account that is blocked on its credential (drift, locked or inactive user, stale token) anyway. " +
						"Without it such a rotation is refused before any login, because each login with a credential known not to work " +
						"brings the user closer to lockout. Writing the account's credential or security token clears the block.",
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{
					Callback: b.pathRotateWrite,
					// Standbys and secondaries cannot write storage: the
					// rotation runs where it can, and its error comes back.
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
			},
			HelpSynopsis:    "Rotate an account's password now.",
			HelpDescription: strings.TrimSpace(rotateHelp),
		},
		{
			Pattern: "rotate-root$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "rotate",
				OperationSuffix: "root",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{
					Callback:                    b.pathRotateRootWrite,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
			},
			HelpSynopsis:    "Rotate the secret the config logs in with, where Salesforce lets the engine change it.",
			HelpDescription: strings.TrimSpace(rotateRootHelp),
		},
	}
}

func (b *backend) pathRotateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, bad := accountNameArg(d)
	if bad != nil {
		return bad, nil
	}
	res, err := b.rotateAccount(ctx, req.Storage, name, triggerManual, d.Get("force").(bool))
	// The rotation moved (or kept) the account's next scheduled time.
	b.requeueStored(ctx, req.Storage, name)
	if err != nil {
		return rotationErrorResponse(name, err)
	}
	data := map[string]interface{}{
		"account": res.Account,
		"outcome": res.Outcome,
		"version": res.Version,
	}
	if res.TokenStatus != "" {
		data["security_token_status"] = res.TokenStatus
	}
	addRotateResultDetails(res, data)
	resp := &logical.Response{Data: data}
	for _, w := range res.Warnings {
		resp.AddWarning(w)
	}
	if res.TokenStatus == tokenStatusStale && res.ActiveUsername == "" {
		resp.AddWarning(fmt.Sprintf("Salesforce emailed a new security token to the user; the stored one is stale until it is written to accounts/%s/security-token", name))
	}
	return resp, nil
}

// rotationErrorResponse reports a failed rotation: never as success, with
// a status that says whose fault it is.
func rotationErrorResponse(name string, err error) (*logical.Response, error) {
	var coded logical.HTTPCodedError
	if errors.As(err, &coded) {
		return nil, err
	}
	var re *rotationError
	if errors.As(err, &re) {
		switch {
		case re.code == "storage":
			return nil, err
		case re.postponed:
			return nil, logical.CodedError(http.StatusConflict, fmt.Sprintf("rotation of %q postponed: %v", name, err))
		}
		if inner := re.err; inner != nil && sfapi.IsTransient(inner) {
			return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("rotation of %q failed: %v", name, err))
		}
		return logical.ErrorResponse("rotation of %q failed: %v", name, err), nil
	}
	if errors.Is(err, errConfigMissing) {
		return logical.ErrorResponse(err.Error()), nil
	}
	if sfapi.IsTransient(err) {
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("rotation of %q failed: %v", name, err))
	}
	return nil, fmt.Errorf("rotation of %q failed: %w", name, err)
}

const rotateHelp = `
Changes the account's password in Salesforce now and stores the new one. The response
holds the outcome and the new version; a failure is always returned as an error: 404 for
an unknown account, 409 when the rotation is postponed (login budget spent, minimum
password lifetime, pre-rotation webhook said no; try again later), 400 when it failed or
is blocked and needs the operator, 502 when Salesforce could not be reached.

The rotation checks first that the stored credential still logs in (a password changed
outside Vault is reported as drift, not overwritten), writes the new password to a
write-ahead log, changes it (rotation_method admin or self), stores it and then checks
that it logs in. A password Salesforce rejects is never sent again; a fresh one is tried.

For accounts with security_token_mode=required the stored token is stale afterwards:
Salesforce emails a new one to the user. Write it to accounts/<name>/security-token.

An account blocked on its own credential (rotation_blocked drift, user_locked,
user_inactive or token_stale) is not rotated again: that would be one more failed
login towards the user's lockout. Write the current credential (or security token),
which clears the block, or pass force=true.

A manual rotation also restarts the account's schedule: the next scheduled rotation is
one rotation_period after it, or the next rotation_schedule time.
`

const rotateRootHelp = `
Rotates the secret the engine's config logs in with, where Salesforce lets an API change it:

  grant_type=password            the admin user's password is changed with changeOwnPassword
                                 and stored in config (crash safe: a write-ahead log entry is
                                 settled by logging in). Refused while config holds a security
                                 token: the new token is only emailed, and the engine could not
                                 log in until it is written to config (use trusted IP ranges).
  grant_type=jwt_bearer          not here: rotate the key kept in Vault with config/jwt-key.
                                 Write config/jwt-key/rotate (a pending key; its certificate is
                                 returned), upload that certificate to the connected app, then
                                 write config/jwt-key/confirm. Logins keep working throughout.
                                 This needs a config without private_key, which then signs with
                                 config/jwt-key; a private_key written to config can only be
                                 replaced by writing a new one after uploading its certificate.
  grant_type=client_credentials  not possible: Salesforce has no API to rotate a connected app's
                                 consumer secret. Rotate it in Setup (the connected app's
                                 consumer details), then write the new client_secret to config.
`

func (b *backend) pathRotateRootWrite(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	err := b.rotateRoot(ctx, req)
	var refused *rootRotationRefused
	var change *rootChangeError
	var unsettled *rootRotationUnsettled
	switch {
	case err == nil:
		return &logical.Response{Data: map[string]interface{}{"outcome": outcomeRotated}}, nil
	case errors.As(err, &refused):
		return logical.ErrorResponse(refused.msg), nil
	case errors.As(err, &unsettled) && settlesLater(unsettled.err):
		return nil, logical.CodedError(http.StatusConflict, unsettled.Error()+"; try again then")
	case errors.As(err, &unsettled):
		return logical.ErrorResponse(unsettled.Error()), nil
	case errors.As(err, &change):
		return rotationErrorResponse("rotate-root", change.err)
	}
	return nil, err
}
