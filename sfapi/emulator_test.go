package sfapi

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// These tests run the client against the in-process org emulator with the
// demo seed (see the team contract for its users and connected app).

const (
	emuAdminPW    = "Admin-Pass-1234"
	emuAdminToken = "ADMINTOKEN0000000000000000"
	emuIntegPW    = "Integ-Pass-1234"
	emuIntegToken = "INTEGTOKEN00000000000000000"
	emuTrustPW    = "Trusted-Pass-1234"
	emuRefresh    = "5AepEmuRefreshToken000000000000"
)

func emuSeed() *emulator.Seed {
	seed := emulator.DefaultSeed()
	seed.RefreshTokens = append(seed.RefreshTokens, emulator.SeedRefreshToken{
		ClientID: emulator.DemoClientID, Username: emulator.DemoIntegUsername, Token: emuRefresh,
	})
	return seed
}

func newEmuClient(t *testing.T, loginURL string, mod ...func(*Config)) *Client {
	t.Helper()
	return newTestClient(t, loginURL, append([]func(*Config){func(cfg *Config) {
		cfg.ClientID = emulator.DemoClientID
		cfg.ClientSecret = emulator.DemoClientSecret
	}}, mod...)...)
}

func demoKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode([]byte(emulator.DemoPrivateKeyPEM))
	if block == nil {
		t.Fatal("DemoPrivateKeyPEM is not PEM")
	}
	k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("demo key: %v", err)
	}
	return k
}

func wantKindOnly(t *testing.T, err error, kind ErrorKind) {
	t.Helper()
	if e := checkClientErr(t, err); e.Kind != kind {
		t.Fatalf("got %v (kind %d), want kind %d", e, e.Kind, kind)
	}
}

// track registers a session's secrets for the suite's error scan.
func track(s *Session) *Session {
	if s != nil {
		addClientTestSecret(s.AccessToken)
		addClientTestSecret(s.RefreshToken)
	}
	return s
}

func mustSOAPLogin(t *testing.T, c *Client, username, pwWithToken string) *Session {
	t.Helper()
	s, err := c.SOAPLogin(context.Background(), username, pwWithToken)
	if err != nil {
		checkClientErr(t, err)
		t.Fatalf("SOAP login %s: %v", username, err)
	}
	return track(s)
}

func TestClientEmulatorSOAPLogin(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	ctx := context.Background()

	s := mustSOAPLogin(t, c, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)
	if s.InstanceURL != emu.MyDomainURL() {
		t.Errorf("InstanceURL %q, want the My Domain %q", s.InstanceURL, emu.MyDomainURL())
	}
	if s.UserID == "" || s.UserID[:15] != emu.UserID(emulator.DemoAdminUsername)[:15] || s.OrgID[:15] != emu.OrgID()[:15] {
		t.Errorf("session user %q org %q, want %q %q", s.UserID, s.OrgID, emu.UserID(emulator.DemoAdminUsername), emu.OrgID())
	}
	if s.SecondsValid != 7200 || s.PasswordExpired || !emu.IsTokenActive(s.AccessToken) {
		t.Errorf("session %+v", s)
	}
	if emu.Calls("soap.login") != 1 {
		t.Errorf("soap.login calls = %d", emu.Calls("soap.login"))
	}

	_, err := c.SOAPLogin(ctx, emulator.DemoAdminUsername, "wrong-pass-1"+emuAdminToken)
	wantKind(t, err, "INVALID_LOGIN", KindCredentials)
	_, err = c.SOAPLogin(ctx, emulator.DemoAdminUsername, emuAdminPW)
	wantKind(t, err, "LOGIN_MUST_USE_SECURITY_TOKEN", KindCredentials)

	// The trusted profile's login IP ranges cover 127.0.0.1: no token.
	mustSOAPLogin(t, c, emulator.DemoTrustUsername, emuTrustPW)

	// login() is gone from API v65.0 on.
	c65 := newEmuClient(t, emu.LoginURL(), func(cfg *Config) { cfg.SOAPAPIVersion = "65.0" })
	_, err = c65.SOAPLogin(ctx, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)
	wantKind(t, err, "UNSUPPORTED_API_VERSION", KindPermission)
}

