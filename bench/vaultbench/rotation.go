package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

type rotationOptions struct {
	accounts    int
	latency     time.Duration
	concurrency int
	rpm         int
	rps         int               // requests_per_second, the per-org request rate (0: the engine's default)
	extra       map[string]string // more config/rotation fields, as given
	writers     int
	timeout     time.Duration
	// profileDir, with -pprof, receives a CPU profile of the plugin from
	// the due moment on (cpu-rotation.pprof).
	profileDir string
	profileFor time.Duration
}

// rotationResult is target 3: many accounts due at once against a slow org.
type rotationResult struct {
	Accounts    int
	Rotated     int
	Latency     time.Duration
	Concurrency int
	TimedOut    bool
	// Calls are the emulator's per-endpoint counters over the phase.
	Calls map[string]int
	// PerRotation[e] is the whole number of calls to e every rotation made
	// (Calls[e] / Accounts); the bound counts these.
	PerRotation map[string]int
	// Once[e] are the calls to e beyond the whole number per rotation
	// (the remainder, e.g. the one admin login of the mount).
	Once map[string]int
	// Calls is every call of the phase; RoundTrips is Calls / Accounts:
	// the bound counts every call.
	TotalCalls int
	RoundTrips float64
	// RPS is requests_per_second as read back (0 if the engine has none).
	RPS int
	// Bound is the larger of ConcBound, every call's latency spread over
	// max_concurrent_rotations, and RateBound, every call at the per-org
	// request rate.
	Bound, ConcBound, RateBound time.Duration
	// Total runs from the moment every account was due to the end of the
	// last Salesforce call; FirstCall is the part before the first call
	// (the engine noticing the accounts are due).
	Total     time.Duration
	FirstCall time.Duration
	// MaxRate is the most calls that arrived at the emulator within any
	// one second.
	MaxRate int
	// RateSettings are config/rotation's fields that limit the rate at
	// which the engine talks to the org, as read back.
	RateSettings map[string]any
	Warnings     []string
}

func rotName(i int) string { return fmt.Sprintf("rot-%06d", i) }

