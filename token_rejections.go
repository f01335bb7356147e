package salesforce

import (
	"fmt"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// What password roles learn from a rejected login: for a minute, reads of
// the role answer with Salesforce's rejection instead of logging in again.
// The failed logins themselves are counted by the login budget.

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

// holdRejectedLogin remembers a password grant Salesforce refused, so the
// next reads answer without logging in, unless the role, account or config
// changed since gen.
func (b *backend) holdRejectedLogin(name string, r *roleEntry, gen uint64, err error) {
	c := b.tokens
	c.mu.Lock()
	if c.gen == gen {
		c.rejections[roleCacheKey(name, r)] = &rejectedLogin{role: name, account: r.Account, err: err, until: b.now().Add(rejectedLoginHold)}
	}
	c.mu.Unlock()
	b.logger.Warn("Salesforce rejected the password grant of an account; not logging in with it again for a while",
		"role", name, "account", r.Account, "code", sfapi.ErrorCode(err), "hold", rejectedLoginHold)
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
