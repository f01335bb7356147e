package salesforce

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// secretAccessTokenType is the lease type of token/<name> reads.
const secretAccessTokenType = "salesforce_access_token"

func pathToken(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "token/" + framework.GenericNameRegex("name") + "$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "generate",
				OperationSuffix: "access-token",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {
					Type:        framework.TypeString,
					Description: "Name of the role.",
					Required:    true,
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: b.pathTokenRead,
					// A read counts its lease where leases end (the active
					// node), and a mint records the token in storage.
					ForwardPerformanceStandby: true,
					Responses: map[int][]framework.Response{
						http.StatusOK: {{Description: "OK", Fields: tokenResponseFields()}},
					},
				},
			},
			HelpSynopsis:    "Get a Salesforce OAuth access token for a role, as a lease.",
			HelpDescription: strings.TrimSpace(tokenHelp),
		},
	}
}

const tokenHelp = `
Reading token/<role> returns access_token, instance_url, id, token_type,
scope, issued_at and expires_at as a Vault lease. The lease ends no later
than the Salesforce session (expires_at) and can be renewed up to then,
within the role's max_ttl. With revoke_on_lease_end, the end of the last
lease holding a token revokes it in Salesforce (see the roles help); a
new token is recorded in storage, so reads run on the active node.
`

// tokenResponseFields describes a token read's data.
func tokenResponseFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"access_token": {
			Type:         framework.TypeString,
			Description:  "Salesforce access token (session id).",
			DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
		},
		"instance_url": {Type: framework.TypeString, Description: "Base URL for REST calls with the token."},
		"id":           {Type: framework.TypeString, Description: "Identity URL of the user behind the token."},
		"token_type":   {Type: framework.TypeString, Description: "Token type, Bearer."},
		"scope":        {Type: framework.TypeString, Description: "Granted scopes."},
		"issued_at":    {Type: framework.TypeString, Description: "When Salesforce issued the token (RFC 3339)."},
		"expires_at":   {Type: framework.TypeString, Description: "When the session ends (RFC 3339)."},
	}
}

func secretAccessToken(b *backend) *framework.Secret {
	return &framework.Secret{
		Type:   secretAccessTokenType,
		Fields: tokenResponseFields(),
		Renew:  b.tokenRenew,
		Revoke: b.tokenRevoke,
	}
}

// maxHolderAttempts bounds how often a read starts over because the token
// it got was revoked at a lease end meanwhile.
const maxHolderAttempts = 3

func (b *backend) pathTokenRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	defer b.tokenReadStarted()()
	name, bad := roleNameArg(d)
	if bad != nil {
		return bad, nil
	}
	for attempt := 1; ; attempt++ {
		resp, err := b.readRoleToken(ctx, req, name)
		if errors.Is(err, errTokenRevoked) && attempt < maxHolderAttempts {
			continue
		}
		return resp, err
	}
}

func (b *backend) readRoleToken(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	// The generation is taken before the role is read: a role change after
	// this point keeps whatever we mint from being cached.
	gen := b.tokens.generation()
	r, err := b.readRoleCached(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return logical.ErrorResponse("role %q does not exist", name), nil
	}

	tok, err := b.roleToken(ctx, req.Storage, name, r, gen)
	if err != nil {
		return roleTokenErrorResponse(name, r, err)
	}

	now := b.now()
	ttl, maxTTL, ok := leaseTTLs(b.leaseView(), r, now, now, tok.expiresAt)
	if !ok {
		// Only possible with a lifetime shorter than the refresh margin.
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("role %q: Salesforce issued a token that has already expired", name))
	}
	// Every lease of a revoke_on_lease_end role is counted as a holder of
	// its token (cache=false too: Salesforce may hand back the same
	// session), so the last one to end revokes it (token_leases.go).
	var holder string
	if r.RevokeOnLeaseEnd {
		holder, err = b.recordTokenHolder(ctx, req.Storage, name, tok, rand.Text(), now.Add(maxTTL))
		if err != nil {
			if errors.Is(err, errTokenRevoked) {
				return nil, err
			}
			return nil, fmt.Errorf("role %q: %w", name, err)
		}
	} else {
		b.noteUnrevokedToken(ctx, req.Storage, tok)
	}
	sess := tok.session
	resp := b.Secret(secretAccessTokenType).Response(map[string]interface{}{
		"access_token": sess.AccessToken,
		"instance_url": sess.InstanceURL,
		"id":           sess.ID,
		"token_type":   sess.TokenType,
		"scope":        sess.Scope,
		"issued_at":    tok.issuedAt.UTC().Format(time.RFC3339),
		"expires_at":   tok.expiresAt.UTC().Format(time.RFC3339),
	}, map[string]interface{}{
		// Revocation needs the token itself; lease internal data is stored
		// encrypted by Vault and never shown to clients.
		"access_token": sess.AccessToken,
		"role":         name,
		"revoke":       r.RevokeOnLeaseEnd,
		"lease_holder": holder,
		"expires_at":   tok.expiresAt.UTC().Format(time.RFC3339Nano),
	})
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	return resp, nil
}