// runRotation mounts sf-rot, stores o.accounts accounts whose users exist
// in the emulator, makes them all due at one moment and times how long
// the engine takes to rotate them all while every Salesforce call takes
// o.latency.
func (e *env) runRotation(ctx context.Context, o rotationOptions) (*rotationResult, error) {
	const mount = "sf-rot"
	if err := e.mountSalesforce(mount); err != nil {
		return nil, err
	}
	defer e.disable(mount)
	rc := map[string]any{"max_concurrent_rotations": o.concurrency, "requests_per_minute": o.rpm}
	if o.rps > 0 {
		rc["requests_per_second"] = o.rps
	}
	for k, v := range o.extra {
		rc[k] = v
	}
	if _, err := e.client.Logical().Write(mount+"/config/rotation", rc); err != nil {
		return nil, fmt.Errorf("writing %s/config/rotation: %w", mount, err)
	}
	res := &rotationResult{Accounts: o.accounts, Latency: o.latency, Concurrency: o.concurrency, RateSettings: map[string]any{}}
	if sec, err := e.client.Logical().Read(mount + "/config/rotation"); err == nil && sec != nil {
		for k, v := range sec.Data {
			if isRateSetting(k) {
				res.RateSettings[k] = v
			}
			if k == "requests_per_second" {
				res.RPS = intOf(v)
			}
		}
	}

	// Pass 1: create the accounts, scheduled far ahead so nothing rotates
	// while the others are still being written.
	far := time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339)
	progress("rotation: storing %d accounts (verify=false, %d writers)", o.accounts, o.writers)
	start := time.Now()
	if err := e.writeEach(ctx, 1, o.accounts, o.writers, func(i int) (string, map[string]any) {
		return mount + "/accounts/" + rotName(i), map[string]any{
			"username": rotUsername(i), "password": rotPassword(i), "verify": false,
			"rotation_period": "24h", "next_rotation": far,
		}
	}); err != nil {
		return nil, err
	}
	progress("rotation: stored in %s", time.Since(start).Round(time.Millisecond))

	// Pass 2: move every next_rotation to one moment, far enough ahead for
	// all the updates: twice what a sample of them says, at least 5s.
	sample := min(o.accounts, 4*o.writers)
	start = time.Now()
	if err := e.writeEach(ctx, 1, sample, o.writers, func(i int) (string, map[string]any) {
		return mount + "/accounts/" + rotName(i), map[string]any{"next_rotation": far}
	}); err != nil {
		return nil, err
	}
	margin := max(5*time.Second, 2*time.Since(start)*time.Duration(o.accounts)/time.Duration(sample))
	due := time.Now().Add(margin).Truncate(time.Second).Add(time.Second)
	progress("rotation: making all %d due at %s (in %s)", o.accounts, due.Format(time.TimeOnly), time.Until(due).Round(time.Second))
	if err := e.writeEach(ctx, 1, o.accounts, o.writers, func(i int) (string, map[string]any) {
		return mount + "/accounts/" + rotName(i), map[string]any{"next_rotation": due.UTC().Format(time.RFC3339)}
	}); err != nil {
		return nil, err
	}
	if late := time.Since(due); late > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the last next_rotation update landed %s after the due time, so not all accounts were due at once", late.Round(time.Millisecond)))
	}

	e.front.latency.Store(int64(o.latency))
	defer e.front.latency.Store(0)
	e.front.startRecording()
	time.Sleep(time.Until(due))
	var prof chan error
	if e.pprofAddr != "" && o.profileDir != "" {
		prof = make(chan error, 1)
		file := filepath.Join(o.profileDir, "cpu-rotation.pprof")
		go func() { prof <- e.cpuProfile(ctx, o.profileFor, file) }()
		defer func() {
			if err := <-prof; err != nil {
				progress("warning: CPU profile of the rotations: %v", err)
			}
		}()
	}
	progress("rotation: due now; waiting for %d password changes at the emulator", o.accounts)

	deadline := due.Add(o.timeout)
	for {
		res.Rotated = e.rotatedUsers(o.accounts)
		if res.Rotated == o.accounts {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			res.TimedOut = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Calls after the password change (checks, logouts) still count:
	// wait until the emulator has been quiet for a while.
	quiet := max(time.Second, 4*o.latency)
	for {
		last := e.front.lastArrival()
		if !last.IsZero() && time.Since(last) > quiet+o.latency {
			break
		}
		if time.Now().After(deadline.Add(time.Minute)) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	arrivals, calls := e.front.stopRecording()
	res.Calls = calls
	if len(arrivals) > 0 {
		res.FirstCall = arrivals[0].Sub(due)
		res.Total = arrivals[len(arrivals)-1].Add(o.latency).Sub(due)
	}
	res.MaxRate = maxInWindow(arrivals, time.Second)
	res.PerRotation, res.Once, _ = splitCalls(calls, o.accounts)
	for _, c := range calls {
		res.TotalCalls += c
	}
	res.RoundTrips = float64(res.TotalCalls) / float64(max(o.accounts, 1))
	res.ConcBound = rotationBound(res.TotalCalls, o.latency, o.concurrency)
	res.RateBound = rateBound(res.TotalCalls, res.RPS)
	res.Bound = max(res.ConcBound, res.RateBound)
	return res, nil
}

// intOf reads a JSON number as Vault's API returns it.
func intOf(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}

// isRateSetting picks the config/rotation fields that limit how fast the
// engine talks to the org (today requests_per_minute, which spaces
// rotation starts; a per-org request rate is planned).
func isRateSetting(k string) bool {
	return strings.Contains(k, "rate") || strings.Contains(k, "per_minute") || strings.Contains(k, "per_second") ||
		strings.Contains(k, "concurren")
}

// rotatedUsers counts the bench users whose password is no longer the
// seeded one.
func (e *env) rotatedUsers(n int) int {
	c := 0
	for i := 1; i <= n; i++ {
		if e.emu.Password(rotUsername(i)) != rotPassword(i) {
			c++
		}
	}
	return c
}

// splitCalls divides each endpoint's calls among n rotations: the whole
// number each rotation made, and the rest, which the bound does not count.
func splitCalls(calls map[string]int, n int) (per, rest map[string]int, roundTrips int) {
	per, rest = map[string]int{}, map[string]int{}
	if n <= 0 {
		return per, rest, 0
	}
	for ep, c := range calls {
		if k := c / n; k > 0 {
			per[ep] = k
			roundTrips += k
		}
		if r := c % n; r > 0 {
			rest[ep] = r
		}
	}
	return per, rest, roundTrips
}

// rotationBound is issue 12's bound, round trips per rotation × latency ×
// N ÷ concurrency, with round trips per rotation = every call ÷ N: no call
// is left out of it (the mount's one admin login is 1/N round trip each).
func rotationBound(calls int, latency time.Duration, concurrency int) time.Duration {
	if concurrency <= 0 {
		return 0
	}
	return time.Duration(int64(calls) * int64(latency) / int64(concurrency))
}

// rateBound is how long calls take at rps calls per second (0: no rate).
func rateBound(calls, rps int) time.Duration {
	if rps <= 0 {
		return 0
	}
	return time.Duration(int64(calls) * int64(time.Second) / int64(rps))
}

// maxInWindow is the largest number of times within any window w.
func maxInWindow(times []time.Time, w time.Duration) int {
	t := append([]time.Time(nil), times...)
	sort.Slice(t, func(i, j int) bool { return t[i].Before(t[j]) })
	best, lo := 0, 0
	for hi := range t {
		for t[hi].Sub(t[lo]) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// writeEach writes the path and data req gives for each i in [from, to]
// with writers goroutines; the first error stops it.
func (e *env) writeEach(ctx context.Context, from, to, writers int, req func(i int) (string, map[string]any)) error {
	return e.eachIndex(ctx, from, to, writers, func(i int) error {
		path, data := req(i)
		if _, err := e.client.Logical().WriteWithContext(ctx, path, data); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	})
}
