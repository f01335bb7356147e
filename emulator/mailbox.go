package emulator

import (
	"strings"
	"time"
)

// Email is a message the org "sent" to a user. Only tests can read it,
// which is the point: Salesforce delivers new security tokens by email only.
type Email struct {
	To            string
	Subject       string
	SecurityToken string // set on a security token email
	Password      string // set on a password reset email (temporary password)
	At            time.Time
}

// Mailbox returns a copy of the emails sent to username, oldest first.
func (s *Server) Mailbox(username string) []Email {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Email(nil), s.mail[strings.ToLower(username)]...)
}

// LatestSecurityToken returns the newest security token emailed to
// username, or "" if none was sent.
func (s *Server) LatestSecurityToken(username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	box := s.mail[strings.ToLower(username)]
	for i := len(box) - 1; i >= 0; i-- {
		if box[i].SecurityToken != "" {
			return box[i].SecurityToken
		}
	}
	return ""
}

// sendMail appends to the user's mailbox. Caller holds s.mu.
func (s *Server) sendMail(u *User, e Email) {
	e.To = u.Email
	if e.To == "" {
		e.To = u.Username
	}
	e.At = s.clock()
	key := strings.ToLower(u.Username)
	s.mail[key] = append(s.mail[key], e)
}

// resetSecurityToken gives u a new token and emails it. Caller holds s.mu.
func (s *Server) resetSecurityToken(u *User) {
	u.SecurityToken = randomString(25)
	// [3p] API Only users don't receive the security token email; the
	// token still changes, so such a user can only log in from trusted
	// ranges afterwards (or through OAuth flows that need no token).
	if p := s.org.profile(u.Profile); p != nil && p.APIOnly {
		return
	}
	s.sendMail(u, Email{Subject: "Your new Salesforce security token", SecurityToken: u.SecurityToken})
}