// leaseTTLCacheFor is how long the mount's default and maximum lease TTLs
// are reused before Vault is asked again (each is a call through the
// plugin's gRPC hop): a tune of them applies to token reads a second later.
// Vault itself caps every lease at the mount's maximum at once.
const leaseTTLCacheFor = time.Second

// leaseTTLView is the system view with the mount's lease TTLs as last
// read.
type leaseTTLView struct {
	logical.SystemView
	def, max time.Duration
}

func (v leaseTTLView) DefaultLeaseTTL() time.Duration { return v.def }
func (v leaseTTLView) MaxLeaseTTL() time.Duration     { return v.max }

// leaseTTLCache holds the mount's lease TTLs for leaseTTLCacheFor.
type leaseTTLCache struct {
	mu       sync.Mutex
	def, max time.Duration
	read     time.Time
}

// leaseView is the backend's system view with the mount's lease TTLs read
// at most once per leaseTTLCacheFor (real time: a test clock does not move
// it).
func (b *backend) leaseView() logical.SystemView {
	sys := b.System()
	c := &b.leaseTTLs
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.read.IsZero() || time.Since(c.read) >= leaseTTLCacheFor {
		c.def, c.max, c.read = sys.DefaultLeaseTTL(), sys.MaxLeaseTTL(), time.Now()
	}
	return leaseTTLView{SystemView: sys, def: c.def, max: c.max}
}

// leaseTTLs caps the role's (or the mount's) TTLs at the session's end.
// ok is false when the session has already ended.
func leaseTTLs(sys logical.SystemView, r *roleEntry, issued, now, sessionEnd time.Time) (ttl, maxTTL time.Duration, ok bool) {
	ttl, maxTTL = sys.DefaultLeaseTTL(), sys.MaxLeaseTTL()
	if r != nil && r.TTL > 0 {
		ttl = r.TTL
	}
	if r != nil && r.MaxTTL > 0 {
		maxTTL = r.MaxTTL
	}
	if untilEnd := sessionEnd.Sub(issued); maxTTL <= 0 || maxTTL > untilEnd {
		maxTTL = untilEnd
	}
	remaining := min(sessionEnd.Sub(now), maxTTL-now.Sub(issued))
	if ttl <= 0 || ttl > remaining {
		ttl = remaining
	}
	// Vault counts leases in whole seconds.
	ttl = ttl.Truncate(time.Second)
	return ttl, maxTTL, ttl > 0
}

func (b *backend) tokenRenew(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	sessionEnd, err := time.Parse(time.RFC3339Nano, internalString(req.Secret, "expires_at"))
	if err != nil {
		return nil, errors.New("lease has no session end; read the token again")
	}
	r, err := readRole(ctx, req.Storage, internalString(req.Secret, "role"))
	if err != nil {
		return nil, err
	}
	issued := req.Secret.IssueTime
	if issued.IsZero() {
		issued = b.now()
	}
	ttl, maxTTL, ok := leaseTTLs(b.leaseView(), r, issued, b.now(), sessionEnd)
	if !ok {
		return logical.ErrorResponse("the Salesforce session of this lease has ended; read token/%s again", internalString(req.Secret, "role")), nil
	}
	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	return resp, nil
}

