package salesforce

import (
	"strings"
	"time"
)

// Two integration users (blue/green): an account with
// rotation_strategy=dual_account names a second Salesforce user
// (Secondary). creds/<name> serves the active one; a rotation changes the
// inactive one's password, verifies it and then makes it active
// (rotation_dual.go), so the credential served before keeps working until
// the next rotation.
//
// The primary user's credential sits in the account's flat fields, as for
// every account; the secondary's in Secondary. Code that works on one user
// (the rotation pipeline, WAL settling, the hooks, the login budget) sees
// that user in the flat fields of a view: viewOf swaps the two users of a
// copy, and accountTxn.put swaps a view back before storing it. So one
// rotation pipeline serves both users, and the one writer stays the one
// writer.

// Rotation strategies.
const (
	strategySingle = "single"
	strategyDual   = "dual_account"
)

// Which user of a dual account, as reads and fields name them.
const (
	rolePrimary   = "primary"
	roleSecondary = "secondary"
)

// userCredential is the credential and per-user state of one Salesforce
// user; the secondary user of a dual account is stored as one.
type userCredential struct {
	Username              string    `json:"username"`
	Password              string    `json:"password"`
	SecurityToken         string    `json:"security_token,omitempty"`
	UserID                string    `json:"user_id,omitempty"`
	SecurityTokenStatus   string    `json:"security_token_status,omitempty"`
	PasswordChangedAt     time.Time `json:"password_changed_at,omitempty"`
	UnverifiedCandidateAt time.Time `json:"unverified_candidate_at,omitempty"`
	// EndSessionsPendingSince: the password changed and the user's other
	// sessions and OAuth grants are still to be ended (rotation_sessions.go).
	EndSessionsPendingSince time.Time `json:"end_sessions_pending_since,omitempty"`
	LegacyFailedLogins      int       `json:"failed_logins,omitempty"`
}

// accountDual is the dual-account state of an account, embedded flat.
type accountDual struct {
	RotationStrategy string          `json:"rotation_strategy,omitempty"`
	Secondary        *userCredential `json:"secondary,omitempty"`
	// ActiveUsername is the user creds/<name> serves, since ActiveSince.
	ActiveUsername string    `json:"active_username,omitempty"`
	ActiveSince    time.Time `json:"active_since,omitempty"`
	// SwitchPendingSince is set, in the same write as the inactive user's
	// new password, until that user is made active: a crash between the
	// two writes loses no switch.
	SwitchPendingSince time.Time `json:"switch_pending_since,omitempty"`
	// SwitchStatus says why a pending switch waits (switchAwaitingToken,
	// switchBlocked; "" while it is simply unfinished, e.g. after a crash),
	// SwitchReason in words (no secret).
	SwitchStatus string `json:"switch_status,omitempty"`
	SwitchReason string `json:"switch_reason,omitempty"`

	// secondaryView marks a view whose flat fields hold the secondary
	// user; endedNow is what this run's end_sessions ended, for its event.
	// Neither is stored.
	secondaryView bool
	endedNow      *endedReport
}

// Why a pending switch waits, as reads show it (switch_status).
const (
	switchAwaitingToken = "awaiting_security_token"
	switchBlocked       = "blocked"
)

// dual reports whether the account alternates two users.
func (a *account) dual() bool {
	return a.RotationStrategy == strategyDual && a.Secondary != nil
}

// credential is the user in the flat fields.
func (a *account) credential() userCredential {
	return userCredential{
		Username: a.Username, Password: a.Password, SecurityToken: a.SecurityToken, UserID: a.UserID,
		SecurityTokenStatus: a.SecurityTokenStatus, PasswordChangedAt: a.PasswordChangedAt,
		UnverifiedCandidateAt: a.UnverifiedCandidateAt, EndSessionsPendingSince: a.EndSessionsPendingSince,
		LegacyFailedLogins: a.LegacyFailedLogins,
	}
}

// setCredential puts c in the flat fields.
func (a *account) setCredential(c userCredential) {
	a.Username, a.Password, a.SecurityToken, a.UserID = c.Username, c.Password, c.SecurityToken, c.UserID
	a.SecurityTokenStatus, a.PasswordChangedAt = c.SecurityTokenStatus, c.PasswordChangedAt
	a.UnverifiedCandidateAt, a.EndSessionsPendingSince = c.UnverifiedCandidateAt, c.EndSessionsPendingSince
	a.LegacyFailedLogins = c.LegacyFailedLogins
}

// swapped returns a copy with the two users exchanged.
func (a *account) swapped() *account {
	cp := *a
	other := *a.Secondary
	flat := a.credential()
	cp.setCredential(other)
	cp.Secondary = &flat
	cp.secondaryView = !a.secondaryView
	return &cp
}

// viewOf returns the account with username's credential in the flat
// fields: a swapped copy for the secondary user of a dual account, else
// the account itself.
func (a *account) viewOf(username string) *account {
	if username == "" || !a.dual() || strings.EqualFold(a.Username, username) || !strings.EqualFold(a.Secondary.Username, username) {
		return a
	}
	return a.swapped()
}

// activeView is the account as creds/<name> serves it: the active user in
// the flat fields.
func (a *account) activeView() *account {
	return a.viewOf(a.ActiveUsername)
}

// stored is the account as storage holds it: a view swapped back.
func (a *account) stored() *account {
	if a.secondaryView && a.Secondary != nil {
		return a.swapped()
	}
	return a
}

// flatIsActive reports whether the user in the flat fields is the one
// creds/<name> serves (always, for a single-user account).
func (a *account) flatIsActive() bool {
	return !a.dual() || strings.EqualFold(a.Username, a.ActiveUsername)
}

// inactiveUsername is the user a dual account's next rotation changes.
func (a *account) inactiveUsername() string {
	if strings.EqualFold(a.Username, a.ActiveUsername) {
		return a.Secondary.Username
	}
	return a.Username
}

// roleOf names username's place in the account: primary or secondary.
func (a *account) roleOf(username string) string {
	if s := a.stored(); s.Secondary != nil && strings.EqualFold(s.Secondary.Username, username) && !strings.EqualFold(s.Username, username) {
		return roleSecondary
	}
	return rolePrimary
}

// usernameOf is the username of role (primary or secondary).
func (a *account) usernameOf(role string) string {
	s := a.stored()
	if role == roleSecondary {
		if s.Secondary == nil {
			return ""
		}
		return s.Secondary.Username
	}
	return s.Username
}

// switchStatus is what reads show of a pending switch; "" when none.
func (a *account) switchStatus() string {
	switch {
	case a.SwitchPendingSince.IsZero():
		return ""
	case a.SwitchStatus != "":
		return a.SwitchStatus
	}
	return "pending"
}

// holdsUsername reports whether the account stores username's credential,
// as its primary or its secondary user.
func (a *account) holdsUsername(username string) bool {
	return strings.EqualFold(a.Username, username) || a.Secondary != nil && strings.EqualFold(a.Secondary.Username, username)
}
