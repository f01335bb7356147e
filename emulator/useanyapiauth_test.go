package emulator

import (
	"strings"
	"testing"
)

func TestSOAPLoginNeedsUseAnyAPIAuthWhenEnforced(t *testing.T) {
	s := NewTestServer(t, nil)
	// Not enforced (the demo org): a profile without it still logs in.
	s.SetOrg(func(o *Org) { o.profile(demoIntegProfile).UseAnyAPIAuth = false })
	mustSOAPLogin(t, s, integUser, integPass+integTok)

	s.SetOrg(func(o *Org) { o.EnforceUseAnyAPIAuth = true })
	// Wrong credentials are still just INVALID_LOGIN: the permission is
	// checked after authentication.
	if _, body := soapLogin(t, s, "64.0", integUser, "wrong"); faultCode(body) != "INVALID_LOGIN" {
		t.Fatalf("wrong password: %q", faultCode(body))
	}
	status, body := soapLogin(t, s, "64.0", integUser, integPass+integTok)
	if status != 500 || faultCode(body) != "INSUFFICIENT_ACCESS" {
		t.Fatalf("status %d fault %q", status, faultCode(body))
	}
	if !strings.Contains(body, "<faultcode>sf:INSUFFICIENT_ACCESS</faultcode>") || !strings.Contains(body, "Use Any API Auth") {
		t.Fatalf("fault does not name the permission: %s", body)
	}
	if strings.Contains(body, "sessionId") || strings.Contains(body, integPass) {
		t.Fatal("refused login leaked a session or the password")
	}
	hist := s.LoginHistory(integUser)
	if last := hist[len(hist)-1]; strings.HasPrefix(last.Status, "Success") {
		t.Fatalf("login history records %q", last.Status)
	}
	// Profiles that have it (the demo admin) are unaffected.
	mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	// The OAuth flows do not need it.
	mustPasswordGrant(t, s, integUser, integPass+integTok)
}
