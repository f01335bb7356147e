package salesforce

import (
	"context"
	"crypto/rsa"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/time/rate"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// The org's request rate: every Salesforce call the engine makes goes
// through one limiter per mount (one org), set by config/rotation's
// requests_per_second. It is applied at the Client interface, so no call
// can bypass it, whatever path makes it. Calls are spaced evenly (a burst
// of one), a little wider than 1/requests_per_second (rateMargin), so that
// no second holds more than requests_per_second calls even when the
// network delays one call more than the next.

// rateMargin is the share of requests_per_second the spacing gives up: n
// calls span (n-1) / (0.95 n) seconds, so the n+1-th starts 50 ms after a
// full second.
const rateMargin = 0.05

func limitOf(rps int) rate.Limit { return rate.Limit(float64(rps) * (1 - rateMargin)) }

// requestRate is the backend's limiter.
type requestRate struct {
	mu  sync.Mutex
	lim *rate.Limiter
	rps int
}

// limiter returns the limiter at rps calls per second (0: as it is).
func (r *requestRate) limiter(rps int) *rate.Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rps == 0 {
		rps = r.rps
	}
	if rps == 0 {
		rps = defaultRequestsPerSecond
	}
	if r.lim == nil {
		r.lim = rate.NewLimiter(limitOf(rps), 1)
		r.rps = rps
	} else if r.rps != rps {
		r.lim.SetLimit(limitOf(rps))
		r.rps = rps
	}
	return r.lim
}

// rateLimitedClient is a Client whose every call waits for the org's
// request rate first.
type rateLimitedClient struct {
	inner Client
	b     *backend
	s     logical.Storage
}

// Every method is spelled out (no embedding): a method added to Client does
// not compile here until it waits for its turn too.
var _ Client = (*rateLimitedClient)(nil)

// limitRequests wraps c so its calls honour requests_per_second, read from
// s (nil: the rate as last read, for the check of a config not stored yet).
func (b *backend) limitRequests(c Client, s logical.Storage) Client {
	return &rateLimitedClient{inner: c, b: b, s: s}
}

// wait blocks until the next call may be sent, or ctx ends.
func (c *rateLimitedClient) wait(ctx context.Context) error {
	rps := 0
	if c.s != nil {
		if rcfg, err := c.b.readRotationConfigCached(ctx, c.s); err == nil {
			rps = rcfg.RequestsPerSecond
		}
	}
	if err := c.b.reqRate.limiter(rps).Wait(ctx); err != nil {
		return fmt.Errorf("waiting for a turn within the org's request rate (requests_per_second in config/rotation): %w", err)
	}
	return nil
}

func (c *rateLimitedClient) SOAPLogin(ctx context.Context, username, passwordWithToken string) (*sfapi.Session, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.SOAPLogin(ctx, username, passwordWithToken)
}

func (c *rateLimitedClient) PasswordGrant(ctx context.Context, username, passwordWithToken string) (*sfapi.Session, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.PasswordGrant(ctx, username, passwordWithToken)
}

func (c *rateLimitedClient) ClientCredentialsGrant(ctx context.Context, scopes []string) (*sfapi.Session, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.ClientCredentialsGrant(ctx, scopes)
}

func (c *rateLimitedClient) JWTBearerGrant(ctx context.Context, username string, key *rsa.PrivateKey, scopes []string) (*sfapi.Session, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.JWTBearerGrant(ctx, username, key, scopes)
}

func (c *rateLimitedClient) RefreshTokenGrant(ctx context.Context, refreshToken string, scopes []string) (*sfapi.Session, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.RefreshTokenGrant(ctx, refreshToken, scopes)
}

func (c *rateLimitedClient) Revoke(ctx context.Context, token string) error {
	if err := c.wait(ctx); err != nil {
		return err
	}
	return c.inner.Revoke(ctx, token)
}

func (c *rateLimitedClient) Introspect(ctx context.Context, token string) (*sfapi.Introspection, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.Introspect(ctx, token)
}

func (c *rateLimitedClient) UserInfo(ctx context.Context, s *sfapi.Session) (*sfapi.UserInfo, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.UserInfo(ctx, s)
}

func (c *rateLimitedClient) Logout(ctx context.Context, s *sfapi.Session) error {
	if err := c.wait(ctx); err != nil {
		return err
	}
	return c.inner.Logout(ctx, s)
}

func (c *rateLimitedClient) SetPassword(ctx context.Context, admin *sfapi.Session, userID, newPassword string) error {
	if err := c.wait(ctx); err != nil {
		return err
	}
	return c.inner.SetPassword(ctx, admin, userID, newPassword)
}

func (c *rateLimitedClient) ChangeOwnPassword(ctx context.Context, own *sfapi.Session, oldPassword, newPassword string) error {
	if err := c.wait(ctx); err != nil {
		return err
	}
	return c.inner.ChangeOwnPassword(ctx, own, oldPassword, newPassword)
}

func (c *rateLimitedClient) LookupUser(ctx context.Context, admin *sfapi.Session, username string) (*sfapi.User, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.LookupUser(ctx, admin, username)
}

func (c *rateLimitedClient) PasswordExpired(ctx context.Context, admin *sfapi.Session, userID string) (bool, error) {
	if err := c.wait(ctx); err != nil {
		return false, err
	}
	return c.inner.PasswordExpired(ctx, admin, userID)
}

