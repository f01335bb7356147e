package sfapi

import (
	"context"
	"math/rand/v2"
	"time"
)

// retryPolicy bounds how often and how fast a transient Salesforce failure
// is retried. Only errors IsTransient accepts are retried: a credential
// error retried is one more step towards the user's lockout.
type retryPolicy struct {
	// Attempts is the total number of tries, the first one included.
	Attempts int
	// BaseDelay is the backoff ceiling before the second try; it doubles
	// on each further try up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

// RetryAttempts is how often WithRetry tries an operation, the first try
// included.
const RetryAttempts = 4

// defaultRetryPolicy keeps the worst case (about 3.5 s of waiting) well
// inside Vault's default request deadline of 90 s.
var defaultRetryPolicy = retryPolicy{
	Attempts:  RetryAttempts,
	BaseDelay: 250 * time.Millisecond,
	MaxDelay:  2 * time.Second,
}

// WithRetry runs op until it succeeds, fails with a non-transient error,
// runs out of attempts, or the next wait would pass ctx's deadline. It
// returns op's last error, so callers still see Salesforce's code.
func WithRetry(ctx context.Context, op func(ctx context.Context) error) error {
	return defaultRetryPolicy.do(ctx, op)
}

func (p retryPolicy) do(ctx context.Context, op func(ctx context.Context) error) error {
	attempts := max(p.Attempts, 1)
	var err error
	for attempt := 1; ; attempt++ {
		err = op(ctx)
		if err == nil || !IsTransient(err) || attempt >= attempts {
			return err
		}
		wait := p.backoff(attempt)
		// A retry that cannot finish before the deadline only hides the
		// real error behind a context error.
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			return err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
	}
}

// backoff is "full jitter": a random wait up to an exponentially growing
// ceiling, so that many Vault nodes or requests hit by the same outage do
// not come back in lockstep.
func (p retryPolicy) backoff(attempt int) time.Duration {
	ceiling := p.BaseDelay << (attempt - 1)
	if ceiling <= 0 || ceiling > p.MaxDelay {
		ceiling = p.MaxDelay
	}
	if ceiling <= 0 {
		return 0
	}
	// At least a tenth of the ceiling, so a try never follows instantly.
	floor := ceiling / 10
	return floor + rand.N(ceiling-floor+1)
}