func TestClientEmulatorEveryGrant(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	login := newEmuClient(t, emu.LoginURL())
	myDomain := newEmuClient(t, emu.MyDomainURL())
	ctx := context.Background()

	check := func(name string, s *Session, err error, wantUser string) {
		t.Helper()
		if err != nil {
			checkClientErr(t, err)
			t.Fatalf("%s: %v", name, err)
		}
		track(s)
		if s.AccessToken == "" || s.InstanceURL != emu.MyDomainURL() || s.UserID == "" || s.OrgID == "" {
			t.Errorf("%s: session %+v", name, s)
		}
		if s.UserID[:15] != emu.UserID(wantUser)[:15] {
			t.Errorf("%s: user %q, want %s", name, s.UserID, wantUser)
		}
		if !emu.IsTokenActive(s.AccessToken) {
			t.Errorf("%s: the emulator does not know the token", name)
		}
	}
	signed := func(name string, s *Session) {
		t.Helper()
		// The client verifies the signature against the client secret;
		// here we check it was there to verify.
		if s.Signature == "" || s.IssuedAt.IsZero() {
			t.Errorf("%s: signature %q issued_at %v missing", name, s.Signature, s.IssuedAt)
		}
	}

	s, err := login.PasswordGrant(ctx, emulator.DemoIntegUsername, emuIntegPW+emuIntegToken)
	check("password", s, err, emulator.DemoIntegUsername)
	signed("password", s)

	s, err = login.JWTBearerGrant(ctx, emulator.DemoIntegUsername, demoKey(t), nil)
	check("jwt_bearer", s, err, emulator.DemoIntegUsername)

	s, err = myDomain.ClientCredentialsGrant(ctx, nil)
	check("client_credentials", s, err, emulator.DemoAdminUsername)
	signed("client_credentials", s)
	_, err = login.ClientCredentialsGrant(ctx, nil)
	wantKind(t, err, "invalid_grant", KindPermission)

	s, err = login.RefreshTokenGrant(ctx, emuRefresh, nil)
	check("refresh_token", s, err, emulator.DemoIntegUsername)
	signed("refresh_token", s)
	if s.RefreshToken != emuRefresh {
		t.Errorf("refresh token not kept in the session")
	}
	_, err = login.RefreshTokenGrant(ctx, "5AepUnknownRefresh0000000", nil)
	wantKind(t, err, "invalid_grant", KindCredentials)

	// Refusals are credential errors.
	_, err = login.PasswordGrant(ctx, emulator.DemoIntegUsername, "wrong-pass-1"+emuIntegToken)
	wantKind(t, err, "invalid_grant", KindCredentials)
	wrongSecret := newEmuClient(t, emu.LoginURL(), func(cfg *Config) { cfg.ClientSecret = "not-the-secret" })
	_, err = wrongSecret.PasswordGrant(ctx, emulator.DemoIntegUsername, emuIntegPW+emuIntegToken)
	e := checkClientErr(t, err)
	if e.Kind != KindCredentials {
		t.Errorf("wrong client secret: %v (kind %d), want a credential error", e, e.Kind)
	}
	_, err = login.JWTBearerGrant(ctx, emulator.DemoIntegUsername, testRSAKey(t), nil)
	wantKind(t, err, "invalid_grant", KindCredentials)

	// A blocked username-password flow is not the credential's fault, but
	// it is never worth retrying either.
	emu.SetOrg(func(o *emulator.Org) { o.BlockUsernamePasswordFlow = true })
	_, err = login.PasswordGrant(ctx, emulator.DemoIntegUsername, emuIntegPW+emuIntegToken)
	e = checkClientErr(t, err)
	if e.Kind != KindCredentials && e.Kind != KindPermission {
		t.Errorf("blocked flow: %v (kind %d)", e, e.Kind)
	}
}

func TestClientEmulatorRevokeIntrospectUserInfo(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.MyDomainURL())
	ctx := context.Background()

	s, err := c.ClientCredentialsGrant(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	track(s)
	in, err := c.Introspect(ctx, s.AccessToken)
	if err != nil || !in.Active || in.ClientID != emulator.DemoClientID || in.Username != emulator.DemoAdminUsername {
		t.Fatalf("introspect active token: %+v %v", in, err)
	}
	ui, err := c.UserInfo(ctx, s)
	if err != nil || ui.Username != emulator.DemoAdminUsername || ui.UserID[:15] != s.UserID[:15] || !ui.Active {
		t.Fatalf("userinfo: %+v %v", ui, err)
	}

	if err := c.Revoke(ctx, s.AccessToken); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if emu.IsTokenActive(s.AccessToken) || emu.RevokedTokens() != 1 {
		t.Errorf("the emulator still holds the revoked token")
	}
	in, err = c.Introspect(ctx, s.AccessToken)
	if err != nil || in.Active {
		t.Errorf("introspect revoked token: %+v %v", in, err)
	}
	_, err = c.UserInfo(ctx, s)
	wantKind(t, err, "Bad_OAuth_Token", KindSession)
	_, err = c.Query(ctx, s, "SELECT Id FROM Account")
	wantKind(t, err, "INVALID_SESSION_ID", KindSession)
}

