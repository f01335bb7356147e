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

// The login budget: every login the engine makes with a stored credential
// (an account's own, or the admin password) is counted here, so that
// neither the org's login rate nor the user's lockout threshold is reached
// by the engine. Its users: rotation hooks and WAL settling (probeLogin),
// rotate-root settling (adminProbe), password roles of the token cache
// (spendPasswordLogin, noteRejectedLogin, noteAcceptedLogin), account and
// security-token writes (resetFailed) and diagnose.

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

// adminBudgetKey is the login budget key of the config's admin user; it
// cannot collide with an account name.
const adminBudgetKey = "config/admin"

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

// isBudgetError reports whether err is a spent login budget.
func isBudgetError(err error) bool {
	var e *errLoginBudget
	return errors.As(err, &e)
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
	n := b.budget.recordFailed(name, persistedFailed(acct))
	if acct != nil {
		acct.FailedLogins = n
	}
	b.storeFailedLogins(ctx, s, name, n)
}

// noteSuccessfulLogin resets the failed-login count of account name, as
// Salesforce does on a successful login. Storage is written only when the
// stored count may be nonzero: successes are frequent, failures are not.
func (b *backend) noteSuccessfulLogin(ctx context.Context, s logical.Storage, name string, acct *account) {
	prev := b.budget.resetFailed(name)
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
	if ok, next, failed := b.budget.takeLogin(name, rcfg.LoginBudgetPerHour, rcfg.MaxFailedLogins, persistedFailed(acct), b.now()); !ok {
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

// adminProbe logs in as the config's admin user with password, within the
// login budgets, without caching a session.
func (b *backend) adminProbe(ctx context.Context, client Client, cfg *salesforceConfig, password string, rcfg *rotationConfig) error {
	now := b.now()
	if ok, next, failed := b.budget.takeLogin(adminBudgetKey, rcfg.LoginBudgetPerHour, rcfg.MaxFailedLogins, 0, now); !ok {
		return &errLoginBudget{account: adminBudgetKey, next: next, failed: failed}
	}
	_, err := client.PasswordGrant(ctx, cfg.Username, password+cfg.SecurityToken)
	switch {
	case err == nil:
		b.budget.resetFailed(adminBudgetKey)
	case sfapi.IsCredentialError(err):
		b.budget.recordFailed(adminBudgetKey, 0)
	}
	return err
}

// spendPasswordLogin takes one login from the account's budgets (logins
// and failed logins, shared with the rotation) when its credential was
// rejected since it last changed. Logins with a credential not in doubt
// are not charged: a busy cache=false role must not starve the rotation's
// own login checks.
func (b *backend) spendPasswordLogin(ctx context.Context, s logical.Storage, name string, acct *account) error {
	rcfg, err := readRotationConfig(ctx, s)
	if err != nil {
		return err
	}
	// Past max_failed_logins no login is made, doubted or not: after a
	// restart only the stored count remembers the rejections.
	if rcfg.MaxFailedLogins > 0 && b.budget.failedCount(name, persistedFailed(acct)) >= rcfg.MaxFailedLogins {
		return &errLoginBudget{account: name, failed: true}
	}
	c := b.tokens
	c.mu.Lock()
	doubted := c.doubted[name]
	c.mu.Unlock()
	if !doubted {
		return nil
	}
	if ok, next, failed := b.budget.takeLogin(name, rcfg.LoginBudgetPerHour, rcfg.MaxFailedLogins, persistedFailed(acct), b.now()); !ok {
		return &errLoginBudget{account: name, next: next, failed: failed}
	}
	return nil
}

// noteRejectedLogin remembers a password grant Salesforce refused, so the
// next reads answer without logging in, and counts the failed login where
// the rotation counts its own: Salesforce locks the user on the total.
func (b *backend) noteRejectedLogin(ctx context.Context, s logical.Storage, name string, r *roleEntry, acct *account, gen uint64, err error) {
	c := b.tokens
	c.mu.Lock()
	if c.gen == gen {
		c.rejections[roleCacheKey(name, r)] = &rejectedLogin{role: name, account: r.Account, err: err, until: b.now().Add(rejectedLoginHold)}
		c.doubted[r.Account] = true
	}
	c.mu.Unlock()
	b.noteFailedLogin(ctx, s, r.Account, acct)
	b.logger.Warn("Salesforce rejected the password grant of an account; not logging in with it again for a while",
		"role", name, "account", r.Account, "code", sfapi.ErrorCode(err), "hold", rejectedLoginHold)
}

// noteAcceptedLogin clears the doubt on an account whose credential just
// logged in; Salesforce resets its failed-login count then too.
func (b *backend) noteAcceptedLogin(ctx context.Context, s logical.Storage, account string, acct *account) {
	c := b.tokens
	c.mu.Lock()
	delete(c.doubted, account)
	c.mu.Unlock()
	b.noteSuccessfulLogin(ctx, s, account, acct)
}

// rejectedLoginHold is how long a password role answers with the
// credential error Salesforce just gave instead of logging in again:
// every failed login brings the user closer to lockout.
const rejectedLoginHold = time.Minute

// rejectedLogin is a credential failure of a password role's grant.
type rejectedLogin struct {
	role, account string
	err           error
	until         time.Time
}

// heldRejection returns the credential error a password role got less
// than rejectedLoginHold ago, if any.
func (c *tokenCache) heldRejection(key string, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rej := c.rejections[key]
	if rej == nil {
		return nil
	}
	if !now.Before(rej.until) {
		delete(c.rejections, key)
		return nil
	}
	return &heldRejectionError{account: rej.account, until: rej.until, err: rej.err}
}

// heldRejectionError answers a password role's read while Salesforce's
// last rejection of the account's credential is held.
type heldRejectionError struct {
	account string
	until   time.Time
	err     error
}

func (e *heldRejectionError) Error() string {
	code := sfapi.ErrorCode(e.err)
	if code == "" {
		code = "unknown"
	}
	return fmt.Sprintf("Salesforce rejected the password grant with account %q (%s) moments ago; not logging in with it again "+
		"before %s, to spare the user's failed-login count. Fix the credential: write the current password to accounts/%s "+
		"or the current token to accounts/%s/security-token (accounts/%s/diagnose tells which)",
		e.account, code, e.until.UTC().Format(time.RFC3339), e.account, e.account, e.account)
}

func (e *heldRejectionError) Unwrap() error { return e.err }
