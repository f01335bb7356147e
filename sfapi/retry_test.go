package sfapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

var quickRetry = retryPolicy{Attempts: 4, BaseDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond}

func TestRetryOnlyTransient(t *testing.T) {
	transient := &Error{Op: "oauth token", HTTPStatus: 503, Kind: KindTransient}
	cases := []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   bool
	}{
		{"success", nil, 1, false},
		{"transient then success", []error{transient, transient}, 3, false},
		{"transient forever", []error{transient, transient, transient, transient, transient}, 4, true},
		{"credentials", []error{&Error{Code: "invalid_grant", Kind: KindCredentials}}, 1, true},
		{"session", []error{&Error{Code: "INVALID_SESSION_ID", Kind: KindSession}}, 1, true},
		{"plain error", []error{errors.New("boom")}, 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := quickRetry.do(context.Background(), func(context.Context) error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls || (err != nil) != tc.wantErr {
				t.Errorf("calls = %d, err = %v; want %d calls, error %v", calls, err, tc.wantCalls, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, tc.errs[len(tc.errs)-1]) {
				t.Errorf("returned %v, want the last error", err)
			}
		})
	}
}

func TestRetryStopsBeforeDeadline(t *testing.T) {
	p := retryPolicy{Attempts: 10, BaseDelay: time.Hour, MaxDelay: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	calls := 0
	transient := &Error{Kind: KindTransient, Message: "503"}
	err := p.do(ctx, func(context.Context) error { calls++; return transient })
	// The first wait (at least 6 minutes) cannot end before the deadline.
	if calls != 1 || !errors.Is(err, transient) {
		t.Errorf("calls = %d, err = %v; want 1 call and the transient error", calls, err)
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	p := retryPolicy{Attempts: 10, BaseDelay: time.Hour, MaxDelay: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := p.do(ctx, func(context.Context) error {
		calls++
		cancel()
		return &Error{Kind: KindTransient}
	})
	if calls != 1 || err == nil {
		t.Errorf("calls = %d, err = %v; want 1 call and an error", calls, err)
	}
}

func TestRetryBackoffJitterBounds(t *testing.T) {
	p := retryPolicy{Attempts: 5, BaseDelay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond}
	seen := map[time.Duration]bool{}
	for range 200 {
		for attempt, ceiling := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 300 * time.Millisecond, 9: 300 * time.Millisecond} {
			d := p.backoff(attempt)
			if d < ceiling/10 || d > ceiling {
				t.Fatalf("backoff(%d) = %s outside [%s, %s]", attempt, d, ceiling/10, ceiling)
			}
			if attempt == 1 {
				seen[d] = true
			}
		}
	}
	if len(seen) < 10 {
		t.Errorf("backoff is not jittered: %d distinct waits in 200 draws", len(seen))
	}
}
