package salesforce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// The rotation pipeline: hooks run before the password changes (a failure
// stops the rotation) and after it (a failure becomes a warning, because the
// new password is already set and stored). Each hook is one type in its own
// hook_*.go file; adding a hook means adding a file and a line to
// rotationHooks.

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
	loginCheckHook{},
	webhookGateHook{},
	// unlock first so the new login is not refused by a lock.
	unlockHook{},
	newLoginHook{},
	validationQueryHook{},
	validationWebhookHook{},
}

// rotationRun is the state one rotation shares between its steps and hooks,
// so sessions are reused instead of logging in again.
type rotationRun struct {
	b       *backend
	storage logical.Storage
	name    string
	acct    *account
	cfg     *salesforceConfig
	rcfg    *rotationConfig
	client  Client
	trigger string

	// oldPassword is the password before the change.
	oldPassword string
	// ownSession is a session of the account itself, when one was made.
	ownSession *Session
	// adminSess caches the admin session for this rotation.
	adminSess *Session
	// expired is set when the current password is expired; the rotation
	// then repairs it.
	expired bool
	// rotated is set once the new password is stored.
	rotated bool

	warnings []string
}

func (r *rotationRun) admin(ctx context.Context) (*Session, error) {
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

func (r *rotationRun) warn(format string, args ...interface{}) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
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

// loginBudget counts the logins the engine makes with each account's own
// credential in a sliding hour. Every login counts toward the org's login
// rate, and every failed one brings the user closer to lockout (an org may
// lock after 3), so failed logins have a budget of their own. Hooks, token
// re-entry, WAL reconciliation and diagnose share it.
type loginBudget struct {
	mu     sync.Mutex
	logins map[string][]time.Time
	failed map[string][]time.Time
}

func newLoginBudget() *loginBudget {
	return &loginBudget{logins: map[string][]time.Time{}, failed: map[string][]time.Time{}}
}

// withinHour drops the times older than an hour before now.
func withinHour(times []time.Time, now time.Time) []time.Time {
	cutoff := now.Add(-time.Hour)
	kept := times[:0]
	for _, t := range times {
		if t.After(cutoff) {
			kept = append(kept, t)
		}
	}
	return kept
}

// take records one login for account if fewer than limit happened in the
// hour before now; it reports whether the login may proceed and, if not,
// when the next one may.
func (l *loginBudget) take(account string, limit int, now time.Time) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := withinHour(l.logins[account], now)
	l.logins[account] = kept
	if len(kept) >= limit {
		return false, kept[0].Add(time.Hour)
	}
	l.logins[account] = append(kept, now)
	return true, time.Time{}
}

// takeLogin is take for a login that may fail: it also needs fewer than
// failedLimit failed logins in the hour, since this one may be the next.
// failed reports which budget was spent.
func (l *loginBudget) takeLogin(account string, limit, failedLimit int, now time.Time) (ok bool, next time.Time, failed bool) {
	l.mu.Lock()
	f := withinHour(l.failed[account], now)
	l.failed[account] = f
	l.mu.Unlock()
	if failedLimit > 0 && len(f) >= failedLimit {
		return false, f[0].Add(time.Hour), true
	}
	ok, next = l.take(account, limit, now)
	return ok, next, false
}

// recordFailed counts a login Salesforce rejected.
func (l *loginBudget) recordFailed(account string, now time.Time) {
	l.mu.Lock()
	l.failed[account] = append(withinHour(l.failed[account], now), now)
	l.mu.Unlock()
}

// resetFailed forgets the failed logins of account: Salesforce resets its
// lockout count on a successful login.
func (l *loginBudget) resetFailed(account string) {
	l.mu.Lock()
	delete(l.failed, account)
	l.mu.Unlock()
}

func (l *loginBudget) forget(account string) {
	l.mu.Lock()
	delete(l.logins, account)
	delete(l.failed, account)
	l.mu.Unlock()
}

// errLoginBudget is returned instead of logging in when the budget is spent.
type errLoginBudget struct {
	account string
	next    time.Time
	// failed: the failed-login budget is spent, not the login budget.
	failed bool
}

func (e *errLoginBudget) Error() string {
	if e.failed {
		return fmt.Sprintf("failed-login budget of account %q for this hour is spent (failed_login_budget_per_hour): no more logins with its credential "+
			"before %s, so that the user is not locked out", e.account, e.next.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("login budget of account %q for this hour is spent; next login allowed at %s", e.account, e.next.UTC().Format(time.RFC3339))
}

// Login verdicts of probeLogin.
type loginVerdict int

const (
	// loginOK: logged in; the session is usable.
	loginOK loginVerdict = iota
	// loginPasswordOnly: the password is right but Salesforce asks for a
	// security token (LOGIN_MUST_USE_SECURITY_TOKEN); no session.
	loginPasswordOnly
	// loginExpired: logged in, but the password is expired; the session
	// can only set a new password.
	loginExpired
	// loginRejected: Salesforce rejected the credential.
	loginRejected
)

// probeResult is what a login with an account's credential showed.
type probeResult struct {
	session *Session
	verdict loginVerdict
	// cause is Salesforce's rejection for loginRejected.
	cause error
}

// probeLogin logs in as the account with password (plus its stored
// security token when withToken), within the login budget. A returned error
// means nothing could be concluded (budget spent, outage, other failure).
func (b *backend) probeLogin(ctx context.Context, client Client, name string, acct *account, password string, withToken bool, rcfg *rotationConfig) (*probeResult, error) {
	if ok, next, failed := b.rot.budget.takeLogin(name, rcfg.LoginBudgetPerHour, rcfg.FailedLoginBudgetPerHour, b.rot.now()); !ok {
		return nil, &errLoginBudget{account: name, next: next, failed: failed}
	}
	secret := password
	if withToken {
		secret += acct.SecurityToken
	}
	s, err := client.SOAPLogin(ctx, acct.Username, secret)
	if err == nil {
		b.rot.budget.resetFailed(name)
	} else if IsCredentialError(err) && ErrorCode(err) != "LOGIN_MUST_USE_SECURITY_TOKEN" {
		b.rot.budget.recordFailed(name, b.rot.now())
	}
	switch {
	case err == nil && s.PasswordExpired:
		return &probeResult{session: s, verdict: loginExpired}, nil
	case err == nil:
		return &probeResult{session: s, verdict: loginOK}, nil
	case ErrorCode(err) == "LOGIN_MUST_USE_SECURITY_TOKEN":
		return &probeResult{verdict: loginPasswordOnly, cause: err}, nil
	case ErrorCode(err) == "INVALID_OPERATION_WITH_EXPIRED_PASSWORD":
		return &probeResult{verdict: loginExpired, cause: err}, nil
	case IsCredentialError(err):
		return &probeResult{verdict: loginRejected, cause: err}, nil
	default:
		return nil, err
	}
}

// tokenUsable reports whether logins of acct can carry a valid token.
func (a *account) tokenUsable() bool {
	return a.needsToken() && a.SecurityToken != "" && a.SecurityTokenStatus != tokenStatusStale
}

// isBudgetError reports whether err is a spent login budget.
func isBudgetError(err error) bool {
	var e *errLoginBudget
	return errors.As(err, &e)
}
