package salesforce

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// rejectedLoginHold is how long a password role answers with the
	// credential error Salesforce just gave instead of logging in again:
	// every failed login brings the user closer to lockout.
	rejectedLoginHold = time.Minute
	// holderGrace pads a lease's recorded end so that clock differences
	// between Vault's lease and ours never end a holder early.
	holderGrace = time.Minute
)

// tokenLeaseStoragePrefix holds one entry per lease holding a token, under
// token-leases/<sha256 hex of the token>/<lease end unix>-<nonce>: the
// token itself is never stored. Leases are per cluster (performance
// secondaries keep their own), so the prefix is local storage.
const tokenLeaseStoragePrefix = "token-leases/"

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
	// errTokenRevoked means the token was revoked at a lease end while the
	// read that got it was about to record its lease.
	errTokenRevoked = errors.New("the token was revoked while its lease was being recorded")
)

// tokenCache holds one live token per role (and account, for password
// roles), what password roles learned from rejected logins, and the locks
// of the lease holder index in storage.
type tokenCache struct {
	// jwtKeyMu serialises changes to config/jwt-key (read-modify-write of
	// the current and pending keys).
	jwtKeyMu sync.Mutex

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
	// doubted lists the accounts whose credential a password grant saw
	// rejected since they last changed: their logins spend the account's
	// login budget, so a slow poller cannot lock the user out either.
	doubted map[string]bool
	// revoked maps the hash of each token revoked at a lease end to the
	// end of its session: a read that picked it from the cache just before
	// must not record a lease on it.
	revoked map[string]time.Time
	// holderLocks serialise, per token hash, recording leases (shared)
	// against deciding that the last one ended (exclusive).
	holderLocks []*locksutil.LockEntry
	// introspectionDenied remembers that the connected app may not
	// introspect, so reads stop asking until the config changes.
	introspectionDenied bool

	flights singleflight.Group
	now     func() time.Time
}

// rejectedLogin is a credential failure of a password role's grant.
type rejectedLogin struct {
	role, account string
	err           error
	until         time.Time
}

