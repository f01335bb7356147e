package emulator

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func restPasswordURL(s *Server, userID string) string {
	return s.MyDomainURL() + "/services/data/v66.0/sobjects/User/" + userID + "/password"
}

// Every way of changing a password emails a new security token and the
// old token stops working.
func TestEveryPasswordChangeIssuesNewToken(t *testing.T) {
	changes := []struct {
		name   string
		change func(t *testing.T, s *Server) string // returns the new password
	}{
		{"soap setPassword", func(t *testing.T, s *Server) string {
			sid := mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
			if status, body := soapOp(t, s, "64.0", sid, setPasswordOp(s.UserID(integUser), "Rotated-Pass-1")); status != 200 {
				t.Fatalf("setPassword: %s", faultCode(body))
			}
			return "Rotated-Pass-1"
		}},
		{"soap changeOwnPassword", func(t *testing.T, s *Server) string {
			sid := mustSOAPLogin(t, s, integUser, integPass+integTok)
			op := `<urn:changeOwnPassword><urn:oldPassword>` + integPass + `</urn:oldPassword><urn:newPassword>Rotated-Pass-2</urn:newPassword></urn:changeOwnPassword>`
			if status, body := soapOp(t, s, "64.0", sid, op); status != 200 {
				t.Fatalf("changeOwnPassword: %s", faultCode(body))
			}
			return "Rotated-Pass-2"
		}},
		{"soap resetPassword", func(t *testing.T, s *Server) string {
			sid := mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
			status, body := soapOp(t, s, "64.0", sid, `<urn:resetPassword><urn:userId>`+s.UserID(integUser)+`</urn:userId></urn:resetPassword>`)
			if status != 200 {
				t.Fatalf("resetPassword: %s", faultCode(body))
			}
			return tag(body, "password")
		}},
		{"rest POST", func(t *testing.T, s *Server) string {
			tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
			resp, body := restDo(t, "POST", restPasswordURL(s, s.UserID(integUser)), tok, `{"NewPassword":"Rotated-Pass-3"}`)
			if resp.StatusCode != 204 || body != "" {
				t.Fatalf("POST: %d %s", resp.StatusCode, body)
			}
			return "Rotated-Pass-3"
		}},
		{"rest DELETE", func(t *testing.T, s *Server) string {
			tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
			resp, body := restDo(t, "DELETE", restPasswordURL(s, s.UserID(integUser)), tok, "")
			if resp.StatusCode != 200 || !strings.Contains(body, `"NewPassword"`) {
				t.Fatalf("DELETE: %d", resp.StatusCode)
			}
			return s.Password(integUser)
		}},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			s := NewTestServer(t, nil)
			newPw := c.change(t, s)
			if s.Password(integUser) != newPw || newPw == integPass {
				t.Fatalf("password not changed")
			}
			mail := s.Mailbox(integUser)
			newTok := s.LatestSecurityToken(integUser)
			if len(mail) == 0 || newTok == "" || newTok == integTok || mail[len(mail)-1].To != integUser {
				t.Fatalf("no new token emailed: %d mails", len(mail))
			}
			if s.LatestSecurityToken(adminUser) != "" {
				t.Error("the admin got a token email for someone else's change")
			}
			if _, body := soapLogin(t, s, "64.0", integUser, newPw+integTok); faultCode(body) != "INVALID_LOGIN" {
				t.Errorf("old token still accepted: %q", faultCode(body))
			}
			if status, body := soapLogin(t, s, "64.0", integUser, newPw+newTok); status != 200 {
				t.Errorf("new token refused: %q", faultCode(body))
			}
		})
	}
}

func TestAPIOnlyUsersGetNoTokenEmail(t *testing.T) {
	s := NewTestServer(t, nil)
	s.SetOrg(func(o *Org) { o.profile(demoIntegProfile).APIOnly = true })
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	if resp, _ := restDo(t, "POST", restPasswordURL(s, s.UserID(integUser)), tok, `{"NewPassword":"Rotated-Pass-3"}`); resp.StatusCode != 204 {
		t.Fatal(resp.StatusCode)
	}
	if s.LatestSecurityToken(integUser) != "" {
		t.Fatal("API-only user received a token email")
	}
	if _, body := soapLogin(t, s, "64.0", integUser, "Rotated-Pass-3"+integTok); faultCode(body) != "INVALID_LOGIN" {
		t.Fatal("old token still valid")
	}
}

