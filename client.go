package salesforce

import (
	"context"
	"crypto/rsa"
	"fmt"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// Client is everything the backend asks of Salesforce. The backend never
// speaks HTTP itself, so tests can swap in a fake and the wire details
// (SOAP envelopes, OAuth forms, REST error arrays) live in package sfapi.
type Client interface {
	// SOAPLogin calls the partner API login() with the password and the
	// security token already appended. It uses sfapi.Config.SOAPAPIVersion,
	// because login() is refused from API v65.0 on.
	SOAPLogin(ctx context.Context, username, passwordWithToken string) (*sfapi.Session, error)
	// PasswordGrant runs the OAuth username-password flow through the
	// configured connected app.
	PasswordGrant(ctx context.Context, username, passwordWithToken string) (*sfapi.Session, error)
	// ClientCredentialsGrant runs the client credentials flow; Salesforce
	// only serves it on the org's My Domain host.
	ClientCredentialsGrant(ctx context.Context, scopes []string) (*sfapi.Session, error)
	// JWTBearerGrant signs an RS256 assertion for username with key.
	JWTBearerGrant(ctx context.Context, username string, key *rsa.PrivateKey, scopes []string) (*sfapi.Session, error)
	// RefreshTokenGrant exchanges a refresh token for a new access token.
	RefreshTokenGrant(ctx context.Context, refreshToken string, scopes []string) (*sfapi.Session, error)

	// Revoke revokes an access or refresh token.
	Revoke(ctx context.Context, token string) error
	// Introspect asks whether a token is still active and when it expires.
	Introspect(ctx context.Context, token string) (*sfapi.Introspection, error)
	// UserInfo returns the identity behind a session.
	UserInfo(ctx context.Context, s *sfapi.Session) (*sfapi.UserInfo, error)
	// Logout ends a SOAP session.
	Logout(ctx context.Context, s *sfapi.Session) error

	// SetPassword sets another user's password through REST with an
	// admin session (POST /sobjects/User/{id}/password).
	SetPassword(ctx context.Context, admin *sfapi.Session, userID, newPassword string) error
	// ChangeOwnPassword changes the session user's own password through
	// SOAP changeOwnPassword (API v40.0 and later).
	ChangeOwnPassword(ctx context.Context, own *sfapi.Session, oldPassword, newPassword string) error
	// LookupUser finds a user by username with a SOQL query.
	LookupUser(ctx context.Context, admin *sfapi.Session, username string) (*sfapi.User, error)
	// PasswordExpired reads isExpired from the REST password resource.
	PasswordExpired(ctx context.Context, admin *sfapi.Session, userID string) (bool, error)
	// PasswordChangedAt reads User.LastPasswordChangeDate (zero: never).
	PasswordChangedAt(ctx context.Context, admin *sfapi.Session, userID string) (time.Time, error)
	// LoginLocked reads UserLogin.IsPasswordLocked and the UserLogin id.
	LoginLocked(ctx context.Context, admin *sfapi.Session, userID string) (locked bool, userLoginID string, err error)
	// UnlockLogin sets UserLogin.IsPasswordLocked to false.
	UnlockLogin(ctx context.Context, admin *sfapi.Session, userLoginID string) error
	// Query runs a SOQL query and returns the number of records.
	Query(ctx context.Context, s *sfapi.Session, soql string) (totalSize int, err error)

	// UsersAccess reads profile, permission sets and groups (not the
	// profile's own set), active and locked state of users, keyed by the
	// 15-character id (dual-account parity checks).
	UsersAccess(ctx context.Context, admin *sfapi.Session, userIDs ...string) (map[string]*sfapi.UserAccess, error)
	// UserSessions lists a user's AuthSessions outside the caller's own
	// session family (IsCurrent = false).
	UserSessions(ctx context.Context, admin *sfapi.Session, userID string) ([]sfapi.AuthSession, error)
	// CurrentSessionIDs lists the AuthSession ids of s's own family.
	CurrentSessionIDs(ctx context.Context, s *sfapi.Session) ([]string, error)
	// EndSession deletes an AuthSession; one already gone is no error.
	EndSession(ctx context.Context, admin *sfapi.Session, sessionID string) error
	// UserOAuthGrants lists the apps' OAuth grants (OauthToken rows) of a
	// user; Revoke ends one with its DeleteToken.
	UserOAuthGrants(ctx context.Context, admin *sfapi.Session, userID string) ([]sfapi.OAuthGrant, error)
}

var _ Client = (*sfapi.Client)(nil)

// newClient builds the wire client for one org; it does not contact
// Salesforce.
func newClient(cfg sfapi.Config) (Client, error) {
	c, err := sfapi.New(cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Capabilities of the wire client beyond the Client interface: Login
// History (the migration report) and External Client App credentials
// (client-secret rotation). They are separate interfaces so Client stays
// the small set every path needs; the engine asks for them only where it
// uses them, and sfapi.Client has both.

// loginHistoryClient reads LoginHistory and resolves usernames to ids.
type loginHistoryClient interface {
	LoginHistory(ctx context.Context, s *sfapi.Session, userIDs []string, since time.Time, limit int) ([]sfapi.LoginRecord, bool, error)
	UserIDs(ctx context.Context, s *sfapi.Session, usernames []string) (map[string]string, error)
}

// ecaClient manages an External Client App's consumer credentials through
// the OAuth Staged Credentials Connect REST API (v65.0).
type ecaClient interface {
	FindExternalClientApp(ctx context.Context, s *sfapi.Session, developerName string) (*sfapi.ExternalClientApp, error)
	AppConsumers(ctx context.Context, s *sfapi.Session, appID string) ([]sfapi.AppConsumer, error)
	StagedCredentials(ctx context.Context, s *sfapi.Session, appID, consumerID string) ([]sfapi.StagedCredential, error)
	StageCredential(ctx context.Context, s *sfapi.Session, appID, consumerID string) (*sfapi.StagedCredential, error)
	StagedSecret(ctx context.Context, s *sfapi.Session, appID, consumerID, stagedID string) (*sfapi.StagedCredential, error)
	ConsumerSecret(ctx context.Context, s *sfapi.Session, appID, consumerID string) (key, secret string, err error)
	PromoteStagedCredential(ctx context.Context, s *sfapi.Session, appID, consumerID, stagedID string) error
	DeleteStagedCredential(ctx context.Context, s *sfapi.Session, appID, consumerID, stagedID string) error
}

// clientIDer is a client that says which consumer key it authenticates
// with, so a token can be tagged with the key that minted it.
type clientIDer interface {
	ClientID() string
}

var (
	_ loginHistoryClient = (*sfapi.Client)(nil)
	_ ecaClient          = (*sfapi.Client)(nil)
	_ clientIDer         = (*sfapi.Client)(nil)
)

func asLoginHistoryClient(c Client) (loginHistoryClient, error) {
	if r, ok := c.(*rateLimitedClient); ok {
		lc, err := asLoginHistoryClient(r.inner)
		if err != nil {
			return nil, err
		}
		return &rateLimitedLoginHistory{rl: r, inner: lc}, nil
	}
	lc, ok := c.(loginHistoryClient)
	if !ok {
		return nil, fmt.Errorf("this Salesforce client (%T) cannot read LoginHistory", c)
	}
	return lc, nil
}

func asECAClient(c Client) (ecaClient, error) {
	if r, ok := c.(*rateLimitedClient); ok {
		ec, err := asECAClient(r.inner)
		if err != nil {
			return nil, err
		}
		return &rateLimitedECA{rl: r, inner: ec}, nil
	}
	ec, ok := c.(ecaClient)
	if !ok {
		return nil, fmt.Errorf("this Salesforce client (%T) cannot manage External Client App credentials", c)
	}
	return ec, nil
}
