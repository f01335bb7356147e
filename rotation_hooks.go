package salesforce

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// Rotation hooks run before the password changes (a failure stops the
// rotation) and after it (a failure becomes a warning, because the new
// password is already set and stored). Each hook is one type below; adding
// a hook means adding a type and a line to rotationHooks. Hooks use the
// login budget and the client, never the pipeline that runs them.

type hookPhase int

const (
	beforeRotation hookPhase = iota
	afterRotation
)

type rotationHook interface {
	// name identifies the hook in warnings and errors.
	name() string
	phase() hookPhase
	// applies reports whether the hook runs for this rotation.
	applies(run *rotationRun) bool
	run(ctx context.Context, run *rotationRun) error
}

// rotationHooks in execution order within each phase.
var rotationHooks = []rotationHook{
	// dual accounts: the two users must be interchangeable before anything
	// changes (rotation_dual.go).
	dualParityHook{},
	loginCheckHook{},
	webhookGateHook{},
	// unlock first so the new login is not refused by a lock.
	unlockHook{},
	newLoginHook{},
	validationQueryHook{},
	validationWebhookHook{},
	// last: its own session is the new login's (rotation_sessions.go).
	endSessionsHook{},
}

// rotationRun is the state one rotation shares between its steps and hooks,
// so sessions are reused instead of logging in again.
type rotationRun struct {
	b       *backend
	storage logical.Storage
	// txn holds the account's lock for the whole run; it is how the run
	// stores the account.
	txn     *accountTxn
	name    string
	acct    *account
	cfg     *salesforceConfig
	rcfg    *rotationConfig
	client  Client
	trigger string

	// oldPassword is the password before the change.
	oldPassword string
	// ownSession is a session of the account itself, when one was made.
	ownSession *sfapi.Session
	// adminSess caches the admin session for this rotation.
	adminSess *sfapi.Session

	// verified: a login proved the new password (newLoginHook).
	verified bool
	// parityOK: dualParityHook found the two users of a dual account
	// interchangeable during this run; validated: the validation_query
	// passed with the new credential.
	parityOK  bool
	validated bool
	// held are the sessions of the user this run opened; end_sessions
	// never ends them (rotation_sessions.go).
	held []*sfapi.Session
	// ended reports the sessions and OAuth grants this run ended.
	ended *endedReport
	// switched: this run made the rotated user of a dual account active.
	switched bool

	warnings []string
}

// admin returns the admin session, logging in once per rotation.
func (r *rotationRun) admin(ctx context.Context) (*sfapi.Session, error) {
	if r.adminSess != nil {
		return r.adminSess, nil
	}
	s, err := r.b.adminSession(ctx, r.storage)
	if err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	r.adminSess = s
	return s, nil
}

// userID returns the account's Salesforce user id, looking it up once.
func (r *rotationRun) userID(ctx context.Context) (string, error) {
	if r.acct.UserID != "" {
		return r.acct.UserID, nil
	}
	admin, err := r.admin(ctx)
	if err != nil {
		return "", err
	}
	u, err := r.client.LookupUser(ctx, admin, r.acct.Username)
	if err != nil {
		return "", fmt.Errorf("looking up user %q: %w", r.acct.Username, err)
	}
	r.acct.UserID = u.ID
	return u.ID, nil
}

// own makes s the run's session of the user, and remembers it as the
// engine's own.
func (r *rotationRun) own(s *sfapi.Session) {
	r.ownSession = s
	if s != nil {
		r.held = append(r.held, s)
	}
}

func (r *rotationRun) warn(format string, args ...interface{}) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

// userFacts is what the admin session can tell about a user.
type userFacts struct {
	known    bool
	inactive bool
	locked   bool
	expired  bool
	// activeKnown and lockKnown say which of inactive and locked were read.
	activeKnown bool
	lockKnown   bool
}

// canLogIn reports whether the admin saw the user active and not locked:
// only then does a refused login mean the password is wrong.
func (f userFacts) canLogIn() bool {
	return f.activeKnown && f.lockKnown && !f.inactive && !f.locked
}

