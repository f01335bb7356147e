package emulator

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSOAPLoginResultShape(t *testing.T) {
	s := NewTestServer(t, nil)
	status, body := soapLogin(t, s, "64.0", adminUser, adminPass+adminTok)
	if status != 200 {
		t.Fatalf("status %d: %s", status, faultCode(body))
	}
	// LoginResult elements in WSDL order.
	order := []string{"metadataServerUrl", "passwordExpired", "sandbox", "serverUrl", "sessionId", "userId", "userInfo"}
	last := -1
	for _, el := range order {
		i := strings.Index(body, "<"+el+">")
		if i < 0 || i < last {
			t.Fatalf("element %s missing or out of order", el)
		}
		last = i
	}
	org15 := id15(DemoOrgID)
	if got := tag(body, "serverUrl"); got != s.MyDomainURL()+"/services/Soap/u/64.0/"+org15 {
		t.Errorf("serverUrl = %q", got)
	}
	if got := tag(body, "metadataServerUrl"); got != s.MyDomainURL()+"/services/Soap/m/64.0/"+org15 {
		t.Errorf("metadataServerUrl = %q", got)
	}
	if sid := tag(body, "sessionId"); !strings.HasPrefix(sid, org15+"!") {
		t.Errorf("sessionId does not start with the 15-char org id")
	}
	if got := tag(body, "userId"); got != s.UserID(adminUser) || len(got) != 18 {
		t.Errorf("userId = %q", got)
	}
	if got := tag(body, "sessionSecondsValid"); got != "7200" {
		t.Errorf("sessionSecondsValid = %q", got)
	}
	if got := tag(body, "organizationId"); got != DemoOrgID {
		t.Errorf("organizationId = %q", got)
	}
	if tag(body, "passwordExpired") != "false" || tag(body, "userName") != adminUser {
		t.Errorf("unexpected userInfo: passwordExpired=%q userName=%q", tag(body, "passwordExpired"), tag(body, "userName"))
	}
}

func TestSOAPInvalidLoginFaultIsVerbatim(t *testing.T) {
	s := NewTestServer(t, nil)
	status, body := soapLogin(t, s, "64.0", adminUser, "wrong")
	want := `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`
	if status != 500 || body != want {
		t.Fatalf("status %d body:\n%s", status, body)
	}
}

func TestSecurityTokenRequiredFromUntrustedIP(t *testing.T) {
	s := NewTestServer(t, nil)
	_, body := soapLogin(t, s, "64.0", adminUser, adminPass)
	if got := faultCode(body); got != "LOGIN_MUST_USE_SECURITY_TOKEN" {
		t.Fatalf("password without token from 127.0.0.1: fault %q", got)
	}
	_, body = soapLogin(t, s, "64.0", adminUser, adminPass+"WRONGTOKEN000000000000000")
	if got := faultCode(body); got != "INVALID_LOGIN" {
		t.Fatalf("wrong token: fault %q", got)
	}
	mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	// Trusting the caller's network makes the token optional.
	s.SetOrg(func(o *Org) { o.TrustedIPRanges = []string{"127.0.0.1-127.0.0.9"} })
	mustSOAPLogin(t, s, adminUser, adminPass)
}

func TestProfileLoginIPRangesCoverCaller(t *testing.T) {
	s := NewTestServer(t, nil)
	mustSOAPLogin(t, s, trustUser, trustPass)
	// Password plus token also works inside the range.
	mustSOAPLogin(t, s, trustUser, trustPass+"TRUSTTOKEN000000000000000")
}

func TestProfileLoginIPRangesDenyOutside(t *testing.T) {
	s := NewTestServer(t, nil)
	s.SetOrg(func(o *Org) {
		o.profile(demoTrustedProfile).LoginIPRanges = []string{"10.0.0.0/8"}
		o.TrustedIPRanges = []string{"127.0.0.0/8"} // org trust does not override the profile
	})
	_, body := soapLogin(t, s, "64.0", trustUser, trustPass+"TRUSTTOKEN000000000000000")
	if got := faultCode(body); got != "INVALID_LOGIN" {
		t.Fatalf("login outside profile ranges: fault %q", got)
	}
	status, out := tokenRequest(t, s.LoginURL(), passwordForm(trustUser, trustPass+"TRUSTTOKEN000000000000000"))
	if status != 400 || out["error_description"] != "authentication failure" {
		t.Fatalf("password grant outside profile ranges: %d %v", status, out)
	}
}

