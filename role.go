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

// keyInfo is the role's entry in the key_info of a list of roles/ (vault
// list -detailed), with the values and units of a read; never the refresh
// token.
func (r *roleEntry) keyInfo() map[string]interface{} {
	info := map[string]interface{}{
		"grant_type":          r.GrantType,
		"cache":               r.Cache,
		"revoke_on_lease_end": r.RevokeOnLeaseEnd,
		"ttl":                 int64(r.TTL.Seconds()),
	}
	switch r.GrantType {
	case grantPassword:
		info["account"] = r.Account
	case grantJWTBearer:
		info["username"] = r.Username
	}
	return info
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
		if err := validateAccountName(r.Account); err != nil {
			return "account: " + err.Error()
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

// rolesWithGrant lists the roles using grant.
func rolesWithGrant(ctx context.Context, s logical.Storage, grant string) ([]string, error) {
	names, err := s.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	var out []string
	for _, name := range names {
		r, err := readRole(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if r != nil && r.GrantType == grant {
			out = append(out, name)
		}
	}
	return out, nil
}

// roleNameArg returns the role name a path captured, or a 400 that says
// why it cannot be one: the name pattern lets "a..b" through, and storage
// refuses keys holding ".." (a 500 otherwise).
func roleNameArg(d *framework.FieldData) (string, *logical.Response) {
	name := d.Get("name").(string)
	if strings.Contains(name, "..") {
		return "", logical.ErrorResponse("role name %q may not contain \"..\"", name)
	}
	return name, nil
}