// userState asks Salesforce, as the admin, about the account's user. It
// does not log in as the user. Failures leave the facts unknown.
func (b *backend) userState(ctx context.Context, r *rotationRun) userFacts {
	var f userFacts
	admin, err := r.admin(ctx)
	if err != nil {
		return f
	}
	userID, err := r.userID(ctx)
	if err != nil {
		return f
	}
	u, err := r.client.LookupUser(ctx, admin, r.acct.Username)
	if err == nil && u != nil {
		f.known, f.activeKnown = true, true
		f.inactive = !u.IsActive
	}
	if locked, _, err := r.client.LoginLocked(ctx, admin, userID); err == nil {
		f.known, f.lockKnown = true, true
		f.locked = locked
	}
	if expired, err := r.client.PasswordExpired(ctx, admin, userID); err == nil {
		f.expired = expired
	}
	return f
}

// runHooks runs the hooks of one phase. Before the change the first error
// stops; after it every hook runs and errors become warnings.
func (r *rotationRun) runHooks(ctx context.Context, phase hookPhase) error {
	for _, h := range rotationHooks {
		if h.phase() != phase || !h.applies(r) {
			continue
		}
		err := h.run(ctx, r)
		if err == nil {
			continue
		}
		if phase == beforeRotation {
			return err
		}
		r.warn("%s: %v", h.name(), err)
		r.b.logger.Warn("post-rotation check failed", "account", r.name, "hook", h.name(), "error", err)
	}
	return nil
}

// loginCheckHook checks, before anything changes, that the stored
// credential still logs in. A password changed outside Vault is reported as
// drift instead of being overwritten blindly; locked, inactive and expired
// users are reported as such. The session it makes is reused by the self
// rotation method.
type loginCheckHook struct{}

func (loginCheckHook) name() string                  { return "login_check" }
func (loginCheckHook) phase() hookPhase              { return beforeRotation }
func (loginCheckHook) applies(run *rotationRun) bool { return true }

func (loginCheckHook) run(ctx context.Context, r *rotationRun) error {
	withToken := r.acct.tokenUsable()
	res, err := r.b.probeLogin(ctx, r.storage, r.client, r.cfg, r.name, r.acct, r.acct.Password, withToken, credStored)
	if err != nil {
		return loginUnavailable(err)
	}
	if res.verdict == loginRejected && withToken && !r.b.passwordFlowOnly() {
		// The password may be right and only the token wrong (reset by
		// someone): one more login without it tells them apart. (Not
		// through the username-password flow, whose answer would not.)
		res2, err := r.b.probeLogin(ctx, r.storage, r.client, r.cfg, r.name, r.acct, r.acct.Password, false, credStored)
		if err != nil {
			return loginUnavailable(err)
		}
		if res2.verdict != loginRejected {
			res = res2
			r.acct.SecurityTokenStatus = tokenStatusStale
			r.warn("the stored security token is no longer valid; the password is")
		}
	}
	switch res.verdict {
	case loginOK:
		r.own(res.session)
	case loginExpired:
		r.own(res.session)
		r.warn("the password had expired; this rotation repairs it")
	case loginPasswordOnly:
		if !r.acct.needsToken() {
			r.warn("Salesforce asks for a security token although security_token_mode is not_required: check the trusted IP ranges of the org or the profile's login IP ranges")
		}
	case loginInconclusive:
		return &rotationError{code: "token_stale", blocked: true, err: res.cause,
			msg: fmt.Sprintf("SOAP login() is off in this org and the username-password flow cannot check the stored password without a current "+
				"security token; write the emailed token to accounts/%s/security-token first", r.name)}
	case loginRejected:
		return r.b.explainRejectedLogin(ctx, r, res.cause)
	}
	if r.ownSession != nil && r.ownSession.UserID != "" && r.acct.UserID == "" {
		// The user's own login names its id: no lookup by the admin needed.
		r.acct.UserID = r.ownSession.UserID
	}
	if r.acct.method() == rotationMethodSelf && r.ownSession == nil {
		return &rotationError{
			code:    "token_stale",
			blocked: true,
			msg: fmt.Sprintf("rotation_method=self needs a login with the account's own credential, but the stored security token is stale; "+
				"write the emailed token to accounts/%s/security-token first", r.name),
		}
	}
	return nil
}