func TestSOAPLoginRefusedFromV65(t *testing.T) {
	s := NewTestServer(t, nil)
	for _, v := range []string{"65.0", "66.0"} {
		status, body := soapLogin(t, s, v, adminUser, adminPass+adminTok)
		if status != 500 || faultCode(body) != "UNSUPPORTED_API_VERSION" {
			t.Errorf("v%s: status %d fault %q", v, status, faultCode(body))
		}
	}
	if status, body := soapLogin(t, s, "20.0", adminUser, adminPass+adminTok); status != 500 || faultCode(body) != "UNSUPPORTED_API_VERSION" {
		t.Errorf("retired v20.0: status %d fault %q", status, faultCode(body))
	}
	if s.Calls("soap.login") != 3 {
		t.Errorf("soap.login calls = %d, want 3", s.Calls("soap.login"))
	}
}

func TestSOAPLoginSwitchedOffPerOrg(t *testing.T) {
	s := NewTestServer(t, nil)
	s.SetOrg(func(o *Org) { o.SOAPLoginDisabled = true })
	status, body := soapLogin(t, s, "64.0", adminUser, adminPass+adminTok)
	if status != 500 || faultCode(body) == "" || sessionRe.MatchString(body) {
		t.Fatalf("disabled login(): status %d fault %q", status, faultCode(body))
	}
	// OAuth keeps working.
	mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
}

func TestSOAPAPIDisabledForProfile(t *testing.T) {
	s := NewTestServer(t, nil)
	s.SetUserState(integUser, func(u *User) { u.Profile = "Standard User" })
	_, body := soapLogin(t, s, "64.0", integUser, integPass+integTok)
	if got := faultCode(body); got != "API_DISABLED_FOR_ORG" || !strings.Contains(body, "sf:LoginFault") {
		t.Fatalf("fault %q", got)
	}
}

func TestSOAPSetPasswordNeedsPermission(t *testing.T) {
	s := NewTestServer(t, nil)
	sid := mustSOAPLogin(t, s, integUser, integPass+integTok)
	_, body := soapOp(t, s, "64.0", sid, setPasswordOp(s.UserID(adminUser), "Another-Pass-99"))
	if got := faultCode(body); got != "INSUFFICIENT_ACCESS" {
		t.Fatalf("fault %q", got)
	}
	if s.Password(adminUser) != adminPass {
		t.Fatal("password changed without permission")
	}
	// Unknown id: InvalidIdFault.
	adminSID := mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	_, body = soapOp(t, s, "64.0", adminSID, setPasswordOp("005000000000000", "Another-Pass-99"))
	if !strings.Contains(body, "sf:InvalidIdFault") {
		t.Fatalf("unknown user id: %s", faultCode(body))
	}
}

func TestSOAPSetOwnPasswordNeedsOrgSetting(t *testing.T) {
	s := NewTestServer(t, nil)
	s.SetOrg(func(o *Org) { o.PasswordPolicy.AllowSetPasswordSelf = false })
	sid := mustSOAPLogin(t, s, integUser, integPass+integTok)
	_, body := soapOp(t, s, "64.0", sid, setPasswordOp(s.UserID(integUser), "Integ-Pass-5678"))
	if got := faultCode(body); got != "INSUFFICIENT_ACCESS" {
		t.Fatalf("self setPassword without the org setting: fault %q", got)
	}
	status, body := soapOp(t, s, "64.0", sid, `<urn:changeOwnPassword><urn:oldPassword>`+integPass+`</urn:oldPassword><urn:newPassword>Integ-Pass-5678</urn:newPassword></urn:changeOwnPassword>`)
	if status != 200 || !strings.Contains(body, "changeOwnPasswordResponse") {
		t.Fatalf("changeOwnPassword: %d %s", status, faultCode(body))
	}
	if s.Password(integUser) != "Integ-Pass-5678" {
		t.Fatal("password not changed")
	}
}

