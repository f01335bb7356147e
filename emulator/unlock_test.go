package emulator

import (
	"strings"
	"testing"
)

// Only a password reset unlocks a locked-out user; setting or changing a
// password leaves the lockout in place (see applyPassword).
func TestOnlyPasswordResetUnlocks(t *testing.T) {
	changes := []struct {
		name    string
		unlocks bool
		change  func(t *testing.T, s *Server, integSession string) string // returns the new password
	}{
		{"soap setPassword", false, func(t *testing.T, s *Server, _ string) string {
			sid := mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
			if status, body := soapOp(t, s, "64.0", sid, setPasswordOp(s.UserID(integUser), "Rotated-Pass-1")); status != 200 {
				t.Fatalf("setPassword: %s", faultCode(body))
			}
			return "Rotated-Pass-1"
		}},
		{"soap changeOwnPassword", false, func(t *testing.T, s *Server, integSession string) string {
			op := `<urn:changeOwnPassword><urn:oldPassword>` + integPass + `</urn:oldPassword><urn:newPassword>Rotated-Pass-2</urn:newPassword></urn:changeOwnPassword>`
			if status, body := soapOp(t, s, "64.0", integSession, op); status != 200 {
				t.Fatalf("changeOwnPassword: %s", faultCode(body))
			}
			return "Rotated-Pass-2"
		}},
		{"rest POST", false, func(t *testing.T, s *Server, _ string) string {
			tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
			if resp, body := restDo(t, "POST", restPasswordURL(s, s.UserID(integUser)), tok, `{"NewPassword":"Rotated-Pass-3"}`); resp.StatusCode != 204 {
				t.Fatalf("POST: %d %s", resp.StatusCode, body)
			}
			return "Rotated-Pass-3"
		}},
		{"soap resetPassword", true, func(t *testing.T, s *Server, _ string) string {
			sid := mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
			status, body := soapOp(t, s, "64.0", sid, `<urn:resetPassword><urn:userId>`+s.UserID(integUser)+`</urn:userId></urn:resetPassword>`)
			if status != 200 {
				t.Fatalf("resetPassword: %s", faultCode(body))
			}
			return tag(body, "password")
		}},
		{"rest DELETE", true, func(t *testing.T, s *Server, _ string) string {
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
			// Locked until an admin unlocks, so no interval can end it.
			s.SetOrg(func(o *Org) { o.PasswordPolicy.LockoutIntervalMinutes = 0 })
			// A session from before the lockout, for changeOwnPassword.
			integSession := mustSOAPLogin(t, s, integUser, integPass+integTok)
			s.SetUserState(integUser, func(u *User) { u.IsPasswordLocked = true })

			newPw := c.change(t, s, integSession)
			if s.Password(integUser) != newPw || newPw == integPass {
				t.Fatal("password not changed")
			}
			var locked bool
			s.SetUserState(integUser, func(u *User) { locked = u.IsPasswordLocked })
			if locked == c.unlocks {
				t.Fatalf("IsPasswordLocked = %v after %s", locked, c.name)
			}
			// What a caller sees: the new password with the new token.
			_, body := soapLogin(t, s, "64.0", integUser, newPw+s.LatestSecurityToken(integUser))
			switch code := faultCode(body); {
			case c.unlocks && code != "":
				t.Fatalf("login after %s: %s", c.name, code)
			case !c.unlocks && code != "INVALID_LOGIN":
				t.Fatalf("locked user logged in after %s (fault %q)", c.name, code)
			}
		})
	}
}
