package salesforce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// The login budget: every login the engine makes with a stored credential
// (an account's password, a rotation's candidate, the config's admin
// password) reserves a slot here BEFORE it is sent and settles it with
// Salesforce's answer. Its state is kept per Salesforce user in an entry of
// its own, so a restart, a failover or a reload cannot forget how close a
// user is to lockout, and no login ever writes the account entry.
//
//	reserve  refuses when the user's failed logins reached max_failed_logins;
//	         waits while failed + logins in flight would reach it (one of
//	         those in flight may be the next failure); refuses when the
//	         hourly budget is spent for a charged login; then stores
//	         pending+1 before the login is sent.
//	done     success: failed = 0; credential rejected: failed + 1; anything
//	         else (outage, SOAP login() unavailable): no count; pending - 1.
//
// Logins still pending when a node first loads an entry may have reached
// Salesforce before a crash: they count as failed. Salesforce's count never
// decays, so neither does this one: only a successful login resets it, or
// an operator who checked Salesforce (accounts/<name> with
// reset_failed_logins=true; for the admin user, a write of config).

const loginBudgetStoragePrefix = "login-budget/"

// The credential a login used, as reads of accounts/<name> show it.
const (
	credStored    = "stored"
	credCandidate = "candidate"
	credOperator  = "operator"
	// credInterrupted: a login left in flight by a crash.
	credInterrupted = "interrupted"
)

// loginPurpose says whether a login is charged to the hourly budget.
type loginPurpose int

const (
	// purposeCheck: the engine's own logins (rotation hooks, WAL probes,
	// diagnose, security-token writes, admin logins); always charged.
	purposeCheck loginPurpose = iota
	// purposeToken: token reads of password roles; charged only while the
	// user has failed logins, so a busy cache=false role cannot starve the
	// rotation's checks.
	purposeToken
	// purposeOperator: the check of a credential an operator writes; never
	// charged.
	purposeOperator
)

// maxLoginWait bounds how long a login waits for logins in flight as the
// same user to be answered.
const maxLoginWait = time.Minute

// budgetState is the stored state of one user's logins.
type budgetState struct {
	Username string `json:"username"`
	// Failed counts the logins Salesforce rejected since the last success.
	Failed int `json:"failed,omitempty"`
	// Pending counts the reserved logins not yet answered.
	Pending int `json:"pending,omitempty"`
	// Logins are the charged logins of the last hour.
	Logins      []time.Time   `json:"logins,omitempty"`
	LastFailure *loginFailure `json:"last_failure,omitempty"`
}

// loginFailure is the last login Salesforce rejected.
type loginFailure struct {
	At         time.Time `json:"at"`
	Code       string    `json:"code,omitempty"`
	Credential string    `json:"credential"`
}

// loginBudget holds the per-user locks of the budget entries.
type loginBudget struct {
	mu   sync.Mutex
	keys map[string]*budgetKeyState
}

type budgetKeyState struct {
	// mu serialises the read-modify-writes of the user's entry.
	mu sync.Mutex
	// loaded: logins a crash left pending were counted in this process.
	loaded bool
	// volatile holds the state while storage cannot take it (a node whose
	// storage is read-only, a failed write); loads prefer it.
	volatile *budgetState
	// stored is the state as this node last read or wrote it in storage:
	// loads use it instead of reading storage again. Only the node that
	// counts logins (the active one) writes the entry; Invalidate and
	// reload drop it.
	stored *budgetState
	// changed is closed (and replaced) whenever a login is answered.
	changed chan struct{}
}

func newLoginBudget() *loginBudget {
	return &loginBudget{keys: map[string]*budgetKeyState{}}
}

func (l *loginBudget) key(key string) *budgetKeyState {
	l.mu.Lock()
	defer l.mu.Unlock()
	ks := l.keys[key]
	if ks == nil {
		ks = &budgetKeyState{changed: make(chan struct{})}
		l.keys[key] = ks
	}
	return ks
}

