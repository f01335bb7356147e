package salesforce

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/sync/singleflight"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

const (
	// verifyInterval is how long a cached token is served before the
	// engine asks Salesforce again (by introspection) whether it is alive.
	verifyInterval   = 5 * time.Minute
	minRefreshMargin = 30 * time.Second
	maxRefreshMargin = 5 * time.Minute
)

// Expiry sources reported by token reads.
const (
	expiryFromIntrospection  = "introspection"
	expiryFromSessionTimeout = "session_timeout"
)

var (
	// errSignatureMismatch means the token response's signature did not
	// verify with the connected app's client secret.
	errSignatureMismatch = errors.New("the token response's signature does not match the connected app's client secret")
	// errInactiveToken means Salesforce called a token inactive right
	// after issuing it, twice in a row.
	errInactiveToken = errors.New("Salesforce reports the newly issued token as inactive")
)

// tokenCache holds one live token per role (and account, for password
// roles), what password roles learned from rejected logins, and the locks
// of the lease holder index in storage.
type tokenCache struct {
	mu sync.Mutex
	// gen grows on every invalidation. A mint that started under an older
	// generation is handed to its callers but never cached, so a role,
	// account, key or config change cannot be undone by a mint in flight.
	gen     uint64
	entries map[string]*cachedToken
	// rejections holds, per cache key of a password role, the credential
	// error Salesforce gave, served until its hold ends or the role,
	// account or config changes.
	rejections map[string]*rejectedLogin
	// revoked maps the hash of each token revoked at a lease end to the
	// end of its session: a read that picked it from the cache just before
	// must not record a lease on it.
	revoked map[string]time.Time
	// holderLocks serialise, per token hash, recording leases (shared)
	// against deciding that the last one ended (exclusive).
	holderLocks []*locksutil.LockEntry
	// holders counts the leases this process issued (token_leases.go).
	holders holderState
	// introspectionDenied remembers that the connected app may not
	// introspect, so reads stop asking until the config changes.
	introspectionDenied bool

	flights singleflight.Group
}

// cachedToken is a minted token and what the engine knows of its life.
type cachedToken struct {
	role      string
	account   string
	grantType string
	// clientID is the consumer key that minted it.
	clientID  string
	session   *sfapi.Session
	issuedAt  time.Time
	expiresAt time.Time
	// expirySource says whether expiresAt came from Salesforce or was
	// assumed from the role's session_timeout.
	expirySource string
	// refreshAt is when the cache stops serving it: a safety margin before
	// expiresAt.
	refreshAt    time.Time
	lastVerified time.Time
}

func newTokenCache() *tokenCache {
	return &tokenCache{
		entries:     map[string]*cachedToken{},
		rejections:  map[string]*rejectedLogin{},
		revoked:     map[string]time.Time{},
		holderLocks: locksutil.CreateLocks(),
		holders:     newHolderState(),
	}
}

// refreshMargin is a tenth of the token's lifetime, within [30 s, 5 min]:
// a token is never handed out so close to its end that the caller cannot
// use it.
func refreshMargin(lifetime time.Duration) time.Duration {
	return min(max(lifetime/10, minRefreshMargin), maxRefreshMargin)
}

func roleCacheKey(name string, r *roleEntry) string {
	if r.GrantType == grantPassword {
		return "role/" + name + "/account/" + r.Account
	}
	return "role/" + name
}