func TestClientEmulatorSetPasswordThenLogin(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	ctx := context.Background()
	admin := mustSOAPLogin(t, c, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)

	u, err := c.LookupUser(ctx, admin, emulator.DemoIntegUsername)
	if err != nil {
		t.Fatalf("LookupUser: %v", err)
	}
	if u.Username != emulator.DemoIntegUsername || !u.IsActive || u.ID[:15] != emu.UserID(emulator.DemoIntegUsername)[:15] {
		t.Fatalf("user %+v", u)
	}

	const newPW = "Rotated-Pass-5678"
	addClientTestSecret(newPW)
	if err := c.SetPassword(ctx, admin, u.ID, newPW); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	if emu.Password(emulator.DemoIntegUsername) != newPW {
		t.Fatal("the emulator did not take the new password")
	}
	newToken := emu.LatestSecurityToken(emulator.DemoIntegUsername)
	addClientTestSecret(newToken)
	if newToken == "" || newToken == emuIntegToken {
		t.Fatalf("no new security token was emailed")
	}
	// The old password and the old token are both dead.
	_, err = c.SOAPLogin(ctx, emulator.DemoIntegUsername, emuIntegPW+emuIntegToken)
	checkClientErr(t, err)
	_, err = c.SOAPLogin(ctx, emulator.DemoIntegUsername, newPW+emuIntegToken)
	wantKind(t, err, "INVALID_LOGIN", KindCredentials)
	mustSOAPLogin(t, c, emulator.DemoIntegUsername, newPW+newToken)

	// A password the policy refuses.
	wantKind(t, c.SetPassword(ctx, admin, u.ID, "short"), "INVALID_NEW_PASSWORD", KindPassword)

	expired, err := c.PasswordExpired(ctx, admin, u.ID)
	if err != nil || expired {
		t.Errorf("PasswordExpired = %v %v", expired, err)
	}
	emu.SetUserState(emulator.DemoIntegUsername, func(u *emulator.User) { u.PasswordExpired = true })
	expired, err = c.PasswordExpired(ctx, admin, u.ID)
	if err != nil || !expired {
		t.Errorf("PasswordExpired after expiry = %v %v", expired, err)
	}

	// A non-admin session may not set others' passwords.
	integ := mustSOAPLogin(t, c, emulator.DemoTrustUsername, emuTrustPW)
	err = c.SetPassword(ctx, integ, emu.UserID(emulator.DemoAdminUsername), "Hijack-Pass-0001")
	wantKindOnly(t, err, KindPermission)
}

func TestClientEmulatorChangeOwnPassword(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	ctx := context.Background()
	own := mustSOAPLogin(t, c, emulator.DemoIntegUsername, emuIntegPW+emuIntegToken)

	const newPW = "Changed-Pass-2468"
	addClientTestSecret(newPW)
	wantKind(t, c.ChangeOwnPassword(ctx, own, "not-the-old-1", newPW), "INVALID_OLD_PASSWORD", KindCredentials)
	wantKind(t, c.ChangeOwnPassword(ctx, own, emuIntegPW, "nodigits"), "INVALID_NEW_PASSWORD", KindPassword)
	if err := c.ChangeOwnPassword(ctx, own, emuIntegPW, newPW); err != nil {
		t.Fatalf("ChangeOwnPassword: %v", err)
	}
	newToken := emu.LatestSecurityToken(emulator.DemoIntegUsername)
	addClientTestSecret(newToken)
	mustSOAPLogin(t, c, emulator.DemoIntegUsername, newPW+newToken)
	if emu.Calls("soap.changeOwnPassword") != 3 {
		t.Errorf("soap.changeOwnPassword calls = %d", emu.Calls("soap.changeOwnPassword"))
	}
}

