package sfapi

import (
	"crypto/x509"
	"time"
)

// Config is what a Client needs to reach one org.
type Config struct {
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
