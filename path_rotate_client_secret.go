package salesforce

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

func pathRotateClientSecret(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "rotate-client-secret$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "rotate",
			OperationSuffix: "client-secret",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathRotateClientSecretWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Summary:                     "Rotate the consumer key and secret of config's External Client App.",
			},
		},
		HelpSynopsis:    "Rotate the consumer key and secret of config's External Client App, keeping the old one while tokens minted with it are held.",
		HelpDescription: strings.TrimSpace(rotateClientSecretHelp),
	}}
}

const rotateClientSecretHelp = `
Rotates the consumer key and secret of the External Client App that config
logs in with (app_type=external_client_app, app_developer_name, api_version
65.0 or later), through Salesforce's OAuth Staged Credentials API:

  1. stage a new key and secret (the current ones keep working),
  2. log in with them through config's grant (client_credentials or
     jwt_bearer) and check the response's signature,
  3. promote them: Salesforce keeps the previous key, still valid, in the
     staged slot,
  4. switch config's client_id and client_secret.

A write-ahead log entry covers steps 2 to 4, so a crash never loses the new
secret nor leaves config on a key about to go. The engine logs in with the
app it rotates, and this order never cuts off its own access.

The previous key is deleted once no token minted with it is held: no lease
of a revoke_on_lease_end role holds such a token, and the tokens of other
roles have expired. Vault checks about once a minute (on the active node);
it is deleted at the latest an hour before Salesforce's 30-day validity
ends. Until then a new rotation is refused. "vault read <mount>/config"
shows the active key (client_id), the previous one, its state and dates,
never a secret.

config/rotation schedules rotations with client_secret_rotation_period or
client_secret_rotation_schedule (and client_secret_rotation_window), like
the rotation fields of accounts.

The run-as user (client_credentials) or config's username (jwt_bearer)
needs the External Client App Developer and View Client Secret permissions,
and the org the setting "Allow access to External Client App consumer
secrets via REST API". Packaged apps cannot be rotated this way.
`

func (b *backend) pathRotateClientSecretWrite(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	out, err := b.rotateClientSecret(ctx, req.Storage)
	var refused *clientSecretRefused
	switch {
	case errors.As(err, &refused):
		return logical.ErrorResponse(refused.msg), nil
	case errors.Is(err, errSimulatedCrash):
		return nil, err
	case sfapi.IsTransient(err):
		return nil, logical.CodedError(http.StatusBadGateway, "rotate-client-secret: Salesforce could not be reached: "+err.Error())
	case err != nil:
		return nil, err
	}
	data := map[string]interface{}{
		"client_id":          out.newKey,
		"previous_client_id": out.oldKey,
	}
	if p := out.previous; p != nil && p.Key == out.oldKey {
		data["previous_client_id_expires"] = formatTime(p.ExpiresAt)
		data["previous_client_id_kept_until"] = "no token minted with it is held any more (at the latest " + formatTime(p.ExpiresAt.Add(-retireMargin)) + ")"
	}
	return &logical.Response{Data: data, Warnings: out.warnings}, nil
}