func TestSOAPChangeOwnPassword(t *testing.T) {
	s := NewTestServer(t, nil)
	sid := mustSOAPLogin(t, s, integUser, integPass+integTok)
	change := func(version, old, new string) (int, string) {
		return soapOp(t, s, version, sid, `<changeOwnPassword xmlns="urn:partner.soap.sforce.com"><oldPassword>`+old+`</oldPassword><newPassword>`+new+`</newPassword></changeOwnPassword>`)
	}
	if _, body := change("39.0", integPass, "Integ-Pass-5678"); faultCode(body) != "" || !strings.Contains(body, "No operation available") {
		t.Fatalf("v39.0 has no changeOwnPassword: %s", body)
	}
	if _, body := change("64.0", "not-my-password1", "Integ-Pass-5678"); faultCode(body) != "INVALID_OLD_PASSWORD" || !strings.Contains(body, "sf:InvalidOldPasswordFault") {
		t.Fatalf("wrong old password: %q", faultCode(body))
	}
	if _, body := change("64.0", integPass, "short1"); faultCode(body) != "INVALID_NEW_PASSWORD" || !strings.Contains(body, "sf:InvalidNewPasswordFault") {
		t.Fatalf("short new password: %q", faultCode(body))
	}
	if status, body := change("64.0", integPass, "Integ-Pass-5678"); status != 200 {
		t.Fatalf("changeOwnPassword: %q", faultCode(body))
	}
}

func TestSOAPResetPassword(t *testing.T) {
	s := NewTestServer(t, nil)
	sid := mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	status, body := soapOp(t, s, "64.0", sid, `<urn:resetPassword><urn:userId>`+s.UserID(integUser)+`</urn:userId></urn:resetPassword>`)
	pw := tag(body, "password")
	if status != 200 || pw == "" || pw != s.Password(integUser) {
		t.Fatalf("resetPassword: %d %q", status, faultCode(body))
	}
	// The temporary password must be changed at the next login.
	_, body = soapLogin(t, s, "64.0", integUser, pw+s.LatestSecurityToken(integUser))
	if tag(body, "passwordExpired") != "true" {
		t.Fatalf("login after reset: passwordExpired=%q fault %q", tag(body, "passwordExpired"), faultCode(body))
	}
}

func TestSOAPLogout(t *testing.T) {
	s := NewTestServer(t, nil)
	sid := mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	if status, body := soapOp(t, s, "64.0", sid, `<urn:logout/>`); status != 200 || !strings.Contains(body, "logoutResponse") {
		t.Fatalf("logout: %d %s", status, faultCode(body))
	}
	if s.IsTokenActive(sid) {
		t.Fatal("session still active after logout")
	}
	if _, body := soapOp(t, s, "64.0", sid, `<urn:logout/>`); faultCode(body) != "INVALID_SESSION_ID" {
		t.Fatalf("second logout: %q", faultCode(body))
	}
}