// reload forgets what this process knows of every entry; Initialize calls
// it when the node becomes active, since another node may have written
// them meanwhile (and left logins pending when it died).
func (l *loginBudget) reload() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ks := range l.keys {
		ks.mu.Lock()
		ks.loaded, ks.volatile, ks.stored = false, nil, nil
		ks.mu.Unlock()
	}
}

// forget drops what this node knows of the entry at key (a storage key
// below login-budget/): another node changed it.
func (l *loginBudget) forget(key string) {
	l.mu.Lock()
	ks := l.keys[strings.TrimPrefix(key, loginBudgetStoragePrefix)]
	l.mu.Unlock()
	if ks != nil {
		ks.mu.Lock()
		ks.stored = nil
		ks.mu.Unlock()
	}
}

// copyBudget is a copy of st that shares nothing with it.
func copyBudget(st *budgetState) *budgetState {
	cp := *st
	cp.Logins = append([]time.Time(nil), st.Logins...)
	if st.LastFailure != nil {
		lf := *st.LastFailure
		cp.LastFailure = &lf
	}
	return &cp
}

// budgetKeyOf is the storage key of a user's budget: Salesforce counts
// failed logins per user, whatever the account name in Vault.
func budgetKeyOf(username string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(username)))
	return hex.EncodeToString(sum[:16])
}

// loginUser is whose credential a login uses.
type loginUser struct {
	// account is the account's name in Vault; "" for the config's admin.
	account  string
	username string
	// legacyFailed seeds a user without a budget entry (an account stored
	// by an older version).
	legacyFailed int
}

func accountUser(name string, acct *account) loginUser {
	return loginUser{account: name, username: acct.Username, legacyFailed: acct.LegacyFailedLogins}
}

func adminUser(cfg *salesforceConfig) loginUser {
	return loginUser{username: cfg.Username}
}

// loadBudget reads the user's state; the caller holds ks.mu. The first
// load in this process counts leftover pending logins as failed.
func (b *backend) loadBudget(ctx context.Context, s logical.Storage, ks *budgetKeyState, who loginUser) (*budgetState, error) {
	if ks.volatile != nil {
		return copyBudget(ks.volatile), nil
	}
	if ks.stored != nil && ks.loaded {
		return copyBudget(ks.stored), nil
	}
	st, err := readBudget(ctx, s, who)
	if err != nil {
		return nil, err
	}
	ks.stored = copyBudget(st)
	if !ks.loaded {
		if st.Pending > 0 {
			b.logger.Warn("logins left in flight by a crash are counted as failed", "username", who.username, "pending", st.Pending)
			st.Failed += st.Pending
			st.Pending = 0
			st.LastFailure = &loginFailure{At: b.now().UTC(), Credential: credInterrupted}
			_ = b.saveBudget(ctx, s, ks, st, true)
		}
		ks.loaded = true
	}
	return st, nil
}

// readBudget reads a user's stored state without changing anything.
func readBudget(ctx context.Context, s logical.Storage, who loginUser) (*budgetState, error) {
	entry, err := s.Get(ctx, loginBudgetStoragePrefix+budgetKeyOf(who.username))
	if err != nil {
		return nil, fmt.Errorf("reading the login budget: %w", err)
	}
	st := &budgetState{Username: who.username, Failed: who.legacyFailed}
	if entry != nil {
		st = &budgetState{}
		if err := entry.DecodeJSON(st); err != nil {
			return nil, fmt.Errorf("decoding the login budget: %w", err)
		}
	}
	return st, nil
}

