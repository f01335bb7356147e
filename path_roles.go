package salesforce

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const roleStoragePrefix = "roles/"

// The grant types a role can use to mint an access token.
const (
	grantJWTBearer         = "jwt_bearer"
	grantClientCredentials = "client_credentials"
	grantPassword          = "password"
	grantRefreshToken      = "refresh_token"
)

var roleGrantTypes = []string{grantJWTBearer, grantClientCredentials, grantPassword, grantRefreshToken}

const (
	// defaultSessionTimeout is Salesforce's default org session timeout.
	defaultSessionTimeout = 2 * time.Hour
	minSessionTimeout     = time.Minute
	maxSessionTimeout     = 24 * time.Hour
)

// passwordFlowWarning is returned with every password role: orgs created
// since Summer '23 block the username-password flow by default.
const passwordFlowWarning = "grant_type=password uses the OAuth username-password flow, which Salesforce blocks by default " +
	"in orgs created in Summer '23 or later and is deprecating; prefer jwt_bearer or client_credentials where possible"

// roleEntry is an OAuth role as stored (seal-wrapped) under roles/<name>.
type roleEntry struct {
	GrantType string `json:"grant_type"`
	// Account names the stored account whose password and security token
	// the password grant uses.
	Account string `json:"account,omitempty"`
	// Username is the JWT bearer "sub".
	Username string   `json:"username,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	// RefreshToken is write-only: never returned by a read.
	RefreshToken     string        `json:"refresh_token,omitempty"`
	TTL              time.Duration `json:"ttl"`
	MaxTTL           time.Duration `json:"max_ttl"`
	SessionTimeout   time.Duration `json:"session_timeout"`
	RevokeOnLeaseEnd bool          `json:"revoke_on_lease_end"`
	Cache            bool          `json:"cache"`
	CreatedAt        time.Time     `json:"created_at"`
	LastUpdated      time.Time     `json:"last_updated"`
}

func readRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	entry, err := s.Get(ctx, roleStoragePrefix+name)
	if err != nil {
		return nil, fmt.Errorf("reading role %q: %w", name, err)
	}
	if entry == nil {
		return nil, nil
	}
	var r roleEntry
	if err := entry.DecodeJSON(&r); err != nil {
		return nil, fmt.Errorf("decoding role %q: %w", name, err)
	}
	return &r, nil
}

func writeRole(ctx context.Context, s logical.Storage, name string, r *roleEntry) error {
	entry, err := logical.StorageEntryJSON(roleStoragePrefix+name, r)
	if err != nil {
		return fmt.Errorf("encoding role %q: %w", name, err)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing role %q: %w", name, err)
	}
	return nil
}

func pathRoles(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "roles/" + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "salesforce",
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
				logical.CreateOperation: &framework.PathOperation{Callback: b.pathRoleWrite},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathRoleWrite},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.pathRoleDelete},
			},
			HelpSynopsis:    "Manage roles that mint Salesforce OAuth access tokens.",
			HelpDescription: strings.TrimSpace(roleHelp),
		},
		{
			Pattern: "roles/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "salesforce",
				OperationSuffix: "roles",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathRoleList},
			},
			HelpSynopsis:    "List the OAuth roles.",
			HelpDescription: "List the names of the roles that mint OAuth access tokens through token/<name>.",
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
each lease is recorded in storage as a holder of its token (by the token's
hash, never the token), and a lease's end revokes the session only when no
other lease that may still be alive holds it: the last lease to end revokes
it, also across restarts, leader changes and plugin reloads. Token reads
therefore write storage and are forwarded from performance standbys to the
active node. Set cache=false when every read must get its own session.

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
	r, err := readRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil {
		return false, err
	}
	return r != nil, nil
}

func (b *backend) pathRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := readRole(ctx, req.Storage, d.Get("name").(string))
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
	return logical.ListResponse(names), nil
}

func (b *backend) pathRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := req.Storage.Delete(ctx, roleStoragePrefix+name); err != nil {
		return nil, fmt.Errorf("deleting role %q: %w", name, err)
	}
	// Outstanding leases keep what they need to revoke in their own data.
	b.invalidateTokensForRole(name)
	return nil, nil
}

func (b *backend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	r, err := readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	isCreate := r == nil
	if isCreate {
		r = &roleEntry{CreatedAt: time.Now().UTC()}
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
		r.RefreshToken = strings.TrimSpace(v.(string))
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

	r.LastUpdated = time.Now().UTC()
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

// validateFields checks the role on its own and returns a message naming
// the offending field, or "".
func (r *roleEntry) validateFields() string {
	switch r.GrantType {
	case "":
		return "grant_type is required (one of " + strings.Join(roleGrantTypes, ", ") + ")"
	case grantJWTBearer, grantClientCredentials, grantPassword, grantRefreshToken:
	default:
		return fmt.Sprintf("grant_type %q is not one of %s", r.GrantType, strings.Join(roleGrantTypes, ", "))
	}
	// Fields of another grant type are refused rather than ignored, so a
	// typo in grant_type does not silently drop the caller's intent.
	if r.Account != "" && r.GrantType != grantPassword {
		return "account is only used with grant_type=password"
	}
	if r.Username != "" && r.GrantType != grantJWTBearer {
		return "username is only used with grant_type=jwt_bearer (for password roles the username comes from the account)"
	}
	if r.RefreshToken != "" && r.GrantType != grantRefreshToken {
		return "refresh_token is only used with grant_type=refresh_token"
	}
	switch r.GrantType {
	case grantPassword:
		if r.Account == "" {
			return "account is required for grant_type=password"
		}
		if len(r.Scopes) > 0 {
			return "scopes are not supported by the username-password flow (grant_type=password)"
		}
	case grantJWTBearer:
		if r.Username == "" {
			return "username is required for grant_type=jwt_bearer"
		}
	case grantRefreshToken:
		if r.RefreshToken == "" {
			return "refresh_token is required for grant_type=refresh_token"
		}
	}
	if r.TTL < 0 {
		return "ttl must not be negative"
	}
	if r.MaxTTL < 0 {
		return "max_ttl must not be negative"
	}
	if r.MaxTTL > 0 && r.TTL > r.MaxTTL {
		return "ttl must not be greater than max_ttl"
	}
	if r.SessionTimeout < minSessionTimeout || r.SessionTimeout > maxSessionTimeout {
		return fmt.Sprintf("session_timeout must be between %s and %s", minSessionTimeout, maxSessionTimeout)
	}
	return ""
}

// validateRoleDependencies checks what the role needs from elsewhere in
// the mount: the account of a password role, the key of a JWT role.
func (b *backend) validateRoleDependencies(ctx context.Context, s logical.Storage, r *roleEntry) (string, error) {
	switch r.GrantType {
	case grantPassword:
		acct, err := readAccount(ctx, s, r.Account)
		if err != nil {
			return "", err
		}
		if acct == nil {
			return fmt.Sprintf("account %q does not exist; write accounts/%s first", r.Account, r.Account), nil
		}
	case grantJWTBearer:
		_, err := b.roleSigningKeys(ctx, s)
		if err != nil && !errors.Is(err, errNoSigningKey) {
			return "", err
		}
		if err != nil {
			return "grant_type=jwt_bearer needs a signing key: write config/jwt-key (or set private_key in config) first", nil
		}
	}
	return "", nil
}

// cleanScopes trims, drops empty entries and removes duplicates.
func cleanScopes(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}
