package salesforce

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// passwordFlowWarning is returned with every password role: orgs created
// since Summer '23 block the username-password flow by default.
const passwordFlowWarning = "grant_type=password uses the OAuth username-password flow, which Salesforce blocks by default " +
	"in orgs created in Summer '23 or later and is deprecating; prefer jwt_bearer or client_credentials where possible"

func pathRoles(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "roles/" + framework.GenericNameRegex("name") + "$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "role",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {
					Type:        framework.TypeString,
					Description: "Name of the role.",
					Required:    true,
				},
				"grant_type": {
					Type:          framework.TypeString,
					Description:   "OAuth grant used to mint the token: jwt_bearer, client_credentials, password or refresh_token.",
					AllowedValues: []interface{}{grantJWTBearer, grantClientCredentials, grantPassword, grantRefreshToken},
				},
				"account": {
					Type:        framework.TypeString,
					Description: "For grant_type=password: the stored account (accounts/<name>) whose password and security token are used.",
				},
				"username": {
					Type:        framework.TypeString,
					Description: "For grant_type=jwt_bearer: the Salesforce username to put in the assertion's sub claim.",
				},
				"scopes": {
					Type:        framework.TypeCommaStringSlice,
					Description: "OAuth scopes to request (jwt_bearer, client_credentials, refresh_token). The password flow does not take scopes.",
				},
				"refresh_token": {
					Type:        framework.TypeString,
					Description: "For grant_type=refresh_token: the refresh token to exchange. Write-only.",
					DisplayAttrs: &framework.DisplayAttributes{
						Sensitive: true,
					},
				},
				"ttl": {
					Type:        framework.TypeDurationSecond,
					Description: "Lease TTL of tokens read from token/<name>; never past the session's end. Defaults to the mount's default TTL.",
				},
				"max_ttl": {
					Type:        framework.TypeDurationSecond,
					Description: "Longest a lease can be renewed to; never past the session's end. Defaults to the mount's max TTL.",
				},
				"session_timeout": {
					Type:        framework.TypeDurationSecond,
					Description: "Salesforce session timeout assumed when the connected app may not introspect tokens. Salesforce does not say when a token expires.",
					Default:     int(defaultSessionTimeout.Seconds()),
				},
				"revoke_on_lease_end": {
					Type:        framework.TypeBool,
					Description: "Revoke the access token in Salesforce when its lease ends (see the path help for how shared cached tokens are handled).",
					Default:     true,
				},
				"cache": {
					Type:        framework.TypeBool,
					Description: "Serve one cached token per role until shortly before it expires. false mints a new token on every read.",
					Default:     true,
				},
			},
			ExistenceCheck: b.roleExistenceCheck,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.pathRoleRead},
				logical.CreateOperation: &framework.PathOperation{Callback: b.pathRoleWrite, ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathRoleWrite, ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.pathRoleDelete, ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
			},
			HelpSynopsis:    "Manage roles that mint Salesforce OAuth access tokens.",
			HelpDescription: strings.TrimSpace(roleHelp) + "\n\n" + secretInputHelp,
		},
		{
			Pattern: "roles/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "roles",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathRoleList},
			},
			HelpSynopsis: "List the OAuth roles.",
			HelpDescription: "List the names of the roles that mint OAuth access tokens through token/<name>, " +
				"each with key_info (vault list -detailed): grant_type, account (password roles) or username " +
				"(jwt_bearer roles), cache, revoke_on_lease_end and ttl (seconds; 0: the mount's default). " +
				"Every list reads each role listed, whether or not the CLI prints the details.",
		},
	}
}

const roleHelp = `
A role describes how to mint a Salesforce OAuth access token; read
token/<name> to get one as a Vault lease.

grant_type selects the flow:
  jwt_bearer          signs an assertion for "username" with the key in
                      config/jwt-key (or the config's private_key).
  client_credentials  uses the connected app's run-as user; the config's
                      login_url must be the org's My Domain.
  password            uses the stored account "account" (password plus
                      security token). New orgs block this flow.
  refresh_token       exchanges the write-only "refresh_token".

Salesforce does not say when an access token expires. When the connected
app may introspect tokens, the expiry comes from the introspection answer;
otherwise the engine assumes issued_at + session_timeout. Cached tokens are
replaced a safety margin (a tenth of the lifetime, between 30 s and 5 min)
before that time.

With cache=true (the default), reads share one token per role, so several
leases may hold the same Salesforce session. With revoke_on_lease_end=true,
the engine counts the leases holding each token, and a lease's end revokes
the session only when no other lease that may still be alive holds it: the
last lease to end revokes it, also across leader changes and plugin reloads
(the counts are stored, by the token's hash, never the token, when the
mount is unloaded). After a crash the leases the dead process issued do not
revoke their token, which ends at its own expiry. Minting writes storage, so
token reads are forwarded from performance standbys to the active node. Set
cache=false when every read must get its own session.

A password role never logs in with an account whose security token is
stale (after a rotation of a security_token_mode=required account) or whose
rotation is blocked; the read fails with the fix instead. When Salesforce
rejects the account's credential, reads return that error for a minute
without logging in, and later attempts spend the account's login and
failed-login budgets (config/rotation), so a polling application cannot
lock the user out. Any change of the account, role or config retries at
once.
`