// saveBudget stores st. Where storage is read-only (a node that is not the
// active one) the node keeps the state in memory and counts from there. A
// failed write returns the error and, with keep, keeps the state in memory
// too, until a later write succeeds.
func (b *backend) saveBudget(ctx context.Context, s logical.Storage, ks *budgetKeyState, st *budgetState, keep bool) error {
	ctx = context.WithoutCancel(ctx)
	key := loginBudgetStoragePrefix + budgetKeyOf(st.Username)
	var err error
	if st.Failed == 0 && st.Pending == 0 && len(st.Logins) == 0 && st.LastFailure == nil {
		// Nothing to remember: a healthy user leaves no entry.
		err = s.Delete(ctx, key)
	} else {
		var entry *logical.StorageEntry
		entry, err = logical.StorageEntryJSON(key, st)
		if err == nil {
			err = s.Put(ctx, entry)
		}
	}
	switch {
	case err == nil:
		ks.volatile = nil
		ks.stored = copyBudget(st)
		return nil
	case errors.Is(err, logical.ErrReadOnly):
		ks.volatile = copyBudget(st)
		return nil
	case keep:
		b.logger.Warn("could not store the login budget; this node keeps it in memory", "username", st.Username, "error", err)
		ks.volatile = copyBudget(st)
	}
	// Storage may or may not hold it: read it afresh next time.
	ks.stored = nil
	return fmt.Errorf("storing the login budget: %w", err)
}

// loginSlot is a reserved login; done settles it.
type loginSlot struct {
	b    *backend
	s    logical.Storage
	ks   *budgetKeyState
	who  loginUser
	cred string
	once sync.Once
}

// reserveLogin reserves one login as who with credential cred.
func (b *backend) reserveLogin(ctx context.Context, s logical.Storage, who loginUser, purpose loginPurpose, cred string) (*loginSlot, error) {
	rcfg, err := b.readRotationConfigCached(ctx, s)
	if err != nil {
		return nil, err
	}
	ks := b.budget.key(budgetKeyOf(who.username))
	deadline := time.NewTimer(maxLoginWait)
	defer deadline.Stop()
	for {
		ks.mu.Lock()
		st, err := b.loadBudget(ctx, s, ks, who)
		if err != nil {
			ks.mu.Unlock()
			return nil, err
		}
		if st.Failed >= rcfg.MaxFailedLogins {
			ks.mu.Unlock()
			return nil, &errLoginBudget{who: who, failed: true, count: st.Failed, last: st.LastFailure}
		}
		if st.Failed+st.Pending >= rcfg.MaxFailedLogins {
			// Each login in flight may be the next failure: wait for answers.
			changed := ks.changed
			ks.mu.Unlock()
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, &errLoginBudget{who: who, busy: true}
			case <-deadline.C:
				return nil, &errLoginBudget{who: who, busy: true}
			}
		}
		now := b.now()
		if purpose == purposeCheck || purpose == purposeToken && st.Failed > 0 {
			st.Logins = withinHour(st.Logins, now)
			if len(st.Logins) >= rcfg.LoginBudgetPerHour {
				ks.mu.Unlock()
				return nil, &errLoginBudget{who: who, next: st.Logins[0].Add(time.Hour)}
			}
			st.Logins = append(st.Logins, now.UTC())
		}
		st.Pending++
		// Stored before the login is sent: if this node dies with the
		// login in flight, the next one counts it as failed.
		err = b.saveBudget(ctx, s, ks, st, false)
		ks.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return &loginSlot{b: b, s: s, ks: ks, who: who, cred: cred}, nil
	}
}

// done settles the slot with the login's outcome (err from Salesforce).
// It is safe to call more than once; only the first call counts.
func (sl *loginSlot) done(ctx context.Context, err error) {
	if sl == nil {
		return
	}
	sl.once.Do(func() {
		b, ks := sl.b, sl.ks
		ks.mu.Lock()
		defer ks.mu.Unlock()
		defer func() {
			close(ks.changed)
			ks.changed = make(chan struct{})
		}()
		st, lerr := b.loadBudget(context.WithoutCancel(ctx), sl.s, ks, sl.who)
		if lerr != nil {
			// The reservation stays counted until a node loads the entry
			// afresh: the safe side.
			b.logger.Warn("could not read the login budget to settle a login", "username", sl.who.username, "error", lerr)
			return
		}
		if st.Pending > 0 {
			st.Pending--
		}
		switch {
		case err == nil:
			st.Failed = 0
			st.LastFailure = nil
		case countsAsFailedLogin(err):
			st.Failed++
			st.LastFailure = &loginFailure{At: b.now().UTC(), Code: sfapi.ErrorCode(err), Credential: sl.cred}
		}
		_ = b.saveBudget(ctx, sl.s, ks, st, true)
	})
}

