package salesforce

import (
	"context"
	"crypto/rsa"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// fuzzOrg: the Salesforce org the path fuzzer's mount talks to, a Client
// that accepts the fuzz mount's users and counts every login, so a fuzzed
// request that logs in where it should not is seen.

// fuzzOrg is the fake org with every Client call answered as a healthy
// org would, so that no 5xx can be blamed on Salesforce.
type fuzzOrg struct {
	*fakeClient
	// logins counts the logins the org saw, rejected those it refused.
	logins, rejected *atomic.Int32
}

func newFuzzOrg() fuzzOrg {
	f := newFakeClient()
	f.users[fuzzNestedUser] = &fakeUser{id: "005000000000004AAA", password: fuzzNestedPassword, token: fuzzNestedToken}
	return fuzzOrg{fakeClient: f, logins: new(atomic.Int32), rejected: new(atomic.Int32)}
}

func (o fuzzOrg) count(s *sfapi.Session, err error) (*sfapi.Session, error) {
	o.logins.Add(1)
	if sfapi.IsCredentialError(err) {
		o.rejected.Add(1)
	}
	return s, err
}

func (o fuzzOrg) SOAPLogin(ctx context.Context, username, passwordWithToken string) (*sfapi.Session, error) {
	return o.count(o.fakeClient.SOAPLogin(ctx, username, passwordWithToken))
}

func (o fuzzOrg) PasswordGrant(ctx context.Context, username, passwordWithToken string) (*sfapi.Session, error) {
	return o.count(o.fakeClient.PasswordGrant(ctx, username, passwordWithToken))
}

func (o fuzzOrg) ClientCredentialsGrant(ctx context.Context, scopes []string) (*sfapi.Session, error) {
	return o.count(o.fakeClient.ClientCredentialsGrant(ctx, scopes))
}

func (o fuzzOrg) JWTBearerGrant(ctx context.Context, username string, key *rsa.PrivateKey, scopes []string) (*sfapi.Session, error) {
	return o.count(o.fakeClient.JWTBearerGrant(ctx, username, key, scopes))
}

func (o fuzzOrg) install(b *backend) {
	b.newClient = func(cc sfapi.Config) (Client, error) {
		o.mu.Lock()
		o.cfg = cc
		o.mu.Unlock()
		return o, nil
	}
	b.resetClient()
}

func (o fuzzOrg) userByID(id string) *fakeUser {
	for _, u := range o.users {
		if u.id == id {
			return u
		}
	}
	return nil
}

func (o fuzzOrg) RefreshTokenGrant(ctx context.Context, refreshToken string, scopes []string) (*sfapi.Session, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if refreshToken != fuzzRefreshToken {
		return o.count(nil, &sfapi.Error{Op: "oauth token (refresh_token)", Code: "invalid_grant", Message: "expired access/refresh token", HTTPStatus: 400, Kind: sfapi.KindCredentials})
	}
	return o.count(o.session(o.users["admin@fake.test"]), nil)
}

func (o fuzzOrg) Revoke(ctx context.Context, token string) error { return nil }

func (o fuzzOrg) Introspect(ctx context.Context, token string) (*sfapi.Introspection, error) {
	return &sfapi.Introspection{Active: true}, nil
}

func (o fuzzOrg) UserInfo(ctx context.Context, s *sfapi.Session) (*sfapi.UserInfo, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, u := range o.users {
		if u.id == s.UserID {
			return &sfapi.UserInfo{UserID: u.id, OrganizationID: s.OrgID, Username: name, Active: true}, nil
		}
	}
	return nil, &sfapi.Error{Op: "oauth userinfo", Code: "Bad_OAuth_Token", HTTPStatus: 403, Kind: sfapi.KindSession}
}

func (o fuzzOrg) Logout(ctx context.Context, s *sfapi.Session) error { return nil }

func (o fuzzOrg) SetPassword(ctx context.Context, admin *sfapi.Session, userID, newPassword string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	u := o.userByID(userID)
	if u == nil {
		return &sfapi.Error{Op: "set password", Code: "NOT_FOUND", HTTPStatus: 404, Kind: sfapi.KindNotFound}
	}
	u.password = newPassword
	return nil
}

func (o fuzzOrg) ChangeOwnPassword(ctx context.Context, own *sfapi.Session, oldPassword, newPassword string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	u := o.userByID(own.UserID)
	if u == nil || u.password != oldPassword {
		return &sfapi.Error{Op: "soap change own password", Code: "INVALID_OLD_PASSWORD", HTTPStatus: 500, Kind: sfapi.KindCredentials}
	}
	u.password = newPassword
	return nil
}

func (o fuzzOrg) LookupUser(ctx context.Context, admin *sfapi.Session, username string) (*sfapi.User, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if u := o.users[username]; u != nil {
		return &sfapi.User{ID: u.id, Username: username, IsActive: true}, nil
	}
	return nil, &sfapi.Error{Op: "lookup user", Code: "NOT_FOUND", Kind: sfapi.KindNotFound}
}

func (o fuzzOrg) PasswordExpired(ctx context.Context, admin *sfapi.Session, userID string) (bool, error) {
	return false, nil
}

func (o fuzzOrg) PasswordChangedAt(ctx context.Context, admin *sfapi.Session, userID string) (time.Time, error) {
	return time.Time{}, nil
}

func (o fuzzOrg) LoginLocked(ctx context.Context, admin *sfapi.Session, userID string) (bool, string, error) {
	return false, "060" + strings.TrimPrefix(userID, "005"), nil
}

func (o fuzzOrg) UnlockLogin(ctx context.Context, admin *sfapi.Session, userLoginID string) error {
	return nil
}

func (o fuzzOrg) Query(ctx context.Context, s *sfapi.Session, soql string) (int, error) {
	return 1, nil
}