// cachedToken is a minted token and what the engine knows of its life.
type cachedToken struct {
	role      string
	account   string
	grantType string
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
		doubted:     map[string]bool{},
		revoked:     map[string]time.Time{},
		holderLocks: locksutil.CreateLocks(),
		now:         time.Now,
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

// dropWhere removes the cached tokens, rejected logins and account doubts
// match selects and starts a new generation.
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
	for name := range c.doubted {
		if match("", name, grantPassword) {
			delete(c.doubted, name)
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
	b.tokens.dropWhere(func(role, _, _ string) bool { return role == name })
}

// invalidateTokensForJWTKey drops tokens minted with the JWT key.
func (b *backend) invalidateTokensForJWTKey() {
	b.tokens.dropWhere(func(_, _, grantType string) bool { return grantType == grantJWTBearer })
}

// tokenHash names a token in storage without storing it.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func tokenHolderPrefix(hash string) string {
	return tokenLeaseStoragePrefix + hash + "/"
}

// holderEnd reads the lease end from a holder entry's name.
func holderEnd(leaf string) (time.Time, bool) {
	unix, _, ok := strings.Cut(leaf, "-")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(unix, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// tokenHolderEntry is what a holder entry stores: enough for an operator
// to tell what it belongs to, nothing secret.
type tokenHolderEntry struct {
	Role string `json:"role"`
}

// recordTokenHolder records in storage that a lease ending at leaseEnd
// holds tok, so that the lease holding it last revokes it, also after a
// restart, failover or reload. It returns the entry's name for the lease.
func (b *backend) recordTokenHolder(ctx context.Context, s logical.Storage, role string, tok *cachedToken, nonce string, leaseEnd time.Time) (string, error) {
	c := b.tokens
	hash := tokenHash(tok.session.AccessToken)
	lock := locksutil.LockForKey(c.holderLocks, hash)
	lock.RLock()
	defer lock.RUnlock()
	c.mu.Lock()
	_, revoked := c.revoked[hash]
	c.mu.Unlock()
	if revoked {
		return "", errTokenRevoked
	}
	leaf := strconv.FormatInt(leaseEnd.Add(holderGrace).Unix(), 10) + "-" + nonce
	entry, err := logical.StorageEntryJSON(tokenHolderPrefix(hash)+leaf, tokenHolderEntry{Role: role})
	if err != nil {
		return "", err
	}
	if err := s.Put(ctx, entry); err != nil {
		if errors.Is(err, logical.ErrReadOnly) {
			// Vault forwards token reads to the active node; reaching
			// this means it did not (an older Vault or a misrouted call).
			return "", fmt.Errorf("cannot record the token's lease: this node's storage is read-only, read the token on the active node: %w", err)
		}
		return "", fmt.Errorf("recording the token's lease: %w", err)
	}
	return leaf, nil
}

// releaseTokenHolder removes the lease's holder entry and reports whether
// the token should now be revoked in Salesforce: true when no lease that
// may still be alive holds it. A token about to be revoked also leaves the
// cache in the same step, and no read can record a lease on it afterwards.
// leaf is "" for leases issued before the holder index existed.
func (b *backend) releaseTokenHolder(ctx context.Context, s logical.Storage, token, leaf string, sessionEnd time.Time) (bool, error) {
	c := b.tokens
	hash := tokenHash(token)
	prefix := tokenHolderPrefix(hash)
	lock := locksutil.LockForKey(c.holderLocks, hash)
	lock.Lock()
	defer lock.Unlock()

	if leaf != "" && !strings.Contains(leaf, "/") {
		if err := s.Delete(ctx, prefix+leaf); err != nil {
			return false, fmt.Errorf("removing the lease from the token's holders: %w", err)
		}
	}
	leaves, err := s.List(ctx, prefix)
	if err != nil {
		return false, fmt.Errorf("listing the token's holders: %w", err)
	}
	now := c.now()
	var ended []string
	for _, l := range leaves {
		end, ok := holderEnd(l)
		if ok && now.After(end) {
			// Its lease ended without Vault telling us (a forced revoke).
			ended = append(ended, l)
			continue
		}
		// A holder may still be alive (an unreadable one too, to be safe).
		return false, nil
	}
	for _, l := range ended {
		if err := s.Delete(ctx, prefix+l); err != nil {
			b.logger.Warn("could not remove an ended lease from the token holder index", "error", err)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for h, end := range c.revoked {
		if now.After(end) {
			delete(c.revoked, h)
		}
	}
	if sessionEnd.Before(now) {
		sessionEnd = now
	}
	c.revoked[hash] = sessionEnd.Add(holderGrace)
	for k, e := range c.entries {
		if e.session.AccessToken == token {
			delete(c.entries, k)
		}
	}
	return true, nil
}

// tokenHolders counts the holder entries of token (tests, diagnostics).
func tokenHolders(ctx context.Context, s logical.Storage, token string) (int, error) {
	leaves, err := s.List(ctx, tokenHolderPrefix(tokenHash(token)))
	return len(leaves), err
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
		if e := c.entries[key]; e != nil && c.now().Before(e.refreshAt) {
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
	now := c.now()
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
	if err := b.tokens.heldRejection(roleCacheKey(name, r)); err != nil {
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
			return tok, nil
		}
		if attempt >= 2 {
			return nil, errInactiveToken
		}
		b.logger.Info("new token reported inactive; minting once more", "role", name)
	}
}

// heldRejection returns the credential error a password role got less
// than rejectedLoginHold ago, if any.
func (c *tokenCache) heldRejection(key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rej := c.rejections[key]
	if rej == nil {
		return nil
	}
	if !c.now().Before(rej.until) {
		delete(c.rejections, key)
		return nil
	}
	return &heldRejectionError{account: rej.account, until: rej.until, err: rej.err}
}

// passwordRoleBlocked says why the account of a password role must not be
// used to log in, with the fix, or "" when it may.
func passwordRoleBlocked(name string, acct *account) string {
	switch {
	case acct.needsToken() && acct.SecurityTokenStatus == tokenStatusStale:
		return fmt.Sprintf("account %q has a stale security token: its password was changed (rotated) and Salesforce emailed a new "+
			"security token to the user, so a login would fail and count toward the user's lockout; "+
			"write the new token to accounts/%s/security-token", name, name)
	case acct.RotationBlocked == "token_stale":
		return fmt.Sprintf("account %q is blocked because its security token is stale; write the new token to accounts/%s/security-token", name, name)
	case acct.RotationBlocked == "drift":
		return fmt.Sprintf("account %q is blocked: its stored credential no longer logs in (changed outside Vault?), and each try counts "+
			"toward the user's lockout; write the current password to accounts/%s or the current token to accounts/%s/security-token "+
			"(accounts/%s/diagnose tells which)", name, name, name, name)
	case acct.RotationBlocked == "user_locked":
		return fmt.Sprintf("account %q is blocked: the Salesforce user is locked out; unlock it in Salesforce, "+
			"then rotate/%s or write the credential to accounts/%s again", name, name, name)
	case acct.RotationBlocked == "user_inactive":
		return fmt.Sprintf("account %q is blocked: the Salesforce user is inactive; reactivate it, "+
			"then rotate/%s or write the credential to accounts/%s again", name, name, name)
	case acct.RotationBlocked != "":
		return fmt.Sprintf("account %q is blocked (%s); read accounts/%s for the last error, fix it, then write accounts/%s",
			name, acct.RotationBlocked, name, name)
	}
	return ""
}

// spendPasswordLogin takes one login from the account's budgets (logins
// and failed logins, shared with the rotation) when its credential was
// rejected since it last changed. Logins with a credential not in doubt
// are not charged: a busy cache=false role must not starve the rotation's
// own login checks.
func (b *backend) spendPasswordLogin(ctx context.Context, s logical.Storage, name string, acct *account) error {
	rcfg, err := readRotationConfig(ctx, s)
	if err != nil {
		return err
	}
	// Past max_failed_logins no login is made, doubted or not: after a
	// restart only the stored count remembers the rejections.
	if rcfg.MaxFailedLogins > 0 && b.rot.budget.failedCount(name, persistedFailed(acct)) >= rcfg.MaxFailedLogins {
		return &errLoginBudget{account: name, failed: true}
	}
	c := b.tokens
	c.mu.Lock()
	doubted := c.doubted[name]
	c.mu.Unlock()
	if !doubted {
		return nil
	}
	if ok, next, failed := b.rot.budget.takeLogin(name, rcfg.LoginBudgetPerHour, rcfg.MaxFailedLogins, persistedFailed(acct), b.rot.now()); !ok {
		return &errLoginBudget{account: name, next: next, failed: failed}
	}
	return nil
}

// noteRejectedLogin remembers a password grant Salesforce refused, so the
// next reads answer without logging in, and counts the failed login where
// the rotation counts its own: Salesforce locks the user on the total.
func (b *backend) noteRejectedLogin(ctx context.Context, s logical.Storage, name string, r *roleEntry, acct *account, gen uint64, err error) {
	c := b.tokens
	c.mu.Lock()
	if c.gen == gen {
		c.rejections[roleCacheKey(name, r)] = &rejectedLogin{role: name, account: r.Account, err: err, until: c.now().Add(rejectedLoginHold)}
		c.doubted[r.Account] = true
	}
	c.mu.Unlock()
	b.noteFailedLogin(ctx, s, r.Account, acct)
	b.logger.Warn("Salesforce rejected the password grant of an account; not logging in with it again for a while",
		"role", name, "account", r.Account, "code", sfapi.ErrorCode(err), "hold", rejectedLoginHold)
}

// noteAcceptedLogin clears the doubt on an account whose credential just
// logged in; Salesforce resets its failed-login count then too.
func (b *backend) noteAcceptedLogin(ctx context.Context, s logical.Storage, account string, acct *account) {
	c := b.tokens
	c.mu.Lock()
	delete(c.doubted, account)
	c.mu.Unlock()
	b.noteSuccessfulLogin(ctx, s, account, acct)
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
		if msg := passwordRoleBlocked(r.Account, acct); msg != "" {
			return nil, &roleSetupError{msg: msg}
		}
		if err := b.spendPasswordLogin(ctx, s, r.Account, acct); err != nil {
			return nil, err
		}
		mint = func(ctx context.Context) (*sfapi.Session, error) {
			sess, err := client.PasswordGrant(ctx, acct.Username, acct.passwordWithToken())
			switch {
			case err == nil:
				b.noteAcceptedLogin(ctx, s, r.Account, acct)
			case sfapi.IsCredentialError(err):
				b.noteRejectedLogin(ctx, s, name, r, acct, gen, err)
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
	now := c.now()
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

// heldRejectionError answers a password role's read while Salesforce's
// last rejection of the account's credential is held.
type heldRejectionError struct {
	account string
	until   time.Time
	err     error
}

func (e *heldRejectionError) Error() string {
	code := sfapi.ErrorCode(e.err)
	if code == "" {
		code = "unknown"
	}
	return fmt.Sprintf("Salesforce rejected the password grant with account %q (%s) moments ago; not logging in with it again "+
		"before %s, to spare the user's failed-login count. Fix the credential: write the current password to accounts/%s "+
		"or the current token to accounts/%s/security-token (accounts/%s/diagnose tells which)",
		e.account, code, e.until.UTC().Format(time.RFC3339), e.account, e.account, e.account)
}

func (e *heldRejectionError) Unwrap() error { return e.err }
