package salesforce

import (
	"context"
	"crypto/rsa"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// fakeUser is one user of the fake org.
type fakeUser struct {
	id       string
	password string
	token    string
	// trusted users log in without their token, like a profile whose login
	// IP ranges cover the caller.
	trusted bool
}

// fakeClient is a Client answering from an in-memory user table, for
// tests of the paths' logic that need no wire fidelity.
type fakeClient struct {
	mu    sync.Mutex
	cfg   sfapi.Config
	users map[string]*fakeUser
	calls map[string]int
	// soapUnavailableCode, when set, is what SOAP login() fails with.
	soapUnavailableCode string
	// failTransient makes every login fail as a network error.
	failTransient bool
	clientSecret  string
	jwtUser       string
	sessions      int
}

var _ Client = (*fakeClient)(nil)

const (
	fakeClientID     = "fake-client-id"
	fakeClientSecret = "fake-client-secret-value"
)

func newFakeClient() *fakeClient {
	return &fakeClient{
		users: map[string]*fakeUser{
			"admin@fake.test": {id: "005000000000001AAA", password: "Fake-Admin-Pass-1", token: "FAKEADMINTOKEN000000"},
			"etl@fake.test":   {id: "005000000000002AAA", password: "Fake-Etl-Pass-22", token: "FAKEETLTOKEN0000000"},
			"trust@fake.test": {id: "005000000000003AAA", password: "Fake-Trust-Pass-3", trusted: true},
		},
		calls:        map[string]int{},
		clientSecret: fakeClientSecret,
	}
}

// install makes b build this fake for every config.
func (f *fakeClient) install(b *backend) {
	b.newClient = func(cc sfapi.Config) (Client, error) {
		f.mu.Lock()
		f.cfg = cc
		f.mu.Unlock()
		return f, nil
	}
	b.resetClient()
}

func (f *fakeClient) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeClient) session(u *fakeUser) *sfapi.Session {
	f.sessions++
	return &sfapi.Session{
		AccessToken: "00Dfake!SESSION" + strings.Repeat("x", f.sessions),
		InstanceURL: "https://fake.my.salesforce.com",
		UserID:      u.id,
		OrgID:       "00D000000000001AAA",
	}
}

func (f *fakeClient) login(op, username, passwordWithToken string, soap bool) (*sfapi.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if f.failTransient {
		return nil, &sfapi.Error{Op: op, Message: "connection refused", Kind: sfapi.KindTransient}
	}
	if soap && f.soapUnavailableCode != "" {
		return nil, &sfapi.Error{Op: op, Code: f.soapUnavailableCode, Message: "login() is not available", HTTPStatus: 500, Kind: sfapi.KindPermission}
	}
	reject := func(code string) error {
		if !soap {
			return &sfapi.Error{Op: op, Code: "invalid_grant", Message: "authentication failure", HTTPStatus: 400, Kind: sfapi.KindCredentials}
		}
		return &sfapi.Error{Op: op, Code: code, Message: "Invalid username, password, security token; or user locked out.", HTTPStatus: 500, Kind: sfapi.KindCredentials}
	}
	u := f.users[username]
	if u == nil {
		return nil, reject("INVALID_LOGIN")
	}
	switch {
	case passwordWithToken == u.password+u.token:
	case u.trusted && passwordWithToken == u.password:
	case passwordWithToken == u.password:
		return nil, reject("LOGIN_MUST_USE_SECURITY_TOKEN")
	default:
		return nil, reject("INVALID_LOGIN")
	}
	return f.session(u), nil
}

func (f *fakeClient) SOAPLogin(ctx context.Context, username, passwordWithToken string) (*sfapi.Session, error) {
	return f.login("soap.login", username, passwordWithToken, true)
}

func (f *fakeClient) PasswordGrant(ctx context.Context, username, passwordWithToken string) (*sfapi.Session, error) {
	return f.login("oauth.password", username, passwordWithToken, false)
}

func (f *fakeClient) ClientCredentialsGrant(ctx context.Context, scopes []string) (*sfapi.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["oauth.client_credentials"]++
	if f.failTransient {
		return nil, &sfapi.Error{Op: "oauth token", Message: "connection refused", Kind: sfapi.KindTransient}
	}
	if f.cfg.LoginURL == "https://login.salesforce.com" {
		return nil, &sfapi.Error{Op: "oauth token", Code: "invalid_grant", Message: "request not supported on this domain", HTTPStatus: 400, Kind: sfapi.KindCredentials}
	}
	if f.cfg.ClientID != fakeClientID || f.cfg.ClientSecret != f.clientSecret {
		return nil, &sfapi.Error{Op: "oauth token", Code: "invalid_client", Message: "invalid client credentials", HTTPStatus: 400, Kind: sfapi.KindCredentials}
	}
	return f.session(f.users["admin@fake.test"]), nil
}