func (c *rateLimitedClient) PasswordChangedAt(ctx context.Context, admin *sfapi.Session, userID string) (time.Time, error) {
	if err := c.wait(ctx); err != nil {
		return time.Time{}, err
	}
	return c.inner.PasswordChangedAt(ctx, admin, userID)
}

func (c *rateLimitedClient) LoginLocked(ctx context.Context, admin *sfapi.Session, userID string) (bool, string, error) {
	if err := c.wait(ctx); err != nil {
		return false, "", err
	}
	return c.inner.LoginLocked(ctx, admin, userID)
}

func (c *rateLimitedClient) UnlockLogin(ctx context.Context, admin *sfapi.Session, userLoginID string) error {
	if err := c.wait(ctx); err != nil {
		return err
	}
	return c.inner.UnlockLogin(ctx, admin, userLoginID)
}

func (c *rateLimitedClient) Query(ctx context.Context, s *sfapi.Session, soql string) (int, error) {
	if err := c.wait(ctx); err != nil {
		return 0, err
	}
	return c.inner.Query(ctx, s, soql)
}

// The wire client's capabilities beyond Client (client.go) wait for the
// org's request rate too: asLoginHistoryClient and asECAClient hand out
// these around the rate-limited client's inner one.

type rateLimitedLoginHistory struct {
	rl    *rateLimitedClient
	inner loginHistoryClient
}

var _ loginHistoryClient = (*rateLimitedLoginHistory)(nil)

type rateLimitedECA struct {
	rl    *rateLimitedClient
	inner ecaClient
}

var _ ecaClient = (*rateLimitedECA)(nil)

func (c *rateLimitedLoginHistory) LoginHistory(ctx context.Context, s *sfapi.Session, userIDs []string, since time.Time, limit int) ([]sfapi.LoginRecord, bool, error) {
	if err := c.rl.wait(ctx); err != nil {
		return nil, false, err
	}
	return c.inner.LoginHistory(ctx, s, userIDs, since, limit)
}

func (c *rateLimitedLoginHistory) UserIDs(ctx context.Context, s *sfapi.Session, usernames []string) (map[string]string, error) {
	if err := c.rl.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.UserIDs(ctx, s, usernames)
}

func (c *rateLimitedECA) FindExternalClientApp(ctx context.Context, s *sfapi.Session, developerName string) (*sfapi.ExternalClientApp, error) {
	if err := c.rl.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.FindExternalClientApp(ctx, s, developerName)
}

func (c *rateLimitedECA) AppConsumers(ctx context.Context, s *sfapi.Session, appID string) ([]sfapi.AppConsumer, error) {
	if err := c.rl.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.AppConsumers(ctx, s, appID)
}

func (c *rateLimitedECA) StagedCredentials(ctx context.Context, s *sfapi.Session, appID, consumerID string) ([]sfapi.StagedCredential, error) {
	if err := c.rl.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.StagedCredentials(ctx, s, appID, consumerID)
}

func (c *rateLimitedECA) StageCredential(ctx context.Context, s *sfapi.Session, appID, consumerID string) (*sfapi.StagedCredential, error) {
	if err := c.rl.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.StageCredential(ctx, s, appID, consumerID)
}

func (c *rateLimitedECA) StagedSecret(ctx context.Context, s *sfapi.Session, appID, consumerID, stagedID string) (*sfapi.StagedCredential, error) {
	if err := c.rl.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.StagedSecret(ctx, s, appID, consumerID, stagedID)
}

func (c *rateLimitedECA) ConsumerSecret(ctx context.Context, s *sfapi.Session, appID, consumerID string) (key, secret string, err error) {
	if err := c.rl.wait(ctx); err != nil {
		return "", "", err
	}
	return c.inner.ConsumerSecret(ctx, s, appID, consumerID)
}

func (c *rateLimitedECA) PromoteStagedCredential(ctx context.Context, s *sfapi.Session, appID, consumerID, stagedID string) error {
	if err := c.rl.wait(ctx); err != nil {
		return err
	}
	return c.inner.PromoteStagedCredential(ctx, s, appID, consumerID, stagedID)
}

func (c *rateLimitedECA) DeleteStagedCredential(ctx context.Context, s *sfapi.Session, appID, consumerID, stagedID string) error {
	if err := c.rl.wait(ctx); err != nil {
		return err
	}
	return c.inner.DeleteStagedCredential(ctx, s, appID, consumerID, stagedID)
}

func (c *rateLimitedClient) UsersAccess(ctx context.Context, admin *sfapi.Session, userIDs ...string) (map[string]*sfapi.UserAccess, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.UsersAccess(ctx, admin, userIDs...)
}

func (c *rateLimitedClient) UserSessions(ctx context.Context, admin *sfapi.Session, userID string) ([]sfapi.AuthSession, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.UserSessions(ctx, admin, userID)
}

func (c *rateLimitedClient) CurrentSessionIDs(ctx context.Context, s *sfapi.Session) ([]string, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.CurrentSessionIDs(ctx, s)
}

func (c *rateLimitedClient) EndSession(ctx context.Context, admin *sfapi.Session, sessionID string) error {
	if err := c.wait(ctx); err != nil {
		return err
	}
	return c.inner.EndSession(ctx, admin, sessionID)
}

func (c *rateLimitedClient) UserOAuthGrants(ctx context.Context, admin *sfapi.Session, userID string) ([]sfapi.OAuthGrant, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.inner.UserOAuthGrants(ctx, admin, userID)
}