func TestClientEmulatorLookupUserAndQuery(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	ctx := context.Background()
	admin := mustSOAPLogin(t, c, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)

	_, err := c.LookupUser(ctx, admin, "nobody@acme.demo")
	wantKind(t, err, "NOT_FOUND", KindNotFound)
	// A quote in the username stays inside the literal.
	_, err = c.LookupUser(ctx, admin, "x' OR Username != 'y")
	wantKind(t, err, "NOT_FOUND", KindNotFound)

	n, err := c.Query(ctx, admin, "SELECT Id FROM Account")
	if err != nil || n != 1 {
		t.Errorf("Query Account = %d %v, want the seed's 1 record", n, err)
	}
	n, err = c.Query(ctx, admin, "SELECT Id, Username, Email, IsActive FROM User WHERE Username = 'trusted@acme.demo'")
	if err != nil || n != 1 {
		t.Errorf("Query User = %d %v", n, err)
	}
}

func TestClientEmulatorLockoutAndUnlock(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	ctx := context.Background()
	admin := mustSOAPLogin(t, c, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)
	userID := emu.UserID(emulator.DemoIntegUsername)

	locked, loginID, err := c.LoginLocked(ctx, admin, userID)
	if err != nil || locked || loginID == "" {
		t.Fatalf("LoginLocked before = %v %q %v", locked, loginID, err)
	}
	// The demo policy locks after 10 failed logins.
	for i := 0; i < 10; i++ {
		_, err := c.SOAPLogin(ctx, emulator.DemoIntegUsername, "wrong-pass-1"+emuIntegToken)
		checkClientErr(t, err)
	}
	locked, _, err = c.LoginLocked(ctx, admin, userID)
	if err != nil || !locked {
		t.Fatalf("LoginLocked after 10 failures = %v %v", locked, err)
	}
	_, err = c.SOAPLogin(ctx, emulator.DemoIntegUsername, emuIntegPW+emuIntegToken)
	if e := checkClientErr(t, err); e.Kind != KindCredentials {
		t.Errorf("locked login: %v, want a credential error", e)
	}

	if err := c.UnlockLogin(ctx, admin, loginID); err != nil {
		t.Fatalf("UnlockLogin: %v", err)
	}
	locked, _, err = c.LoginLocked(ctx, admin, userID)
	if err != nil || locked {
		t.Fatalf("LoginLocked after unlock = %v %v", locked, err)
	}
	mustSOAPLogin(t, c, emulator.DemoIntegUsername, emuIntegPW+emuIntegToken)
}

func TestClientEmulatorLogout(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	ctx := context.Background()
	s := mustSOAPLogin(t, c, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)
	if err := c.Logout(ctx, s); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if emu.IsTokenActive(s.AccessToken) {
		t.Error("session still active after logout")
	}
	_, err := c.LookupUser(ctx, s, emulator.DemoIntegUsername)
	wantKind(t, err, "INVALID_SESSION_ID", KindSession)
	wantKind(t, c.Logout(ctx, s), "INVALID_SESSION_ID", KindSession)
}

func TestClientEmulatorTransientFaults(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	myDomain := newEmuClient(t, emu.MyDomainURL())
	// Only calls meant to time out use the short timeout, so a busy
	// machine cannot make the others fail.
	short := newEmuClient(t, emu.LoginURL(), func(cfg *Config) { cfg.RequestTimeout = 300 * time.Millisecond })
	ctx := context.Background()
	admin := mustSOAPLogin(t, c, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)

	// HTTP 503 without a SOAP fault, once: transient, then the retry works.
	emu.InjectFault("soap.login", emulator.Fault{Status: 503, Body: "<html>Service Unavailable</html>", Times: 1})
	_, err := c.SOAPLogin(ctx, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)
	wantKind(t, err, "", KindTransient)
	mustSOAPLogin(t, c, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)

	emu.InjectFault("oauth.token", emulator.Fault{Status: 503, Times: 1})
	_, err = myDomain.ClientCredentialsGrant(ctx, nil)
	wantKind(t, err, "", KindTransient)

	// Dropped connections.
	emu.InjectFault("oauth.token", emulator.Fault{Drop: true, Times: 2})
	_, err = myDomain.ClientCredentialsGrant(ctx, nil)
	wantKind(t, err, "", KindTransient)
	_, err = c.JWTBearerGrant(ctx, emulator.DemoIntegUsername, demoKey(t), nil)
	wantKind(t, err, "", KindTransient)
	emu.InjectFault("rest.password", emulator.Fault{Drop: true, Times: 1})
	wantKind(t, c.SetPassword(ctx, admin, emu.UserID(emulator.DemoIntegUsername), "Never-Set-1234"), "", KindTransient)
	if emu.Password(emulator.DemoIntegUsername) != emuIntegPW {
		t.Error("a dropped set-password call changed the password")
	}

	// Slower than RequestTimeout.
	emu.InjectFault("rest.query", emulator.Fault{Latency: 3 * time.Second, Times: 1})
	_, err = short.Query(ctx, admin, "SELECT Id FROM Account")
	wantKind(t, err, "", KindTransient)
	emu.InjectFault("soap.login", emulator.Fault{Latency: 3 * time.Second, Times: 1})
	_, err = short.SOAPLogin(ctx, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)
	wantKind(t, err, "", KindTransient)
	emu.InjectFault("oauth.token", emulator.Fault{Latency: 3 * time.Second, Times: 1})
	_, err = short.JWTBearerGrant(ctx, emulator.DemoIntegUsername, demoKey(t), nil)
	wantKind(t, err, "", KindTransient)

	// Salesforce's request limit on REST is a 403 with a code.
	emu.InjectFault("rest.query", emulator.Fault{Status: 403, Times: 1,
		Body: `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`})
	_, err = c.Query(ctx, admin, "SELECT Id FROM Account")
	wantKind(t, err, "REQUEST_LIMIT_EXCEEDED", KindTransient)

	// The org works again once the faults are gone.
	emu.ClearFaults()
	if _, err := c.Query(ctx, admin, "SELECT Id FROM Account"); err != nil {
		t.Errorf("query after faults: %v", err)
	}
}