func TestPasswordPolicyRejections(t *testing.T) {
	s := NewTestServer(t, nil)
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	set := func(pw string) (int, string) {
		resp, body := restDo(t, "POST", restPasswordURL(s, s.UserID(integUser)), tok, `{"NewPassword":"`+pw+`"}`)
		return resp.StatusCode, body
	}
	cases := []struct {
		complexity int
		pw, msg    string
	}{
		{1, "Short1", "at least 8 characters"},
		{1, "lettersonly", "mix of letters and numbers"},
		{2, "letters123", "special"},
		{3, "lowercase123", "uppercase"},
		{4, "Upper-lower1X", ""}, // valid at level 4
		{4, "UpperLower12", "special"},
	}
	for _, c := range cases {
		s.SetOrg(func(o *Org) { o.PasswordPolicy.Complexity = c.complexity })
		status, body := set(c.pw)
		if c.msg == "" {
			if status != 204 {
				t.Errorf("complexity %d %q refused: %s", c.complexity, c.pw, body)
			}
			continue
		}
		if status != 400 || restErrorCode(t, body) != "INVALID_NEW_PASSWORD" || !strings.Contains(body, c.msg) {
			t.Errorf("complexity %d %q: %d %s", c.complexity, c.pw, status, body)
		}
	}
	// History: the last 3 passwords (the current one included) are remembered.
	s.SetOrg(func(o *Org) { o.PasswordPolicy.Complexity = 1 })
	for _, pw := range []string{"History-1", "History-2", "History-3"} {
		if status, body := set(pw); status != 204 {
			t.Fatalf("%s: %s", pw, body)
		}
	}
	for _, pw := range []string{"History-3", "History-2", "History-1"} {
		if status, body := set(pw); status != 400 || !strings.Contains(body, "cannot reuse") {
			t.Errorf("reuse of %s: %d %s", pw, status, body)
		}
	}
	if status, body := set("History-4"); status != 204 {
		t.Fatal(body)
	}
	if status, body := set("History-1"); status != 204 {
		t.Errorf("History-1 is now 4 passwords back and may be reused: %s", body)
	}
	// SOAP reports the same rule as an InvalidNewPasswordFault.
	sid := mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	_, body := soapOp(t, s, "64.0", sid, setPasswordOp(s.UserID(integUser), "nodigits"))
	if faultCode(body) != "INVALID_NEW_PASSWORD" || !strings.Contains(body, "sf:InvalidNewPasswordFault") || !strings.Contains(body, "INVALID_NEW_PASSWORD: Your password must have a mix of letters and numbers.") {
		t.Errorf("SOAP: %s", body)
	}
}

func TestMinimumPasswordLifetime(t *testing.T) {
	s := NewTestServer(t, nil)
	clock := newFakeClock(s)
	s.SetOrg(func(o *Org) { o.PasswordPolicy.MinimumLifetime = true })
	s.SetUserState(integUser, func(u *User) { u.PasswordChangedAt = clock.Now() })
	sid := mustSOAPLogin(t, s, integUser, integPass+integTok)
	change := func(old, new string) string {
		_, body := soapOp(t, s, "64.0", sid, `<urn:changeOwnPassword><urn:oldPassword>`+old+`</urn:oldPassword><urn:newPassword>`+new+`</urn:newPassword></urn:changeOwnPassword>`)
		return faultCode(body)
	}
	if got := change(integPass, "Integ-Pass-2"); got != "INVALID_NEW_PASSWORD" {
		t.Fatalf("second change within a day: %q", got)
	}
	// An admin is not bound by the lifetime.
	admin := mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	if _, body := soapOp(t, s, "64.0", admin, setPasswordOp(s.UserID(integUser), "Integ-Pass-3")); faultCode(body) != "" {
		t.Fatalf("admin setPassword: %q", faultCode(body))
	}
	clock.Advance(25 * time.Hour)
	sid = mustSOAPLogin(t, s, integUser, "Integ-Pass-3"+s.LatestSecurityToken(integUser))
	if got := change("Integ-Pass-3", "Integ-Pass-4"); got != "" {
		t.Fatalf("change after a day: %q", got)
	}
}

