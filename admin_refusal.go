package salesforce

import (
	"fmt"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// adminRefusalRetry is how long a refused admin login of a grant that
// cannot lock anyone out (jwt_bearer, client_credentials) is remembered:
// such grants are often fixed in Salesforce Setup, without a config write.
const adminRefusalRetry = 15 * time.Minute

// adminRefusal records that Salesforce refused the config's admin
// credential. With the password grant every retry would be one more failed
// login of the admin user, so none is made until the config is written
// again (resetClient drops the refusal); automated rotation stops
// mount-wide meanwhile.
type adminRefusal struct {
	at    time.Time
	grant string
	code  string
	cause error
}

// adminRefusedError is returned instead of logging in while a refusal
// stands. It unwraps to Salesforce's answer, so it is a credential error.
type adminRefusedError struct {
	r *adminRefusal
}

func (e *adminRefusedError) Error() string {
	code := e.r.code
	if code == "" {
		code = "a credential error"
	}
	msg := fmt.Sprintf("the admin login (grant_type %s) was refused by Salesforce at %s with %s (%v); ",
		e.r.grant, e.r.at.UTC().Format(time.RFC3339), code, e.r.cause)
	if e.r.grant == adminGrantPassword {
		return msg + "no admin login is tried again, so the admin user is not locked out, until config is written with a working credential"
	}
	return msg + fmt.Sprintf("the next admin login is tried after %s, or as soon as config is written again",
		e.r.at.Add(adminRefusalRetry).UTC().Format(time.RFC3339))
}

func (e *adminRefusedError) Unwrap() error { return e.r.cause }

// refuse records a refused admin login made with the config of generation
// and returns the error callers get from now on.
func (a *adminSessionCache) refuse(grant string, cause error, generation uint64, now time.Time) error {
	r := &adminRefusal{at: now, grant: grant, code: sfapi.ErrorCode(cause), cause: cause}
	a.mu.Lock()
	defer a.mu.Unlock()
	if generation == a.generation {
		// A config written meanwhile is not refused for the old one's fault.
		a.refusal = r
	}
	return &adminRefusedError{r: r}
}

// currentGeneration is the generation of the cached config's session.
func (a *adminSessionCache) currentGeneration() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.generation
}

// refused returns the standing refusal as an error, or nil.
func (a *adminSessionCache) refused(now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.refusal
	if r == nil {
		return nil
	}
	if r.grant != adminGrantPassword && !now.Before(r.at.Add(adminRefusalRetry)) {
		a.refusal = nil
		return nil
	}
	return &adminRefusedError{r: r}
}

// adminRefusedNow reports the standing admin refusal, for rotation status
// and to stop rotations before they make any login.
func (b *backend) adminRefusedNow() error {
	return b.admin.refused(b.now())
}
