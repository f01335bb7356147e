package salesforce

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
)

const accountStoragePrefix = "accounts/"

// accountSegmentRegex is one '/'-separated part of an account name (\w
// in Go's regexp would do, but the explicit class reads better in
// path-help).
const accountSegmentRegex = `[0-9A-Za-z_.@-]+`

// accountNameRegex is an account name: one or more parts joined by '/'.
// Paths served below an account (accounts/<name>/diagnose, .../security-token)
// are wired before accounts/<name> in backend.go: the framework routes to
// the first pattern that matches.
const accountNameRegex = accountSegmentRegex + `(?:/` + accountSegmentRegex + `)*`

var accountNameMatcher = regexp.MustCompile("^" + accountNameRegex + "$")

// validateAccountName rejects names the pattern lets through but storage
// should not hold.
func validateAccountName(name string) error {
	if !accountNameMatcher.MatchString(name) {
		return fmt.Errorf("name %q is not a valid account name: use letters, digits and _ . @ -, with / between parts", name)
	}
	for _, part := range strings.Split(name, "/") {
		if strings.Trim(part, ".") == "" {
			return fmt.Errorf("name %q is not a valid account name: a part may not be . or ..", name)
		}
	}
	// Storage refuses any key holding "..", wherever it stands (a..b too).
	if strings.Contains(name, "..") {
		return fmt.Errorf("name %q is not a valid account name: it may not contain \"..\"", name)
	}
	return nil
}

// accountNameArg returns the account name a path captured, or a 400 that
// says why it cannot be one: the patterns let "." and ".." parts through,
// which storage refuses ("relative paths not supported", a 500).
func accountNameArg(d *framework.FieldData) (string, *logical.Response) {
	name := d.Get("name").(string)
	if err := validateAccountName(name); err != nil {
		return "", logical.ErrorResponse(err.Error())
	}
	return name, nil
}