func TestLockoutAndUnlockByAdmin(t *testing.T) {
	s := NewTestServer(t, nil)
	s.SetOrg(func(o *Org) { o.PasswordPolicy.MaxLoginAttempts = 3 })
	for i := 0; i < 3; i++ {
		soapLogin(t, s, "64.0", integUser, "wrong-password")
	}
	// Even the right password is refused while locked.
	if _, body := soapLogin(t, s, "64.0", integUser, integPass+integTok); faultCode(body) != "INVALID_LOGIN" {
		t.Fatalf("locked user logged in: %q", faultCode(body))
	}
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	q := s.MyDomainURL() + "/services/data/v66.0/query?q=" + url.QueryEscape("SELECT Id, IsPasswordLocked FROM UserLogin WHERE UserId = '"+s.UserID(integUser)+"'")
	resp, body := restDo(t, "GET", q, tok, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"IsPasswordLocked":true`) || !strings.Contains(body, `"totalSize":1`) {
		t.Fatalf("UserLogin query: %d %s", resp.StatusCode, body)
	}
	loginID := regexpFind(body, `"Id":"(060\w+)"`)
	// Only an admin may unlock.
	integTokAccess := mustPasswordGrant(t, s, trustUser, trustPass)
	if resp, body := restDo(t, "PATCH", s.MyDomainURL()+"/services/data/v66.0/sobjects/UserLogin/"+loginID, integTokAccess, `{"IsPasswordLocked":false}`); resp.StatusCode != 403 || restErrorCode(t, body) != "INSUFFICIENT_ACCESS" {
		t.Fatalf("non-admin unlock: %d %s", resp.StatusCode, body)
	}
	if resp, body := restDo(t, "PATCH", s.MyDomainURL()+"/services/data/v66.0/sobjects/UserLogin/"+loginID, tok, `{"IsPasswordLocked":false}`); resp.StatusCode != 204 {
		t.Fatalf("admin unlock: %d %s", resp.StatusCode, body)
	}
	mustSOAPLogin(t, s, integUser, integPass+integTok)
}

func TestLockoutExpiresAfterInterval(t *testing.T) {
	s := NewTestServer(t, nil)
	clock := newFakeClock(s)
	for i := 0; i < 10; i++ { // demo policy: 10 attempts, 15 minutes
		tokenRequest(t, s.LoginURL(), passwordForm(integUser, "wrong"))
	}
	if status, _ := tokenRequest(t, s.LoginURL(), passwordForm(integUser, integPass+integTok)); status != 400 {
		t.Fatal("not locked after 10 failures")
	}
	clock.Advance(14 * time.Minute)
	if _, body := soapLogin(t, s, "64.0", integUser, integPass+integTok); faultCode(body) != "INVALID_LOGIN" {
		t.Fatal("unlocked before the interval")
	}
	clock.Advance(time.Minute)
	mustSOAPLogin(t, s, integUser, integPass+integTok)
}

func TestLoginRateLimit(t *testing.T) {
	seed := DefaultSeed()
	seed.Org.LoginRateLimitPerHour = 3
	s := NewTestServer(t, seed)
	clock := newFakeClock(s)
	for i := 0; i < 3; i++ {
		mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	}
	if _, body := soapLogin(t, s, "64.0", adminUser, adminPass+adminTok); faultCode(body) != "INVALID_LOGIN" {
		t.Fatalf("4th SOAP login in the hour: %q", faultCode(body))
	}
	if status, out := tokenRequest(t, s.LoginURL(), passwordForm(adminUser, adminPass+adminTok)); status != 400 || out["error"] != "rate_limit_exceeded" {
		t.Fatalf("OAuth over the limit: %d %v", status, out)
	}
	// Other users are not affected; the window rolls.
	mustSOAPLogin(t, s, integUser, integPass+integTok)
	clock.Advance(time.Hour)
	mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
}

func TestSetUserStateLockStartsInterval(t *testing.T) {
	s := NewTestServer(t, nil)
	clock := newFakeClock(s)
	s.SetUserState(integUser, func(u *User) { u.IsPasswordLocked = true })
	if _, body := soapLogin(t, s, "64.0", integUser, integPass+integTok); faultCode(body) != "INVALID_LOGIN" {
		t.Fatal("locked user logged in")
	}
	clock.Advance(15 * time.Minute)
	mustSOAPLogin(t, s, integUser, integPass+integTok)
	// With a lockout interval of 0, only an admin unlock helps.
	s.SetOrg(func(o *Org) { o.PasswordPolicy.LockoutIntervalMinutes = 0 })
	s.SetUserState(integUser, func(u *User) { u.IsPasswordLocked = true })
	clock.Advance(24 * time.Hour)
	if _, body := soapLogin(t, s, "64.0", integUser, integPass+integTok); faultCode(body) != "INVALID_LOGIN" {
		t.Fatal("lock without interval expired by itself")
	}
	s.SetUserState(integUser, func(u *User) { u.IsPasswordLocked = false })
	mustSOAPLogin(t, s, integUser, integPass+integTok)
}

func TestLoginHistoryExplainsFailures(t *testing.T) {
	seed := DefaultSeed()
	seed.Org.LoginRateLimitPerHour = 7
	seed.Org.PasswordPolicy.MaxLoginAttempts = 3
	seed.LoginHistory = nil // only the logins this test makes
	s := NewTestServer(t, seed)
	soapLogin(t, s, "64.0", integUser, integPass)                   // no token
	soapLogin(t, s, "64.0", integUser, "wrong")                     // failure 1
	mustPasswordGrant(t, s, integUser, integPass+integTok)          // success resets the count
	soapLogin(t, s, "64.0", integUser, "wrong")                     // failure 1
	tokenRequest(t, s.LoginURL(), passwordForm(integUser, "wrong")) // failure 2
	soapLogin(t, s, "64.0", integUser, "wrong")                     // failure 3: locked
	soapLogin(t, s, "64.0", integUser, integPass+integTok)          // refused while locked
	soapLogin(t, s, "64.0", integUser, integPass+integTok)          // 8th login in the hour
	var got []string
	for _, a := range s.LoginHistory(integUser) {
		if a.Username != integUser || a.SourceIP != "127.0.0.1" {
			t.Errorf("row %+v", a)
		}
		got = append(got, a.Flow+": "+a.Status)
	}
	want := []string{
		"SOAP login(): Failed: API security token required",
		"SOAP login(): Invalid Password",
		"OAuth password: Success",
		"SOAP login(): Invalid Password",
		"OAuth password: Invalid Password",
		"SOAP login(): Invalid Password",
		"SOAP login(): Password Lockout",
		"SOAP login(): Login Rate Exceeded",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("history:\n%s", strings.Join(got, "\n"))
	}
	if len(s.LoginHistory(adminUser)) != 0 {
		t.Error("admin has history")
	}
}