func (f *fakeClient) JWTBearerGrant(ctx context.Context, username string, key *rsa.PrivateKey, scopes []string) (*sfapi.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["oauth.jwt"]++
	u := f.users[username]
	if key == nil || u == nil || f.cfg.ClientID != fakeClientID {
		return nil, &sfapi.Error{Op: "oauth token", Code: "invalid_grant", Message: "user hasn't approved this consumer", HTTPStatus: 400, Kind: sfapi.KindCredentials}
	}
	return f.session(u), nil
}

var errFakeNotImplemented = errors.New("fake client: not implemented")

func (f *fakeClient) RefreshTokenGrant(ctx context.Context, refreshToken string, scopes []string) (*sfapi.Session, error) {
	return nil, errFakeNotImplemented
}
func (f *fakeClient) Revoke(ctx context.Context, token string) error { return errFakeNotImplemented }
func (f *fakeClient) Introspect(ctx context.Context, token string) (*sfapi.Introspection, error) {
	return nil, errFakeNotImplemented
}
func (f *fakeClient) UserInfo(ctx context.Context, s *sfapi.Session) (*sfapi.UserInfo, error) {
	return nil, errFakeNotImplemented
}
func (f *fakeClient) Logout(ctx context.Context, s *sfapi.Session) error {
	return errFakeNotImplemented
}
func (f *fakeClient) SetPassword(ctx context.Context, admin *sfapi.Session, userID, newPassword string) error {
	return errFakeNotImplemented
}
func (f *fakeClient) ChangeOwnPassword(ctx context.Context, own *sfapi.Session, oldPassword, newPassword string) error {
	return errFakeNotImplemented
}
func (f *fakeClient) LookupUser(ctx context.Context, admin *sfapi.Session, username string) (*sfapi.User, error) {
	return nil, errFakeNotImplemented
}
func (f *fakeClient) PasswordExpired(ctx context.Context, admin *sfapi.Session, userID string) (bool, error) {
	return false, errFakeNotImplemented
}
func (f *fakeClient) PasswordChangedAt(ctx context.Context, admin *sfapi.Session, userID string) (time.Time, error) {
	return time.Time{}, errFakeNotImplemented
}
func (f *fakeClient) LoginLocked(ctx context.Context, admin *sfapi.Session, userID string) (bool, string, error) {
	return false, "", errFakeNotImplemented
}
func (f *fakeClient) UnlockLogin(ctx context.Context, admin *sfapi.Session, userLoginID string) error {
	return errFakeNotImplemented
}
func (f *fakeClient) Query(ctx context.Context, s *sfapi.Session, soql string) (int, error) {
	return 0, errFakeNotImplemented
}

// LoginHistory: the fake org keeps no login history.
func (f *fakeClient) LoginHistory(ctx context.Context, s *sfapi.Session, userIDs []string, since time.Time, limit int) ([]sfapi.LoginRecord, bool, error) {
	return nil, false, nil
}

// UserIDs resolves the fake org's usernames.
func (f *fakeClient) UserIDs(ctx context.Context, s *sfapi.Session, usernames []string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := map[string]string{}
	for _, name := range usernames {
		if u := f.users[name]; u != nil {
			ids[name] = u.id
		}
	}
	return ids, nil
}

func (f *fakeClient) UsersAccess(ctx context.Context, admin *sfapi.Session, userIDs ...string) (map[string]*sfapi.UserAccess, error) {
	return nil, errFakeNotImplemented
}
func (f *fakeClient) UserSessions(ctx context.Context, admin *sfapi.Session, userID string) ([]sfapi.AuthSession, error) {
	return nil, errFakeNotImplemented
}
func (f *fakeClient) CurrentSessionIDs(ctx context.Context, s *sfapi.Session) ([]string, error) {
	return nil, errFakeNotImplemented
}
func (f *fakeClient) EndSession(ctx context.Context, admin *sfapi.Session, sessionID string) error {
	return errFakeNotImplemented
}
func (f *fakeClient) UserOAuthGrants(ctx context.Context, admin *sfapi.Session, userID string) ([]sfapi.OAuthGrant, error) {
	return nil, errFakeNotImplemented
}
