package salesforce

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// adminSessionCache holds the session the config's admin grant produced.
// Its zero value is ready to use.
type adminSessionCache struct {
	// loginMu serialises admin logins so concurrent callers share one.
	loginMu sync.Mutex

	mu      sync.Mutex
	session *sfapi.Session
	expires time.Time
	// generation changes on every drop, so a login that raced with a
	// config change does not cache a session of the old config.
	generation uint64
	// refusal remembers that Salesforce refused the admin credential, so
	// that retries do not lock the admin user out (admin_refusal.go).
	refusal *adminRefusal
}

func (a *adminSessionCache) get(now time.Time) (*sfapi.Session, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.session != nil && now.Before(a.expires) {
		return a.session, a.generation
	}
	return nil, a.generation
}

func (a *adminSessionCache) put(s *sfapi.Session, expires time.Time, generation uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if generation != a.generation {
		return
	}
	a.session, a.expires = s, expires
}

func (a *adminSessionCache) drop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.session = nil
	a.expires = time.Time{}
	a.generation++
	a.refusal = nil
}

// dropAdminSession forgets the cached admin session, e.g. after Salesforce
// answered INVALID_SESSION_ID.
func (b *backend) dropAdminSession() {
	b.admin.drop()
}

// adminSession returns a session of the config's admin identity, reusing
// a cached one until shortly before it would expire.
func (b *backend) adminSession(ctx context.Context, s logical.Storage) (*sfapi.Session, error) {
	if sess, _ := b.admin.get(b.now()); sess != nil {
		return sess, nil
	}
	b.admin.loginMu.Lock()
	defer b.admin.loginMu.Unlock()
	// Another caller may have logged in while this one waited.
	sess, generation := b.admin.get(b.now())
	if sess != nil {
		return sess, nil
	}
	if err := b.admin.refused(b.now()); err != nil {
		return nil, err
	}
	client, cfg, err := b.getClient(ctx, s)
	if err != nil {
		return nil, err
	}
	vaultKey, err := b.adminVaultKey(ctx, s, cfg)
	if err != nil {
		return nil, err
	}
	issued := b.now()
	var slot *loginSlot
	if cfg.GrantType == adminGrantPassword {
		// The admin password is a stored credential like an account's:
		// its logins are reserved in the admin user's budget.
		if slot, err = b.reserveLogin(ctx, s, adminUser(cfg), purposeCheck, credStored); err != nil {
			return nil, err
		}
	}
	sess, err = adminLogin(ctx, client, cfg, vaultKey)
	slot.done(ctx, err)
	if err != nil {
		if sfapi.IsCredentialError(err) {
			return nil, b.admin.refuse(cfg.GrantType, err, generation, b.now())
		}
		return nil, err
	}
	b.admin.put(sess, issued.Add(sessionLifetime(sess)-adminSessionMargin), generation)
	return sess, nil
}

// withAdminSession runs fn with the admin session and, when Salesforce
// says the session is gone, once more with a fresh one.
func (b *backend) withAdminSession(ctx context.Context, s logical.Storage, fn func(Client, *sfapi.Session) error) error {
	for attempt := 0; ; attempt++ {
		sess, err := b.adminSession(ctx, s)
		if err != nil {
			return err
		}
		client, _, err := b.getClient(ctx, s)
		if err != nil {
			return err
		}
		err = fn(client, sess)
		if err == nil || sfapi.KindOf(err) != sfapi.KindSession || attempt > 0 {
			return err
		}
		b.dropAdminSession()
	}
}

func sessionLifetime(s *sfapi.Session) time.Duration {
	if s.SecondsValid > 0 {
		life := time.Duration(s.SecondsValid) * time.Second
		// Keep at least a short reuse window for short session timeouts.
		if life <= adminSessionMargin {
			return adminSessionMargin + life/2
		}
		return life
	}
	return defaultSessionLifetime
}

// adminVaultKey returns config/jwt-key's current key when the config's
// jwt_bearer grant has no private_key of its own; nil otherwise.
func (b *backend) adminVaultKey(ctx context.Context, s logical.Storage, cfg *salesforceConfig) (*rsa.PrivateKey, error) {
	if cfg.GrantType != adminGrantJWTBearer || cfg.PrivateKey != "" {
		return nil, nil
	}
	key, err := b.jwtSigningKey(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("reading config/jwt-key: %w", err)
	}
	return key, nil
}

// adminLogin obtains a session with the config's admin grant. vaultKey is
// the key generated in Vault (config/jwt-key), used by jwt_bearer when the
// config holds no private_key. It never caches; adminSession does.
func adminLogin(ctx context.Context, c Client, cfg *salesforceConfig, vaultKey *rsa.PrivateKey) (*sfapi.Session, error) {
	switch cfg.GrantType {
	case adminGrantJWTBearer:
		key, err := cfg.privateKey()
		if err != nil {
			return nil, err
		}
		if key == nil {
			key = vaultKey
		}
		if key == nil {
			return nil, errors.New("config has grant_type jwt_bearer but no private_key, and config/jwt-key holds no key")
		}
		return c.JWTBearerGrant(ctx, cfg.Username, key, nil)
	case adminGrantClientCredentials:
		return c.ClientCredentialsGrant(ctx, nil)
	case adminGrantPassword:
		return c.PasswordGrant(ctx, cfg.Username, cfg.Password+cfg.SecurityToken)
	default:
		return nil, fmt.Errorf("config has an unknown grant_type %q", cfg.GrantType)
	}
}