func (c *tokenCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// tokenMatch selects cached state by what it was derived from.
type tokenMatch func(role, account, grantType string) bool

// dropWhere removes the cached tokens and rejected logins match selects and
// starts a new generation.
func (c *tokenCache) dropWhere(match tokenMatch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.entries {
		if match(e.role, e.account, e.grantType) {
			delete(c.entries, k)
		}
	}
	for k, r := range c.rejections {
		if match(r.role, r.account, grantPassword) {
			delete(c.rejections, k)
		}
	}
}

// invalidateTokensForAccount drops cached OAuth tokens minted with the
// account's credential (password-grant roles) and what failed logins
// taught about it: a changed account deserves a fresh try.
func (b *backend) invalidateTokensForAccount(name string) {
	b.tokens.dropWhere(func(_, account, _ string) bool { return account == name })
}

// invalidateAllTokens drops every cached OAuth token (config change).
func (b *backend) invalidateAllTokens() {
	b.tokens.dropWhere(func(_, _, _ string) bool { return true })
	b.tokens.mu.Lock()
	b.tokens.introspectionDenied = false
	b.tokens.mu.Unlock()
}

// invalidateTokensForRole drops the role's cached token (role written or
// deleted, here or on another node).
func (b *backend) invalidateTokensForRole(name string) {
	b.cache.roles.drop(name)
	b.tokens.dropWhere(func(role, _, _ string) bool { return role == name })
}

// invalidateTokensForJWTKey drops tokens minted with the JWT key.
func (b *backend) invalidateTokensForJWTKey() {
	b.tokens.dropWhere(func(_, _, grantType string) bool { return grantType == grantJWTBearer })
}

// roleToken returns a live token for the role: the cached one, or a new
// one minted by exactly one of the concurrent callers. gen must be read
// before the role was, see tokenCache.gen.
func (b *backend) roleToken(ctx context.Context, s logical.Storage, name string, r *roleEntry, gen uint64) (*cachedToken, error) {
	c := b.tokens
	if !r.Cache {
		return b.mintRoleToken(ctx, s, name, r, gen)
	}

	key := roleCacheKey(name, r)
	if tok, ok := b.cachedRoleToken(ctx, s, key); ok {
		return tok, nil
	}

	// The flight runs on behalf of every waiter: it must not die with the
	// first caller's cancellation, but keeps its deadline.
	v, err, _ := c.flights.Do(fmt.Sprintf("%s#%d", key, gen), func() (interface{}, error) {
		c.mu.Lock()
		if e := c.entries[key]; e != nil && b.now().Before(e.refreshAt) {
			c.mu.Unlock()
			return e, nil
		}
		c.mu.Unlock()

		fctx, cancel := detachCancel(ctx)
		defer cancel()
		tok, err := b.mintRoleToken(fctx, s, name, r, gen)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.gen == gen {
			c.entries[key] = tok
		}
		c.mu.Unlock()
		return tok, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*cachedToken), nil
}

// cachedRoleToken serves the cached token if it is fresh. Every
// verifyInterval one caller asks Salesforce whether it still lives; if
// Salesforce says the session is gone (INVALID_SESSION_ID, inactive), the
// entry is dropped so the caller mints once.
func (b *backend) cachedRoleToken(ctx context.Context, s logical.Storage, key string) (*cachedToken, bool) {
	c := b.tokens
	c.mu.Lock()
	e := c.entries[key]
	now := b.now()
	if e == nil || !now.Before(e.refreshAt) {
		c.mu.Unlock()
		return nil, false
	}
	verify := !c.introspectionDenied && now.Sub(e.lastVerified) >= verifyInterval
	if verify {
		// Claim the check so concurrent readers keep being served.
		e.lastVerified = now
	}
	c.mu.Unlock()
	if !verify {
		return e, true
	}

	alive := true
	if client, _, err := b.getClient(ctx, s); err == nil {
		info, err := client.Introspect(ctx, e.session.AccessToken)
		switch {
		case sfapi.KindOf(err) == sfapi.KindSession:
			alive = false
		case err == nil && !info.Active:
			alive = false
		}
	}
	if !alive {
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
		b.logger.Info("cached token no longer valid in Salesforce; minting a new one", "role", e.role)
		return nil, false
	}
	return e, true
}

// detachCancel keeps ctx's values and deadline but not its cancellation.
func detachCancel(ctx context.Context) (context.Context, context.CancelFunc) {
	detached := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(detached, deadline)
	}
	return context.WithCancel(detached)
}

// mintRoleToken asks Salesforce for a new token with the role's grant,
// checks its signature and learns its expiry. A token Salesforce calls
// inactive straight away is minted once more.
func (b *backend) mintRoleToken(ctx context.Context, s logical.Storage, name string, r *roleEntry, gen uint64) (*cachedToken, error) {
	if err := b.tokens.heldRejection(roleCacheKey(name, r), b.now()); err != nil {
		return nil, err
	}
	client, cfg, err := b.getClient(ctx, s)
	if err != nil {
		return nil, err
	}
	cc, err := cfg.clientConfig()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		sess, err := b.grantSession(ctx, s, client, name, r, gen)
		if err != nil {
			return nil, err
		}
		if err := verifySignature(sess, cc.ClientSecret); err != nil {
			b.logger.Warn("rejecting a token response", "role", name, "error", err)
			return nil, err
		}
		tok, alive := b.learnExpiry(ctx, client, name, r, sess)
		if alive {
			tok.clientID = tokenClientID(client, cfg)
			if r.RevokeOnLeaseEnd {
				// Named in storage before any lease holds it.
				if err := b.noteTokenMinted(ctx, s, name, tok); err != nil {
					return nil, err
				}
			}
			return tok, nil
		}
		if attempt >= 2 {
			return nil, errInactiveToken
		}
		b.logger.Info("new token reported inactive; minting once more", "role", name)
	}
}