func (b *backend) roleExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	name, bad := roleNameArg(d)
	if bad != nil {
		// The write handler answers with the reason.
		return false, nil
	}
	r, err := readRole(ctx, req.Storage, name)
	if err != nil {
		return false, err
	}
	return r != nil, nil
}

func (b *backend) pathRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, bad := roleNameArg(d)
	if bad != nil {
		return bad, nil
	}
	r, err := readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, nil
	}
	data := map[string]interface{}{
		"grant_type":          r.GrantType,
		"scopes":              r.Scopes,
		"ttl":                 int64(r.TTL.Seconds()),
		"max_ttl":             int64(r.MaxTTL.Seconds()),
		"session_timeout":     int64(r.SessionTimeout.Seconds()),
		"revoke_on_lease_end": r.RevokeOnLeaseEnd,
		"cache":               r.Cache,
	}
	if r.Scopes == nil {
		data["scopes"] = []string{}
	}
	switch r.GrantType {
	case grantPassword:
		data["account"] = r.Account
	case grantJWTBearer:
		data["username"] = r.Username
	case grantRefreshToken:
		data["refresh_token_set"] = r.RefreshToken != ""
	}
	resp := &logical.Response{Data: data}
	if r.GrantType == grantPassword {
		resp.AddWarning(passwordFlowWarning)
	}
	return resp, nil
}

func (b *backend) pathRoleList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	info := make(map[string]interface{}, len(names))
	for _, name := range names {
		r, err := readRole(ctx, req.Storage, name)
		if err != nil {
			return nil, err
		}
		if r != nil {
			info[name] = r.keyInfo()
		}
	}
	return logical.ListResponseWithInfo(names, info), nil
}

func (b *backend) pathRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, bad := roleNameArg(d)
	if bad != nil {
		return bad, nil
	}
	if err := req.Storage.Delete(ctx, roleStoragePrefix+name); err != nil {
		return nil, fmt.Errorf("deleting role %q: %w", name, err)
	}
	// Outstanding leases keep what they need to revoke in their own data.
	b.invalidateTokensForRole(name)
	return nil, nil
}

func (b *backend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, bad := roleNameArg(d)
	if bad != nil {
		return bad, nil
	}
	r, err := readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	isCreate := r == nil
	if isCreate {
		r = &roleEntry{CreatedAt: b.now().UTC()}
	}

	// On update, fields not sent keep their stored value; on create they
	// take their defaults.
	if v, ok := d.GetOk("grant_type"); ok {
		if !isCreate && v.(string) != r.GrantType {
			// A new grant type starts without the old one's inputs.
			r.Account, r.Username, r.RefreshToken = "", "", ""
		}
		r.GrantType = v.(string)
	}
	if v, ok := d.GetOk("account"); ok {
		r.Account = strings.TrimSpace(v.(string))
	}
	if v, ok := d.GetOk("username"); ok {
		r.Username = strings.TrimSpace(v.(string))
	}
	if v, ok := d.GetOk("scopes"); ok {
		r.Scopes = cleanScopes(v.([]string))
	}
	if v, ok := d.GetOk("refresh_token"); ok {
		if r.RefreshToken, err = secretInput("refresh_token", v.(string), false); err != nil {
			return logical.ErrorResponse("role %q: %s", name, err), nil
		}
	}
	if v, ok := d.GetOk("ttl"); ok {
		r.TTL = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("max_ttl"); ok {
		r.MaxTTL = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("session_timeout"); ok || isCreate {
		if !ok {
			v = d.Get("session_timeout")
		}
		r.SessionTimeout = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("revoke_on_lease_end"); ok || isCreate {
		if !ok {
			v = d.Get("revoke_on_lease_end")
		}
		r.RevokeOnLeaseEnd = v.(bool)
	}
	if v, ok := d.GetOk("cache"); ok || isCreate {
		if !ok {
			v = d.Get("cache")
		}
		r.Cache = v.(bool)
	}

	if msg := r.validateFields(); msg != "" {
		return logical.ErrorResponse("role %q: %s", name, msg), nil
	}
	if msg, err := b.validateRoleDependencies(ctx, req.Storage, r); err != nil {
		return nil, err
	} else if msg != "" {
		return logical.ErrorResponse("role %q: %s", name, msg), nil
	}
	if msg, err := refuseGrantForApp(ctx, req.Storage, r.GrantType); err != nil {
		return nil, err
	} else if msg != "" {
		return logical.ErrorResponse("role %q: %s", name, msg), nil
	}

	r.LastUpdated = b.now().UTC()
	if err := writeRole(ctx, req.Storage, name, r); err != nil {
		return nil, err
	}
	b.invalidateTokensForRole(name)

	var resp *logical.Response
	if r.GrantType == grantPassword {
		resp = &logical.Response{}
		resp.AddWarning(passwordFlowWarning)
	}
	return resp, nil
}