// loginUnavailable is the rotation error of a login check that could not
// be made. The hourly budget postpones; max_failed_logins fails the
// rotation with the reason, which only the operator (or a successful
// login) ends.
func loginUnavailable(err error) error {
	switch {
	case isFailedLoginsCap(err):
		return &rotationError{code: "failed_logins", msg: "not checking the stored credential: " + err.Error(), err: err}
	case isBudgetError(err):
		return &rotationError{code: "login_budget", postponed: true, msg: "cannot check the stored credential: " + err.Error(), err: err}
	}
	return &rotationError{code: "salesforce", msg: "checking the stored credential: " + err.Error(), err: err}
}

// explainRejectedLogin turns a rejected login of the stored credential into
// a blocked rotation error that says why, using the admin session.
func (b *backend) explainRejectedLogin(ctx context.Context, r *rotationRun, cause error) error {
	state := b.userState(ctx, r)
	switch {
	case state.inactive:
		return &rotationError{code: "user_inactive", blocked: true, err: cause,
			msg: fmt.Sprintf("the Salesforce user %q is inactive; not rotating", r.acct.Username)}
	case state.locked:
		return &rotationError{code: "user_locked", blocked: true, err: cause,
			msg: fmt.Sprintf("the Salesforce user %q is locked out (too many failed logins); unlock it or wait for the lockout to end, then rotate", r.acct.Username)}
	}
	where, diagnose := "accounts/"+r.name, "accounts/"+r.name+"/diagnose"
	if r.acct.dual() && r.acct.roleOf(r.acct.Username) == roleSecondary {
		where = fmt.Sprintf("accounts/%s (secondary_password, secondary_security_token) for %s", r.name, r.acct.Username)
		diagnose += " with user=secondary"
	}
	return &rotationError{code: "drift", blocked: true, err: cause,
		msg: fmt.Sprintf("the stored credential of account %q no longer logs in (%v); the password or security token may have been changed outside Vault. "+
			"Not overwriting it: write the current credential to %s, or read %s", r.name, cause, where, diagnose)}
}

// webhookGateHook asks the account's pre_rotation_webhook whether now is a
// good time; any answer other than 2xx (or no answer) postpones.
type webhookGateHook struct{}

func (webhookGateHook) name() string     { return "pre_rotation_webhook" }
func (webhookGateHook) phase() hookPhase { return beforeRotation }

func (webhookGateHook) applies(r *rotationRun) bool {
	return r.acct.PreRotationWebhook != ""
}

func (webhookGateHook) run(ctx context.Context, r *rotationRun) error {
	ev := r.b.newEvent("pre-rotation", r.name, r.acct, "")
	status, err := r.b.postEvent(ctx, r.acct.PreRotationWebhook, r.rcfg, ev)
	if err != nil {
		return &rotationError{code: "postponed", postponed: true, msg: fmt.Sprintf("pre_rotation_webhook did not answer, postponing: %v", err)}
	}
	if status < 200 || status > 299 {
		return &rotationError{code: "postponed", postponed: true, msg: fmt.Sprintf("pre_rotation_webhook answered HTTP %d, postponing", status)}
	}
	return nil
}

// unlockHook unlocks the user's login after a rotation when integrations
// still holding the old password locked it out (unlock_after_rotation).
type unlockHook struct{}

func (unlockHook) name() string                { return "unlock" }
func (unlockHook) phase() hookPhase            { return afterRotation }
func (unlockHook) applies(r *rotationRun) bool { return r.acct.UnlockAfterRotation }