// grantSession runs the role's grant, retrying transient failures only.
// A password role logs in only with an account credential that can work,
// and remembers when Salesforce rejects it.
func (b *backend) grantSession(ctx context.Context, s logical.Storage, client Client, name string, r *roleEntry, gen uint64) (*sfapi.Session, error) {
	var mint func(ctx context.Context) (*sfapi.Session, error)
	switch r.GrantType {
	case grantPassword:
		acct, err := readAccount(ctx, s, r.Account)
		if err != nil {
			return nil, err
		}
		if acct == nil {
			return nil, &roleSetupError{msg: fmt.Sprintf("account %q does not exist", r.Account)}
		}
		// A dual account's active user, as creds/<name> serves it.
		acct = acct.activeView()
		if msg := passwordRoleBlocked(r.Account, acct); msg != "" {
			return nil, &roleSetupError{msg: msg}
		}
		who := accountUser(r.Account, acct)
		mint = func(ctx context.Context) (*sfapi.Session, error) {
			// Each attempt is one login: reserved before it is sent, so no
			// concurrency takes the user past max_failed_logins.
			slot, err := b.reserveLogin(ctx, s, who, purposeToken, credStored)
			if err != nil {
				return nil, err
			}
			sess, err := client.PasswordGrant(ctx, acct.Username, acct.passwordWithToken())
			slot.done(ctx, err)
			if sfapi.IsCredentialError(err) {
				b.holdRejectedLogin(name, r, gen, err)
			}
			return sess, err
		}
	case grantClientCredentials:
		mint = func(ctx context.Context) (*sfapi.Session, error) {
			return client.ClientCredentialsGrant(ctx, r.Scopes)
		}
	case grantJWTBearer:
		keys, err := b.roleSigningKeys(ctx, s)
		if errors.Is(err, errNoSigningKey) {
			return nil, &roleSetupError{msg: err.Error()}
		}
		if err != nil {
			return nil, err
		}
		mint = func(ctx context.Context) (*sfapi.Session, error) {
			var sess *sfapi.Session
			var err error
			for i, key := range keys {
				sess, err = client.JWTBearerGrant(ctx, r.Username, key, r.Scopes)
				if err == nil || !sfapi.IsCredentialError(err) {
					return sess, err
				}
				if i+1 < len(keys) {
					b.logger.Info("JWT assertion rejected with the current key; trying the pending key", "code", sfapi.ErrorCode(err))
				}
			}
			return sess, err
		}
	case grantRefreshToken:
		mint = func(ctx context.Context) (*sfapi.Session, error) {
			return client.RefreshTokenGrant(ctx, r.RefreshToken, r.Scopes)
		}
	default:
		return nil, &roleSetupError{msg: fmt.Sprintf("unknown grant_type %q", r.GrantType)}
	}
	var sess *sfapi.Session
	err := sfapi.WithRetry(ctx, func(ctx context.Context) error {
		var err error
		sess, err = mint(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if sess == nil || sess.AccessToken == "" {
		return nil, errors.New("Salesforce returned no access token")
	}
	return sess, nil
}

// verifySignature checks Salesforce's signature, base64(HMAC-SHA256(
// client_secret, id + issued_at)), when the response carries one. Without
// a client secret (a JWT-only connected app setup) it cannot be checked.
func verifySignature(sess *sfapi.Session, clientSecret string) error {
	if sess.Signature == "" || clientSecret == "" {
		return nil
	}
	got, err := base64.StdEncoding.DecodeString(sess.Signature)
	if err != nil {
		return errSignatureMismatch
	}
	mac := hmac.New(sha256.New, []byte(clientSecret))
	mac.Write([]byte(sess.ID + strconv.FormatInt(sess.IssuedAt.UnixMilli(), 10)))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errSignatureMismatch
	}
	return nil
}

// learnExpiry sets the token's expiry: Salesforce's own (introspection
// exp) when the connected app may introspect, else issued_at plus the
// role's session_timeout. alive is false when Salesforce says the token
// is not active.
func (b *backend) learnExpiry(ctx context.Context, client Client, name string, r *roleEntry, sess *sfapi.Session) (*cachedToken, bool) {
	c := b.tokens
	now := b.now()
	issued := sess.IssuedAt
	if issued.IsZero() || issued.After(now) {
		issued = now
	}
	tok := &cachedToken{
		role:         name,
		account:      r.Account,
		grantType:    r.GrantType,
		session:      sess,
		issuedAt:     issued,
		expiresAt:    issued.Add(r.SessionTimeout),
		expirySource: expiryFromSessionTimeout,
		lastVerified: now,
	}

	c.mu.Lock()
	denied := c.introspectionDenied
	c.mu.Unlock()
	if !denied {
		var info *sfapi.Introspection
		err := sfapi.WithRetry(ctx, func(ctx context.Context) error {
			var err error
			info, err = client.Introspect(ctx, sess.AccessToken)
			return err
		})
		switch {
		case err == nil && !info.Active, sfapi.KindOf(err) == sfapi.KindSession:
			return nil, false
		case err == nil && info.Expires.After(now):
			// An exp in the past next to active=true means the clocks
			// disagree; the assumed timeout is then the safer guess.
			tok.expiresAt = info.Expires
			tok.expirySource = expiryFromIntrospection
		case err != nil && !sfapi.IsTransient(err):
			// The app may not introspect (or the org does not offer it):
			// stop asking until the config changes.
			b.logger.Info("token introspection unavailable; assuming each role's session_timeout", "code", sfapi.ErrorCode(err))
			c.mu.Lock()
			c.introspectionDenied = true
			c.mu.Unlock()
		}
	}
	lifetime := tok.expiresAt.Sub(now)
	tok.refreshAt = tok.expiresAt.Add(-refreshMargin(lifetime))
	return tok, true
}

// roleSetupError is a problem with the role's setup in Vault (missing
// account or key), reported as a 400.
type roleSetupError struct{ msg string }

func (e *roleSetupError) Error() string { return e.msg }
