package salesforce

import (
	"context"
	"fmt"
)

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
	res, err := r.b.probeLogin(ctx, r.storage, r.client, r.name, r.acct, r.acct.Password, withToken, r.rcfg)
	if err != nil {
		return loginUnavailable(err)
	}
	if res.verdict == loginRejected && withToken {
		// The password may be right and only the token wrong (reset by
		// someone): one more login without it tells them apart.
		res2, err := r.b.probeLogin(ctx, r.storage, r.client, r.name, r.acct, r.acct.Password, false, r.rcfg)
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
		r.ownSession = res.session
	case loginExpired:
		r.expired = true
		r.ownSession = res.session
		r.warn("the password had expired; this rotation repairs it")
	case loginPasswordOnly:
		if !r.acct.needsToken() {
			r.warn("Salesforce asks for a security token although security_token_mode is not_required: check the trusted IP ranges of the org or the profile's login IP ranges")
		}
	case loginRejected:
		return r.b.explainRejectedLogin(ctx, r, res.cause)
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

func loginUnavailable(err error) error {
	if isBudgetError(err) {
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
	return &rotationError{code: "drift", blocked: true, err: cause,
		msg: fmt.Sprintf("the stored credential of account %q no longer logs in (%v); the password or security token may have been changed outside Vault. "+
			"Not overwriting it: write the current credential to accounts/%s, or read accounts/%s/diagnose", r.name, cause, r.name, r.name)}
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
