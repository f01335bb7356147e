package salesforce

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Client is everything the backend asks of Salesforce. The backend never
// speaks HTTP itself, so tests can swap in a fake and the wire details
// (SOAP envelopes, OAuth forms, REST error arrays) live in client_*.go.
type Client interface {
	// SOAPLogin calls the partner API login() with the password and the
	// security token already appended. It uses ClientConfig.SOAPAPIVersion,
	// because login() is refused from API v65.0 on.
	SOAPLogin(ctx context.Context, username, passwordWithToken string) (*Session, error)
	// PasswordGrant runs the OAuth username-password flow through the
	// configured connected app.
	PasswordGrant(ctx context.Context, username, passwordWithToken string) (*Session, error)
	// ClientCredentialsGrant runs the client credentials flow; Salesforce
	// only serves it on the org's My Domain host.
	ClientCredentialsGrant(ctx context.Context, scopes []string) (*Session, error)
	// JWTBearerGrant signs an RS256 assertion for username with key.
	JWTBearerGrant(ctx context.Context, username string, key *rsa.PrivateKey, scopes []string) (*Session, error)
	// RefreshTokenGrant exchanges a refresh token for a new access token.
	RefreshTokenGrant(ctx context.Context, refreshToken string, scopes []string) (*Session, error)

	// Revoke revokes an access or refresh token.
	Revoke(ctx context.Context, token string) error
	// Introspect asks whether a token is still active and when it expires.
	Introspect(ctx context.Context, token string) (*Introspection, error)
	// UserInfo returns the identity behind a session.
	UserInfo(ctx context.Context, s *Session) (*UserInfo, error)
	// Logout ends a SOAP session.
	Logout(ctx context.Context, s *Session) error

	// SetPassword sets another user's password through REST with an
	// admin session (POST /sobjects/User/{id}/password).
	SetPassword(ctx context.Context, admin *Session, userID, newPassword string) error
	// ChangeOwnPassword changes the session user's own password through
	// SOAP changeOwnPassword (API v40.0 and later).
	ChangeOwnPassword(ctx context.Context, own *Session, oldPassword, newPassword string) error
	// LookupUser finds a user by username with a SOQL query.
	LookupUser(ctx context.Context, admin *Session, username string) (*User, error)
	// PasswordExpired reads isExpired from the REST password resource.
	PasswordExpired(ctx context.Context, admin *Session, userID string) (bool, error)
	// LoginLocked reads UserLogin.IsPasswordLocked and the UserLogin id.
	LoginLocked(ctx context.Context, admin *Session, userID string) (locked bool, userLoginID string, err error)
	// UnlockLogin sets UserLogin.IsPasswordLocked to false.
	UnlockLogin(ctx context.Context, admin *Session, userLoginID string) error
	// Query runs a SOQL query and returns the number of records.
	Query(ctx context.Context, s *Session, soql string) (totalSize int, err error)
}

// ClientConfig is what a Client needs to reach one org.
type ClientConfig struct {
	// LoginURL is where logins and token requests go, e.g.
	// https://login.salesforce.com or https://acme.my.salesforce.com.
	LoginURL string
	// APIVersion is used for REST calls and SOAP calls other than login(),
	// e.g. "66.0".
	APIVersion string
	// SOAPAPIVersion is used for SOAP login(), e.g. "64.0".
	SOAPAPIVersion string
	// ClientID and ClientSecret identify the connected app.
	ClientID     string
	ClientSecret string
	// Audience is the JWT bearer "aud"; empty means derived from LoginURL.
	Audience string
	// RootCAs, when set, replaces the system roots.
	RootCAs *x509.CertPool
	// RequestTimeout bounds every single HTTP call.
	RequestTimeout time.Duration
}

// Session is a logged-in Salesforce session: from SOAP login() or from an
// OAuth token response. AccessToken is the session id.
type Session struct {
	AccessToken string
	// RefreshToken is set only by flows that return one.
	RefreshToken string
	InstanceURL  string
	// ID is the identity URL, https://login.salesforce.com/id/<org18>/<user18>.
	ID        string
	UserID    string
	OrgID     string
	TokenType string
	Scope     string
	// IssuedAt comes from issued_at (milliseconds); zero when not sent.
	IssuedAt time.Time
	// Signature is the base64 HMAC-SHA256 of ID+issued_at, when sent.
	Signature string
	// PasswordExpired is set by SOAP login() when only setPassword works.
	PasswordExpired bool
	// SecondsValid is the session lifetime SOAP login() reports; zero when
	// unknown (OAuth never says).
	SecondsValid int
}

// Introspection is the answer of /services/oauth2/introspect.
type Introspection struct {
	Active   bool
	Username string
	Scope    string
	ClientID string
	Expires  time.Time
	IssuedAt time.Time
}

// UserInfo is the subset of /services/oauth2/userinfo the plugin uses.
type UserInfo struct {
	UserID         string
	OrganizationID string
	Username       string
	Email          string
	Active         bool
}

// User is a Salesforce User record.
type User struct {
	ID       string
	Username string
	Email    string
	IsActive bool
}

// ErrorKind sorts Salesforce failures by what a caller should do next.
type ErrorKind int

const (
	// KindOther is a failure that is neither clearly transient nor a
	// credential problem; do not retry.
	KindOther ErrorKind = iota
	// KindCredentials means the username, password, token, key or grant was
	// rejected. Never retry: each failed login brings the user closer to
	// lockout.
	KindCredentials
	// KindTransient is a network error, a 5xx, or a request limit; retry
	// with backoff.
	KindTransient
	// KindSession means the session is expired or unknown
	// (INVALID_SESSION_ID); get a new session and try once more.
	KindSession
	// KindPassword means Salesforce refused a new password
	// (INVALID_NEW_PASSWORD); never send it again. INVALID_OLD_PASSWORD is
	// KindCredentials: the stored password is wrong, not the new one.
	KindPassword
	// KindPermission means the caller lacks access (INSUFFICIENT_ACCESS,
	// API_DISABLED_FOR_ORG, unsupported flow).
	KindPermission
	// KindNotFound means the user or record does not exist.
	KindNotFound
)

// Error is a failure reported by Salesforce or on the way to it. Its text
// never holds a password, token, session id or client secret.
type Error struct {
	// Op names the call, e.g. "soap login", "oauth token", "set password".
	Op string
	// Code is Salesforce's code: INVALID_LOGIN, invalid_grant, ...; empty
	// for network failures.
	Code string
	// Message is Salesforce's message (or a description of a network
	// failure), already free of secrets.
	Message string
	// HTTPStatus is the response status, 0 when none arrived.
	HTTPStatus int
	Kind       ErrorKind
}

func (e *Error) Error() string {
	switch {
	case e.Code != "" && e.Message != "":
		return fmt.Sprintf("salesforce %s: %s: %s", e.Op, e.Code, e.Message)
	case e.Code != "":
		return fmt.Sprintf("salesforce %s: %s", e.Op, e.Code)
	default:
		return fmt.Sprintf("salesforce %s: %s", e.Op, e.Message)
	}
}

// ErrorCode returns Salesforce's code for err, or "" when err is not a
// Salesforce error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// KindOf returns the kind of err; KindOther for errors not from the client.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

// IsTransient reports whether err is worth retrying with backoff.
func IsTransient(err error) bool { return KindOf(err) == KindTransient }

// IsCredentialError reports whether Salesforce rejected the credential.
func IsCredentialError(err error) bool { return KindOf(err) == KindCredentials }