// tokenRevoke ends a lease. With revoke_on_lease_end (as the role was when
// the lease was issued) the token is revoked in Salesforce once no other
// lease that may still be alive holds it (token_leases.go).
func (b *backend) tokenRevoke(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	role := internalString(req.Secret, "role")
	token := internalString(req.Secret, "access_token")
	revoke, _ := req.Secret.InternalData["revoke"].(bool)
	if !revoke || token == "" {
		return nil, nil
	}
	sessionEnd, _ := time.Parse(time.RFC3339Nano, internalString(req.Secret, "expires_at"))
	last, err := b.releaseTokenHolder(ctx, req.Storage, token, internalString(req.Secret, "lease_holder"), sessionEnd)
	if err != nil {
		// Vault retries the revocation later.
		return nil, fmt.Errorf("ending the lease of role %q: %w", role, err)
	}
	if !last {
		b.logger.Debug("lease ended; token still held by other leases, not revoked yet", "role", role)
		return nil, nil
	}
	client, _, err := b.getClient(ctx, req.Storage)
	if err != nil {
		if errors.Is(err, errConfigMissing) {
			// Nothing to reach Salesforce with; the session ends on its own.
			b.logger.Warn("cannot revoke token at lease end: engine not configured", "role", role)
			return nil, nil
		}
		return nil, err
	}
	err = sfapi.WithRetry(ctx, func(ctx context.Context) error { return client.Revoke(ctx, token) })
	switch {
	case err == nil:
		return nil, nil
	case sfapi.IsTransient(err):
		// Vault retries the revocation later.
		return nil, fmt.Errorf("revoking the token of role %q: %w", role, err)
	default:
		// invalid_token: already revoked or expired, which is the goal.
		b.logger.Debug("Salesforce did not revoke the token; treating it as already ended", "role", role, "code", sfapi.ErrorCode(err))
		return nil, nil
	}
}

func internalString(s *logical.Secret, key string) string {
	if s == nil {
		return ""
	}
	v, _ := s.InternalData[key].(string)
	return v
}

// roleTokenErrorResponse turns a mint failure into what the caller should
// see: a 400 naming the role and Salesforce's code for anything retrying
// cannot fix, a 503 for an outage that outlasted the retries.
func roleTokenErrorResponse(name string, r *roleEntry, err error) (*logical.Response, error) {
	var sfErr *sfapi.Error
	var setupErr *roleSetupError
	var held *heldRejectionError
	var budget *errLoginBudget
	switch {
	case errors.As(err, &setupErr):
		return logical.ErrorResponse("role %q: %s", name, setupErr.msg), nil
	case errors.As(err, &held):
		return logical.ErrorResponse("role %q: %s", name, held.Error()), nil
	case errors.As(err, &budget) && budget.busy:
		return nil, logical.CodedError(http.StatusTooManyRequests, fmt.Sprintf("role %q: not logging in now: %s", name, budget.Error()))
	case errors.As(err, &budget):
		return logical.ErrorResponse("role %q: not logging in: %s", name, budget.Error()), nil
	case errors.Is(err, errConfigMissing):
		return logical.ErrorResponse("role %q: %s", name, err.Error()), nil
	case errors.Is(err, errSignatureMismatch), errors.Is(err, errInactiveToken), sfapi.ErrorCode(err) == "invalid_signature":
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("role %q: %s", name, err.Error()))
	case errors.As(err, &sfErr):
		switch sfErr.Kind {
		case sfapi.KindTransient:
			return nil, logical.CodedError(http.StatusServiceUnavailable,
				fmt.Sprintf("role %q: Salesforce is unavailable, gave up after retrying: %s", name, sfErr.Error()))
		case sfapi.KindOther:
			return nil, fmt.Errorf("role %q: %w", name, err)
		default:
			code := sfErr.Code
			if code == "" {
				code = "unknown"
			}
			msg := fmt.Sprintf("role %q: Salesforce refused the %s grant (%s): %s", name, r.GrantType, code, sfErr.Message)
			if r.GrantType == grantPassword && sfErr.Kind == sfapi.KindCredentials {
				msg += fmt.Sprintf("; if the account's credential changed outside Vault, write the current password to accounts/%s "+
					"or the current token to accounts/%s/security-token (accounts/%s/diagnose tells which)", r.Account, r.Account, r.Account)
			}
			return logical.ErrorResponse("%s", msg), nil
		}
	}
	return nil, fmt.Errorf("role %q: %w", name, err)
}
