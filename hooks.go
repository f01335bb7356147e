package salesforce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
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
	ownSession *sfapi.Session
	// adminSess caches the admin session for this rotation.
	adminSess *sfapi.Session
	// expired is set when the current password is expired; the rotation
	// then repairs it.
	expired bool
	// rotated is set once the new password is stored.
	rotated bool

	warnings []string
}

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
// credential in a sliding hour (every login counts toward the org's login
// rate), and the logins Salesforce rejected since the account's last
// successful login. Salesforce's failed-attempt counter never decays: it
// resets only on a successful login, so neither does this one (an operator
// write of the credential resets it too). Hooks, token re-entry, WAL
// reconciliation and diagnose share both.
type loginBudget struct {
	mu     sync.Mutex
	logins map[string][]time.Time
	// failed holds the count of accounts whose count is known in memory;
	// an absent account takes the count persisted in its storage entry.
	failed map[string]int
}

func newLoginBudget() *loginBudget {
	return &loginBudget{logins: map[string][]time.Time{}, failed: map[string]int{}}
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

// failedCount returns the failed logins of account, taking persisted (the
// count in its storage entry) when memory does not know it.
func (l *loginBudget) failedCount(account string, persisted int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, ok := l.failed[account]
	if !ok {
		n = persisted
		l.failed[account] = n
	}
	return n
}

// takeLogin is take for a login that may fail: it also needs fewer than
// maxFailed failed logins so far, since this one may be the next. failed
// reports which limit stopped it.
func (l *loginBudget) takeLogin(account string, limit, maxFailed, persistedFailed int, now time.Time) (ok bool, next time.Time, failed bool) {
	if maxFailed > 0 && l.failedCount(account, persistedFailed) >= maxFailed {
		return false, time.Time{}, true
	}
	ok, next = l.take(account, limit, now)
	return ok, next, false
}

// recordFailed counts a login Salesforce rejected and returns the count.
func (l *loginBudget) recordFailed(account string, persisted int) int {
	n := l.failedCount(account, persisted) + 1
	l.mu.Lock()
	l.failed[account] = n
	l.mu.Unlock()
	return n
}

// resetFailed sets the failed logins of account to zero (a successful
// login, or an operator write of its credential) and returns the count
// memory held before (-1: unknown).
func (l *loginBudget) resetFailed(account string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, ok := l.failed[account]
	l.failed[account] = 0
	if !ok {
		return -1
	}
	return prev
}

func (l *loginBudget) forget(account string) {
	l.mu.Lock()
	delete(l.logins, account)
	delete(l.failed, account)
	l.mu.Unlock()
}

// persistedFailed is the failed-login count stored with acct.
func persistedFailed(acct *account) int {
	if acct == nil {
		return 0
	}
	return acct.FailedLogins
}

// noteFailedLogin counts a login of account name that Salesforce rejected
// and stores the count in the account's entry, so a restart does not
// forget how close the user is to lockout. acct (may be nil) is the
// caller's copy, updated so that a later write of it keeps the count.
func (b *backend) noteFailedLogin(ctx context.Context, s logical.Storage, name string, acct *account) {
	n := b.rot.budget.recordFailed(name, persistedFailed(acct))
	if acct != nil {
		acct.FailedLogins = n
	}
	b.storeFailedLogins(ctx, s, name, n)
}

// noteSuccessfulLogin resets the failed-login count of account name, as
// Salesforce does on a successful login. Storage is written only when the
// stored count may be nonzero: successes are frequent, failures are not.
func (b *backend) noteSuccessfulLogin(ctx context.Context, s logical.Storage, name string, acct *account) {
	prev := b.rot.budget.resetFailed(name)
	stored := acct != nil && acct.FailedLogins > 0
	if acct != nil {
		acct.FailedLogins = 0
	}
	if prev != 0 || stored {
		b.storeFailedLogins(ctx, s, name, 0)
	}
}

// storeFailedLogins writes n into the stored entry of account name. Where
// storage is read-only (a standby) the count stays in memory only.
func (b *backend) storeFailedLogins(ctx context.Context, s logical.Storage, name string, n int) {
	if s == nil || name == adminBudgetKey {
		return
	}
	stored, err := readAccount(ctx, s, name)
	if err != nil || stored == nil {
		if err != nil {
			b.logger.Warn("could not read the account to store its failed-login count; keeping it in memory", "account", name, "error", err)
		}
		return
	}
	if stored.FailedLogins == n {
		return
	}
	stored.FailedLogins = n
	if err := writeAccount(ctx, s, name, stored); err != nil {
		b.logger.Warn("could not store the failed-login count of an account; keeping it in memory", "account", name, "failed_logins", n, "error", err)
	}
}

// errLoginBudget is returned instead of logging in when the budget is spent.
type errLoginBudget struct {
	account string
	next    time.Time
	// failed: the failed-login limit is reached, not the login budget.
	failed bool
}

func (e *errLoginBudget) Error() string {
	if e.failed {
		if e.account == adminBudgetKey {
			return "Salesforce rejected the config's admin user as often as max_failed_logins allows since its last successful login: " +
				"the engine makes no more logins as that user, so that it is not locked out. Fix the admin credential in config " +
				"(a successful admin login or a plugin reload resets the count)"
		}
		return fmt.Sprintf("Salesforce rejected the credential of account %q as often as max_failed_logins (config/rotation) allows since its last successful login: "+
			"the engine makes no more logins as this user, so that Salesforce does not lock it out. "+
			"Write the current password to accounts/%s (or the current security token to accounts/%s/security-token) to reset the count",
			e.account, e.account, e.account)
	}
	who := fmt.Sprintf("account %q", e.account)
	if e.account == adminBudgetKey {
		who = "the config's admin user"
	}
	return fmt.Sprintf("login budget of %s for this hour is spent; next login allowed at %s", who, e.next.UTC().Format(time.RFC3339))
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
	session *sfapi.Session
	verdict loginVerdict
	// cause is Salesforce's rejection for loginRejected.
	cause error
}

// probeLogin logs in as the account with password (plus its stored
// security token when withToken), within the login budget. A returned error
// means nothing could be concluded (budget spent, outage, other failure).
func (b *backend) probeLogin(ctx context.Context, s logical.Storage, client Client, name string, acct *account, password string, withToken bool, rcfg *rotationConfig) (*probeResult, error) {
	if ok, next, failed := b.rot.budget.takeLogin(name, rcfg.LoginBudgetPerHour, rcfg.MaxFailedLogins, persistedFailed(acct), b.rot.now()); !ok {
		return nil, &errLoginBudget{account: name, next: next, failed: failed}
	}
	secret := password
	if withToken {
		secret += acct.SecurityToken
	}
	sess, err := client.SOAPLogin(ctx, acct.Username, secret)
	if err == nil {
		b.noteSuccessfulLogin(ctx, s, name, acct)
	} else if sfapi.IsCredentialError(err) && sfapi.ErrorCode(err) != "LOGIN_MUST_USE_SECURITY_TOKEN" {
		b.noteFailedLogin(ctx, s, name, acct)
	}
	switch {
	case err == nil && sess.PasswordExpired:
		return &probeResult{session: sess, verdict: loginExpired}, nil
	case err == nil:
		return &probeResult{session: sess, verdict: loginOK}, nil
	case sfapi.ErrorCode(err) == "LOGIN_MUST_USE_SECURITY_TOKEN":
		return &probeResult{verdict: loginPasswordOnly, cause: err}, nil
	case sfapi.ErrorCode(err) == "INVALID_OPERATION_WITH_EXPIRED_PASSWORD":
		return &probeResult{verdict: loginExpired, cause: err}, nil
	case sfapi.IsCredentialError(err):
		return &probeResult{verdict: loginRejected, cause: err}, nil
	default:
		return nil, err
	}
}

// isBudgetError reports whether err is a spent login budget.
func isBudgetError(err error) bool {
	var e *errLoginBudget
	return errors.As(err, &e)
}