func TestSessionExpiry(t *testing.T) {
	s := NewTestServer(t, nil)
	clock := newFakeClock(s)
	sid := mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	token := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	query := s.MyDomainURL() + "/services/data/v66.0/query?q=SELECT+Id+FROM+Account+LIMIT+1"

	// Activity within the timeout keeps the session alive.
	clock.Advance(90 * time.Minute)
	if resp, _ := restDo(t, "GET", query, token, ""); resp.StatusCode != 200 {
		t.Fatalf("query at 90 min: %d", resp.StatusCode)
	}
	clock.Advance(2*time.Hour + time.Second)
	resp, body := restDo(t, "GET", query, token, "")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Token" || restErrorCode(t, body) != "INVALID_SESSION_ID" {
		t.Fatalf("expired REST session: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	_, sbody := soapOp(t, s, "64.0", sid, setPasswordOp(s.UserID(integUser), "Another-Pass-99"))
	if faultCode(sbody) != "INVALID_SESSION_ID" || !strings.Contains(sbody, "sf:UnexpectedErrorFault") ||
		!strings.Contains(sbody, "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session") {
		t.Fatalf("expired SOAP session: %s", sbody)
	}
}

func TestExpiredPasswordFlow(t *testing.T) {
	s := NewTestServer(t, nil)
	s.SetUserState(integUser, func(u *User) { u.PasswordExpired = true })
	status, body := soapLogin(t, s, "64.0", integUser, integPass+integTok)
	if status != 200 || tag(body, "passwordExpired") != "true" {
		t.Fatalf("login: %d passwordExpired=%q", status, tag(body, "passwordExpired"))
	}
	sid := tag(body, "sessionId")
	// Anything but setPassword/changeOwnPassword is refused.
	_, body = soapOp(t, s, "64.0", sid, `<urn:resetPassword><urn:userId>`+s.UserID(integUser)+`</urn:userId></urn:resetPassword>`)
	if faultCode(body) != "INVALID_OPERATION_WITH_EXPIRED_PASSWORD" {
		t.Fatalf("resetPassword on an expired session: %q", faultCode(body))
	}
	resp, rbody := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/limits", sid, "")
	if resp.StatusCode == 200 || restErrorCode(t, rbody) != "INVALID_OPERATION_WITH_EXPIRED_PASSWORD" {
		t.Fatalf("REST on an expired session: %d", resp.StatusCode)
	}
	// setPassword on oneself works even where self-resets are disabled.
	s.SetOrg(func(o *Org) { o.PasswordPolicy.AllowSetPasswordSelf = false })
	if status, body := soapOp(t, s, "64.0", sid, setPasswordOp(s.UserID(integUser), "Integ-Pass-9999")); status != 200 {
		t.Fatalf("setPassword with expired password: %q", faultCode(body))
	}
	// The session is now a normal one.
	if resp, _ := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/limits", sid, ""); resp.StatusCode != 200 {
		t.Fatalf("REST after the change: %d", resp.StatusCode)
	}
	_, body = soapLogin(t, s, "64.0", integUser, "Integ-Pass-9999"+s.LatestSecurityToken(integUser))
	if tag(body, "passwordExpired") != "false" {
		t.Fatalf("relogin: passwordExpired=%q fault %q", tag(body, "passwordExpired"), faultCode(body))
	}
}

func TestPasswordExpiresAfterPolicyDays(t *testing.T) {
	s := NewTestServer(t, nil)
	clock := newFakeClock(s)
	s.SetOrg(func(o *Org) { o.PasswordPolicy.ExpiryDays = 90 })
	s.SetUserState(integUser, func(u *User) { u.PasswordChangedAt = clock.Now() })
	clock.Advance(91 * 24 * time.Hour)
	_, body := soapLogin(t, s, "64.0", integUser, integPass+integTok)
	if tag(body, "passwordExpired") != "true" {
		t.Fatalf("passwordExpired=%q fault %q", tag(body, "passwordExpired"), faultCode(body))
	}
}

func TestInactiveUserCannotLogIn(t *testing.T) {
	s := NewTestServer(t, nil)
	s.SetUserState(integUser, func(u *User) { u.IsActive = false })
	if _, body := soapLogin(t, s, "64.0", integUser, integPass+integTok); faultCode(body) != "INVALID_LOGIN" {
		t.Fatalf("SOAP: %q", faultCode(body))
	}
	if status, out := tokenRequest(t, s.LoginURL(), passwordForm(integUser, integPass+integTok)); status != 400 || out["error"] != "inactive_user" {
		t.Fatalf("OAuth: %d %v", status, out)
	}
}

func TestSOAPIgnoresPrefixesAndSOAPAction(t *testing.T) {
	s := NewTestServer(t, nil)
	body := `<?xml version="1.0"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header><CallOptions xmlns="urn:partner.soap.sforce.com"><client>x</client></CallOptions></env:Header><env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>` +
		adminUser + `</n1:username><n1:password>` + adminPass + adminTok + `</n1:password></n1:login></env:Body></env:Envelope>`
	status, resp := post(t, s.LoginURL()+"/services/Soap/u/58.0", "text/xml", body)
	if status != 200 || !regexp.MustCompile(`<sessionId>00D`).MatchString(resp) {
		t.Fatalf("status %d fault %q", status, faultCode(resp))
	}
}