func TestClientEmulatorRefusals(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	ctx := context.Background()

	// An expired password still logs in, but the session may only set the
	// password; callers read Code to tell this from other refusals.
	emu.SetUserState(emulator.DemoIntegUsername, func(u *emulator.User) { u.PasswordExpired = true })
	s := mustSOAPLogin(t, c, emulator.DemoIntegUsername, emuIntegPW+emuIntegToken)
	if !s.PasswordExpired {
		t.Fatal("passwordExpired not reported")
	}
	_, err := c.Query(ctx, s, "SELECT Id FROM Account")
	wantKind(t, err, "INVALID_OPERATION_WITH_EXPIRED_PASSWORD", KindPermission)

	// An inactive user is a credential problem.
	emu.SetUserState(emulator.DemoTrustUsername, func(u *emulator.User) { u.IsActive = false })
	_, err = c.SOAPLogin(ctx, emulator.DemoTrustUsername, emuTrustPW)
	wantKindOnly(t, err, KindCredentials)

	// With SOAP login() switched off for the org, retrying cannot help.
	emu.SetOrg(func(o *emulator.Org) { o.SOAPLoginDisabled = true })
	_, err = c.SOAPLogin(ctx, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)
	if e := checkClientErr(t, err); e.Kind == KindTransient || e.Code == "" {
		t.Errorf("SOAP login disabled: %v (kind %d)", e, e.Kind)
	}
}

func TestClientEmulatorLoginRateLimitIsTransient(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	emu.SetOrg(func(o *emulator.Org) { o.LoginRateLimitPerHour = 1 })
	c := newEmuClient(t, emu.LoginURL())
	if _, err := c.PasswordGrant(context.Background(), emulator.DemoAdminUsername, emuAdminPW+emuAdminToken); err != nil {
		t.Fatalf("first login: %v", err)
	}
	_, err := c.PasswordGrant(context.Background(), emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)
	wantKind(t, err, "rate_limit_exceeded", KindTransient)
}

// LastPasswordChangeDate moves when the password is set, and only then:
// the engine compares two readings to settle a rotation without a login.
func TestClientEmulatorPasswordChangedAt(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	ctx := context.Background()
	admin := mustSOAPLogin(t, c, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)
	userID := emu.UserID(emulator.DemoIntegUsername)

	first, err := c.PasswordChangedAt(ctx, admin, userID)
	if err != nil || first.IsZero() {
		t.Fatalf("PasswordChangedAt = %v %v, want the seed's time", first, err)
	}
	if again, err := c.PasswordChangedAt(ctx, admin, userID); err != nil || !again.Equal(first) {
		t.Errorf("PasswordChangedAt moved without a change: %v -> %v (%v)", first, again, err)
	}
	time.Sleep(5 * time.Millisecond)
	if err := c.SetPassword(ctx, admin, userID, "Changed-Password-42!"); err != nil {
		t.Fatal(err)
	}
	if after, err := c.PasswordChangedAt(ctx, admin, userID); err != nil || !after.After(first) {
		t.Errorf("PasswordChangedAt after a change = %v (%v), want after %v", after, err, first)
	}
	_, err = c.PasswordChangedAt(ctx, admin, "not-an-id")
	if err == nil {
		t.Error("PasswordChangedAt accepted a malformed user id")
	}
}