// account is one Salesforce integration user as stored (seal-wrapped) under
// accounts/<name>. Password and SecurityToken never leave the engine except
// through creds/<name>.
type account struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	SecurityToken string `json:"security_token,omitempty"`
	Description   string `json:"description,omitempty"`
	// UserID is the 18-character Salesforce user id learned at validation.
	UserID string `json:"user_id,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	// LastUpdated is when the credential creds/<name> serves last changed:
	// its password, security_token or password_with_token (which leaves out
	// a stale token of a not_required account). Consumers compare it to
	// notice a new credential, so nothing else moves it: not description,
	// rotation settings, status or bookkeeping. Every writer that can change
	// the served credential sets it, through noteCredentialChange or, for a
	// rotation (always a new password), adoptPassword; today the account and
	// security-token writes, rotation and the roll-forward of an interrupted
	// rotation (rotation_settle.go), and the switch of a dual account,
	// whose servedCredential is the active user's (rotation_dual.go). A new
	// writer follows the same rule.
	LastUpdated time.Time `json:"last_updated"`

	accountRotation
	accountDual
}

// Rotation method values.
const (
	rotationMethodAdmin = "admin"
	rotationMethodSelf  = "self"
)

// Security token modes and states.
const (
	tokenModeNotRequired = "not_required"
	tokenModeRequired    = "required"
	tokenStatusCurrent   = "current"
	tokenStatusStale     = "stale"
)

// accountRotation is the rotation settings and state of an account. It is
// embedded so its JSON fields sit flat beside the credential.
type accountRotation struct {
	// Schedule: rotation_period or rotation_schedule (+ rotation_window),
	// disable_automated_rotation.
	automatedrotationutil.AutomatedRotationParams

	RotationMethod                  string `json:"rotation_method,omitempty"`
	PasswordPolicy                  string `json:"password_policy,omitempty"`
	SecurityTokenMode               string `json:"security_token_mode,omitempty"`
	SecurityTokenStatus             string `json:"security_token_status,omitempty"`
	AllowScheduledRotationWithToken bool   `json:"allow_scheduled_rotation_with_token,omitempty"`
	SkipImportRotation              bool   `json:"skip_import_rotation,omitempty"`

	// Hooks and notification.
	ValidationQuery     string `json:"validation_query,omitempty"`
	ValidationWebhook   string `json:"validation_webhook,omitempty"`
	PreRotationWebhook  string `json:"pre_rotation_webhook,omitempty"`
	UnlockAfterRotation bool   `json:"unlock_after_rotation,omitempty"`
	WebhookURL          string `json:"webhook_url,omitempty"`

	// Version counts the password changes Vault made; consumers compare it
	// to notice a rotation.
	Version           int       `json:"version"`
	LastVaultRotation time.Time `json:"last_vault_rotation,omitempty"`
	// NextVaultRotation is stored explicitly (zero: none scheduled) so that
	// a restart or reload never rotates anything that was not due.
	NextVaultRotation time.Time `json:"next_vault_rotation,omitempty"`
	// PasswordChangedAt is when Vault last changed the password in
	// Salesforce (for the org's minimum password lifetime).
	PasswordChangedAt time.Time `json:"password_changed_at,omitempty"`

	LastRotationError   string    `json:"last_rotation_error,omitempty"`
	LastRotationErrorAt time.Time `json:"last_rotation_error_at,omitempty"`
	ConsecutiveFailures int       `json:"consecutive_failures,omitempty"`
	// RotationBlocked is set by failures that retrying cannot fix (drift,
	// locked or inactive user, stale token for a self rotation): scheduled
	// attempts pause without touching Salesforce until an operator acts.
	RotationBlocked string `json:"rotation_blocked,omitempty"`
	// MissedRotationAt records a scheduled rotation whose window passed.
	MissedRotationAt time.Time `json:"missed_rotation_at,omitempty"`
	// WindowEnd is when the rotation window of a failing scheduled
	// rotation closes; retries stop there.
	WindowEnd time.Time `json:"window_end,omitempty"`
	// UnverifiedCandidateAt is set while an interrupted rotation's new
	// password (kept in its WAL) could not be checked because the user
	// could not log in (locked, inactive, unknown): Salesforce may have it.
	UnverifiedCandidateAt time.Time `json:"unverified_candidate_at,omitempty"`
	// LegacyFailedLogins is where versions before the login budget's own
	// entries kept the failed-login count. It is read once, to seed the
	// budget entry of the user (login_budget.go), and never written.
	LegacyFailedLogins int `json:"failed_logins,omitempty"`

	// EndSessionsOnRotation ends the user's other sessions and revokes its
	// OAuth grants after each rotation (rotation_sessions.go);
	// EndSessionsPendingSince is set with the new password until that is
	// done, so a crash does not skip it.
	EndSessionsOnRotation   bool         `json:"end_sessions_on_rotation,omitempty"`
	EndSessionsPendingSince time.Time    `json:"end_sessions_pending_since,omitempty"`
	LastSessionsEnded       *endedReport `json:"last_sessions_ended,omitempty"`

	// RotateAfterRead rotates the password Cooldown after the first
	// creds/<name> read since the last rotation (rotate_after_read.go);
	// ReadRotationAt is when that rotation is due (zero: not armed).
	RotateAfterRead bool          `json:"rotate_after_read,omitempty"`
	Cooldown        time.Duration `json:"cooldown,omitempty"`
	ReadRotationAt  time.Time     `json:"read_rotation_at,omitempty"`
}

// needsToken reports whether logins must carry the security token.
func (a *account) needsToken() bool {
	return a.SecurityTokenMode != tokenModeNotRequired
}

// method returns the rotation method, defaulting to admin.
func (a *account) method() string {
	if a.RotationMethod == "" {
		return rotationMethodAdmin
	}
	return a.RotationMethod
}

// scheduled reports whether the account has automated rotation: a period
// or schedule, or a rotation a read armed (rotate_after_read).
func (a *account) scheduled() bool {
	return !a.DisableAutomatedRotation && (a.HasNonzeroRotationValues() || !a.ReadRotationAt.IsZero())
}

// passwordWithToken is the exact string SOAP login() and the OAuth
// username-password flow expect. An account that logs in without a token
// (not_required) gets the password alone while its stored token is stale:
// password plus an invalidated token would not log in.
func (a *account) passwordWithToken() string {
	if !a.needsToken() && a.SecurityTokenStatus == tokenStatusStale {
		return a.Password
	}
	return a.Password + a.SecurityToken
}

// servedCredential is what creds/<name> serves as the credential: of a
// dual account, the active user's (of any view of it).
func (a *account) servedCredential() [4]string {
	s := a.activeView()
	return [4]string{s.Username, s.Password, s.SecurityToken, s.passwordWithToken()}
}

// noteCredentialChange sets after.LastUpdated to now when the credential
// it serves differs from before's (nil: a new account). Call it after the
// changes, before put.
func noteCredentialChange(before, after *account, now time.Time) {
	if before == nil || before.servedCredential() != after.servedCredential() {
		after.LastUpdated = now.UTC()
	}
}

// tokenUsable reports whether logins of acct can carry a valid token.
func (a *account) tokenUsable() bool {
	return a.needsToken() && a.SecurityToken != "" && a.SecurityTokenStatus != tokenStatusStale
}

// tokenStatusOf is the security_token_status reads show; "" for an
// account that neither has nor needs a token.
func tokenStatusOf(acct *account) string {
	if !acct.needsToken() && acct.SecurityToken == "" {
		return ""
	}
	if acct.SecurityTokenStatus == "" {
		return tokenStatusCurrent
	}
	return acct.SecurityTokenStatus
}

// rotationStatus sums up an account's rotation state for reads.
func rotationStatus(acct *account) string {
	switch {
	case acct.RotationBlocked != "":
		return "blocked"
	case acct.ConsecutiveFailures > 0:
		return "failing"
	case !acct.SwitchPendingSince.IsZero():
		return "awaiting_switch"
	case !acct.MissedRotationAt.IsZero():
		return "missed_window"
	case acct.scheduled():
		return "scheduled"
	case acct.RotateAfterRead && !acct.DisableAutomatedRotation:
		return "after_read"
	default:
		return "manual"
	}
}

// readAccount returns the stored account, or nil when none is stored.
func readAccount(ctx context.Context, s logical.Storage, name string) (*account, error) {
	entry, err := s.Get(ctx, accountStoragePrefix+name)
	if err != nil {
		return nil, fmt.Errorf("reading account %q: %w", name, err)
	}
	if entry == nil {
		return nil, nil
	}
	var a account
	if err := entry.DecodeJSON(&a); err != nil {
		return nil, fmt.Errorf("decoding account %q: %w", name, err)
	}
	return &a, nil
}

// clone returns a copy that shares nothing a holder may change: the
// decoded accounts in memory and a transaction's prev are clones.
func (a *account) clone() *account {
	cp := *a
	if a.Secondary != nil {
		sec := *a.Secondary
		cp.Secondary = &sec
	}
	if a.LastSessionsEnded != nil {
		ended := *a.LastSessionsEnded
		cp.LastSessionsEnded = &ended
	}
	// What this run ended is the run's, never stored.
	cp.endedNow = nil
	return &cp
}

// accountNotFound is the 404 every per-account path returns for a name
// that was never written.
func accountNotFound(name string) error {
	return logical.CodedError(http.StatusNotFound, fmt.Sprintf("account %q does not exist: write accounts/%s first", name, name))
}

// formatTime shows a stored time in reads: RFC 3339 in UTC, "" when unset.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// nextRotation computes the next scheduled rotation after from; zero when
// the account is not scheduled.
func nextRotation(acct *account, from time.Time) time.Time {
	if !acct.scheduled() {
		return time.Time{}
	}
	var next time.Time
	switch {
	case acct.RotationSchedule != "":
		sched, err := rotation.DefaultScheduler.Parse(acct.RotationSchedule)
		if err == nil {
			next = sched.Next(from).UTC()
		}
	case acct.RotationPeriod > 0:
		next = from.Add(acct.RotationPeriod).UTC()
	}
	// A rotation a read armed comes first if it is earlier.
	if at := acct.ReadRotationAt; !at.IsZero() && (next.IsZero() || at.Before(next)) {
		next = at.UTC()
	}
	return next
}

// passwordRoleBlocked says why the account of a password role must not be
// used to log in, with the fix, or "" when it may.
func passwordRoleBlocked(name string, acct *account) string {
	switch {
	case acct.needsToken() && acct.SecurityTokenStatus == tokenStatusStale:
		return fmt.Sprintf("account %q has a stale security token: its password was changed (rotated) and Salesforce emailed a new "+
			"security token to the user, so a login would fail and count toward the user's lockout; "+
			"write the new token to accounts/%s/security-token", name, name)
	case acct.dual():
		// A dual account's rotations change its inactive user: whatever
		// blocked one does not concern the active user, which logs in.
		return ""
	case acct.RotationBlocked == "token_stale":
		return fmt.Sprintf("account %q is blocked because its security token is stale; write the new token to accounts/%s/security-token", name, name)
	case acct.RotationBlocked == "drift":
		return fmt.Sprintf("account %q is blocked: its stored credential no longer logs in (changed outside Vault?), and each try counts "+
			"toward the user's lockout; write the current password to accounts/%s or the current token to accounts/%s/security-token "+
			"(accounts/%s/diagnose tells which)", name, name, name, name)
	case acct.RotationBlocked == "user_locked":
		return fmt.Sprintf("account %q is blocked: the Salesforce user is locked out; unlock it in Salesforce, "+
			"then rotate/%s or write the credential to accounts/%s again", name, name, name)
	case acct.RotationBlocked == "user_inactive":
		return fmt.Sprintf("account %q is blocked: the Salesforce user is inactive; reactivate it, "+
			"then rotate/%s or write the credential to accounts/%s again", name, name, name)
	case acct.RotationBlocked != "":
		return fmt.Sprintf("account %q is blocked (%s); read accounts/%s for the last error, fix it, then write accounts/%s",
			name, acct.RotationBlocked, name, name)
	}
	return ""
}

// adoptPassword records a password Salesforce now has: a new credential,
// so it moves LastUpdated when creds/<name> serves it.
func adoptPassword(acct *account, password string, now time.Time) {
	acct.Password = password
	acct.Version++
	acct.LastVaultRotation = now.UTC()
	acct.PasswordChangedAt = now.UTC()
	if acct.needsToken() || acct.SecurityToken != "" {
		// Salesforce emails a new token on every password change; the
		// stored one no longer works, whatever the mode.
		acct.SecurityTokenStatus = tokenStatusStale
	}
	acct.UnverifiedCandidateAt = time.Time{}
	if acct.EndSessionsOnRotation {
		// Stored with the password: a crash before they end does not
		// leave the old credential's sessions alive (rotation_sessions.go).
		acct.EndSessionsPendingSince = now.UTC()
	}
	if acct.dual() && !acct.flatIsActive() {
		// The inactive user of a dual account got it: it becomes active
		// once verified (rotation_dual.go); stored with the password, so a
		// crash in between loses no switch.
		acct.SwitchPendingSince = now.UTC()
		acct.SwitchStatus, acct.SwitchReason = "", ""
	}
	// The rotation a read armed is done.
	acct.ReadRotationAt = time.Time{}
	acct.LastRotationError = ""
	acct.LastRotationErrorAt = time.Time{}
	acct.ConsecutiveFailures = 0
	acct.RotationBlocked = ""
	acct.MissedRotationAt = time.Time{}
	acct.WindowEnd = time.Time{}
	acct.NextVaultRotation = nextRotation(acct, now)
	if acct.flatIsActive() {
		// The inactive user of a dual account is not served until the
		// switch, which moves LastUpdated then.
		acct.LastUpdated = now.UTC()
	}
}