func (unlockHook) run(ctx context.Context, r *rotationRun) error {
	admin, err := r.admin(ctx)
	if err != nil {
		return err
	}
	userID, err := r.userID(ctx)
	if err != nil {
		return err
	}
	locked, loginID, err := r.client.LoginLocked(ctx, admin, userID)
	if err != nil {
		return fmt.Errorf("reading the lock state: %w", err)
	}
	if !locked {
		return nil
	}
	if err := r.client.UnlockLogin(ctx, admin, loginID); err != nil {
		return fmt.Errorf("unlocking: %w", err)
	}
	r.b.logger.Info("unlocked the user after rotation", "account", r.name)
	return nil
}

// newLoginHook logs in with the new password once it is stored. For an
// account whose token is now stale, Salesforce's "security token needed"
// answer proves the password without a session.
type newLoginHook struct{}

func (newLoginHook) name() string                  { return "new_login" }
func (newLoginHook) phase() hookPhase              { return afterRotation }
func (newLoginHook) applies(run *rotationRun) bool { return true }

func (newLoginHook) run(ctx context.Context, r *rotationRun) error {
	r.ownSession = nil
	withToken := r.acct.tokenUsable()
	if !withToken && r.acct.needsToken() && r.b.passwordFlowOnly() {
		// The username-password flow cannot prove a password without the
		// token (SOAP login() could), and a try might count as a failure.
		return fmt.Errorf("not checked: without SOAP login() the new password is checked when the emailed token is written to accounts/%s/security-token", r.name)
	}
	res, err := r.b.probeLogin(ctx, r.storage, r.client, r.cfg, r.name, r.acct, r.acct.Password, withToken, credStored)
	if err != nil {
		return fmt.Errorf("could not log in with the new password: %w", err)
	}
	switch res.verdict {
	case loginOK:
		r.own(res.session)
		r.verified = true
		return nil
	case loginPasswordOnly:
		if r.acct.needsToken() {
			// Salesforce accepted the password and asks for the token it
			// just emailed: proven.
			r.verified = true
			return nil
		}
		return fmt.Errorf("the new password is accepted but Salesforce asks for a security token; check the trusted IP ranges")
	case loginExpired:
		return fmt.Errorf("the new password logs in but is reported expired")
	default:
		return fmt.Errorf("the new password does not log in: %v", res.cause)
	}
}

// validationQueryHook runs the account's validation_query (SOQL the
// integration depends on) with the session of the new credential.
type validationQueryHook struct{}

func (validationQueryHook) name() string     { return "validation_query" }
func (validationQueryHook) phase() hookPhase { return afterRotation }

func (validationQueryHook) applies(r *rotationRun) bool {
	return r.acct.ValidationQuery != ""
}

func (validationQueryHook) run(ctx context.Context, r *rotationRun) error {
	if r.ownSession == nil {
		if r.acct.needsToken() {
			return fmt.Errorf("skipped until the new security token is written to accounts/%s/security-token (it runs then)", r.name)
		}
		return fmt.Errorf("skipped: no session with the new credential")
	}
	err := runValidationQuery(ctx, r.client, r.ownSession, r.acct.ValidationQuery)
	r.validated = err == nil
	return err
}

func runValidationQuery(ctx context.Context, c Client, s *sfapi.Session, soql string) error {
	if _, err := c.Query(ctx, s, soql); err != nil {
		return fmt.Errorf("validation_query failed: %w", err)
	}
	return nil
}

// validationWebhookHook tells the account's validation_webhook that the
// password changed and expects a 2xx answer that the integration still works.
type validationWebhookHook struct{}

func (validationWebhookHook) name() string     { return "validation_webhook" }
func (validationWebhookHook) phase() hookPhase { return afterRotation }

func (validationWebhookHook) applies(r *rotationRun) bool {
	return r.acct.ValidationWebhook != ""
}

func (validationWebhookHook) run(ctx context.Context, r *rotationRun) error {
	ev := r.b.newEvent("validate", r.name, r.acct, outcomeRotated)
	status, err := r.b.postEvent(ctx, r.acct.ValidationWebhook, r.rcfg, ev)
	if err != nil {
		return fmt.Errorf("no answer: %v", err)
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("answered HTTP %d", status)
	}
	return nil
}