// countsAsFailedLogin reports whether Salesforce counts the login that
// failed with err towards the user's lockout. The right password without
// the security token does not count.
func countsAsFailedLogin(err error) bool {
	return sfapi.IsCredentialError(err) && sfapi.ErrorCode(err) != "LOGIN_MUST_USE_SECURITY_TOKEN"
}

// resetFailedLogins sets the user's failed logins to zero: the operator
// checked in Salesforce that the user is not locked out (accounts/<name>
// with reset_failed_logins=true, or a write of config for the admin).
func (b *backend) resetFailedLogins(ctx context.Context, s logical.Storage, who loginUser) error {
	ks := b.budget.key(budgetKeyOf(who.username))
	ks.mu.Lock()
	defer ks.mu.Unlock()
	st, err := b.loadBudget(ctx, s, ks, who)
	if err != nil {
		return err
	}
	if st.Failed == 0 && st.LastFailure == nil {
		return nil
	}
	st.Failed, st.LastFailure = 0, nil
	if err := b.saveBudget(ctx, s, ks, st, false); err != nil {
		return err
	}
	close(ks.changed)
	ks.changed = make(chan struct{})
	return nil
}

// loginStatus is the user's failed-login state for reads; it changes
// nothing.
func (b *backend) loginStatus(ctx context.Context, s logical.Storage, who loginUser) (*budgetState, error) {
	ks := b.budget.key(budgetKeyOf(who.username))
	ks.mu.Lock()
	if ks.volatile != nil {
		st := copyBudget(ks.volatile)
		ks.mu.Unlock()
		return st, nil
	}
	if ks.stored != nil {
		st := copyBudget(ks.stored)
		ks.mu.Unlock()
		return st, nil
	}
	ks.mu.Unlock()
	return readBudget(ctx, s, who)
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

// errLoginBudget is returned instead of logging in.
type errLoginBudget struct {
	who loginUser
	// failed: max_failed_logins is reached (count rejections, the last
	// one last); else busy: logins in flight fill it; else the hourly
	// budget is spent until next.
	failed bool
	count  int
	last   *loginFailure
	busy   bool
	next   time.Time
}

func (e *errLoginBudget) Error() string {
	who := fmt.Sprintf("account %q", e.who.account)
	if e.who.account == "" {
		who = "the config's admin user"
	}
	switch {
	case e.failed:
		last := ""
		if e.last != nil {
			code := e.last.Code
			if code == "" {
				code = "no answer"
			}
			last = fmt.Sprintf(" (the last at %s: %s, %s credential)", e.last.At.UTC().Format(time.RFC3339), code, e.last.Credential)
		}
		msg := fmt.Sprintf("Salesforce rejected %d logins as %s since its last successful login%s, as many as max_failed_logins (config/rotation) allows: "+
			"the engine makes no more logins as this user, so that Salesforce does not lock it out. ", e.count, who, last)
		if e.who.account == "" {
			return msg + "Check the admin user in Salesforce (not locked out, password current), then write config again, which resets the count"
		}
		return msg + fmt.Sprintf("Check in Salesforce that the user is not locked out, then write accounts/%s with reset_failed_logins=true, "+
			"with the current password if it changed outside Vault; then the current token to accounts/%s/security-token if that changed",
			e.who.account, e.who.account)
	case e.busy:
		return fmt.Sprintf("other logins as %s are waiting for Salesforce's answer, and one more could exceed max_failed_logins; try again", who)
	}
	return fmt.Sprintf("login budget of %s for this hour is spent; next login allowed at %s", who, e.next.UTC().Format(time.RFC3339))
}

// isBudgetError reports whether err is a login the budget refused.
func isBudgetError(err error) bool {
	var e *errLoginBudget
	return errors.As(err, &e)
}

// isFailedLoginsCap reports whether err is the max_failed_logins refusal,
// which only a successful login or the operator ends (not time).
func isFailedLoginsCap(err error) bool {
	var e *errLoginBudget
	return errors.As(err, &e) && e.failed
}
