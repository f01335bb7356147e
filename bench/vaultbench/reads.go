package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
)

// readPair is one line of the throughput table: a path of the engine (A)
// against its reference (B), measured in alternation.
type readPair struct {
	Name   string  // short id, also in profile file names
	ALabel string  // what A is, as the table prints it
	APath  string  // Vault API path of A
	BLabel string  // the reference
	BPath  string  // Vault API path of B
	Target float64 // minimum A/B ratio issue 12 asks for; 0: none
	// Profile: with -pprof, the plugin's CPU is profiled during A's rounds.
	Profile bool
}

// sample is one round of one side.
type sample struct {
	N       int
	Errors  int
	Elapsed time.Duration
	// Latencies of the successful reads of the round.
	Latencies []time.Duration
}

func (s sample) rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.N) / s.Elapsed.Seconds()
}

// pairResult is a pair's rounds.
type pairResult struct {
	Pair readPair
	A, B []sample
}

// rate is the side's throughput over all its rounds.
func sideRate(rounds []sample) float64 {
	var n int
	var d time.Duration
	for _, s := range rounds {
		n += s.N
		d += s.Elapsed
	}
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func sideErrors(rounds []sample) int {
	n := 0
	for _, s := range rounds {
		n += s.Errors
	}
	return n
}

// sideLatency is the q-quantile of every latency of the side.
func sideLatency(rounds []sample, q float64) time.Duration {
	var all []time.Duration
	for _, s := range rounds {
		all = append(all, s.Latencies...)
	}
	return quantile(all, q)
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	if i < 0 {
		i = 0
	}
	return s[i]
}

// Ratio is A's throughput over B's, over all rounds.
func (p pairResult) Ratio() float64 {
	b := sideRate(p.B)
	if b == 0 {
		return 0
	}
	return sideRate(p.A) / b
}

// roundRatios are the per-round A/B ratios (round i of A against round i
// of B, which ran right after it), to show the spread.
func (p pairResult) roundRatios() []float64 {
	var out []float64
	for i := range p.A {
		if i < len(p.B) && p.B[i].rate() > 0 {
			out = append(out, p.A[i].rate()/p.B[i].rate())
		}
	}
	return out
}

type readOptions struct {
	readers int
	round   time.Duration
	rounds  int
	warmup  time.Duration
	outDir  string
}

// runPairs drives every pair: a warm-up of each side, then rounds of A
// and B in alternation, so both see the same machine load.
func (e *env) runPairs(ctx context.Context, pairs []readPair, o readOptions) ([]pairResult, error) {
	var results []pairResult
	for _, p := range pairs {
		progress("reads: %s vs %s (%d rounds of %s per side, %d readers)", p.APath, p.BPath, o.rounds, o.round, o.readers)
		for _, path := range []string{p.APath, p.BPath} {
			if s := e.load(ctx, path, o.readers, o.warmup); s.N == 0 {
				return nil, fmt.Errorf("warm-up: no successful read of %s (%d errors)", path, s.Errors)
			}
		}
		res := pairResult{Pair: p}
		for r := 1; r <= o.rounds; r++ {
			var prof chan error
			if p.Profile && e.pprofAddr != "" {
				prof = make(chan error, 1)
				file := filepath.Join(o.outDir, fmt.Sprintf("cpu-%s-r%d.pprof", p.Name, r))
				go func() { prof <- e.cpuProfile(ctx, o.round, file) }()
			}
			a := e.load(ctx, p.APath, o.readers, o.round)
			if prof != nil {
				if err := <-prof; err != nil {
					progress("warning: CPU profile of %s round %d: %v", p.Name, r, err)
				}
			}
			b := e.load(ctx, p.BPath, o.readers, o.round)
			res.A = append(res.A, a)
			res.B = append(res.B, b)
			progress("  round %d: %.0f vs %.0f req/s (%.2f×)", r, a.rate(), b.rate(), safeDiv(a.rate(), b.rate()))
		}
		results = append(results, res)
	}
	return results, nil
}

// load runs readers goroutines that GET path back to back for d.
func (e *env) load(ctx context.Context, path string, readers int, d time.Duration) sample {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		out  sample
		errs atomic.Int64
	)
	start := time.Now()
	deadline := start.Add(d)
	var last atomic.Int64
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t := time.Now()
				code, err := e.get(ctx, path)
				done := time.Now()
				if err != nil || code != http.StatusOK {
					errs.Add(1)
					continue
				}
				lat = append(lat, done.Sub(t))
				for {
					prev := last.Load()
					if done.UnixNano() <= prev || last.CompareAndSwap(prev, done.UnixNano()) {
						break
					}
				}
			}
			mu.Lock()
			out.Latencies = append(out.Latencies, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.N = len(out.Latencies)
	out.Errors = int(errs.Load())
	if l := last.Load(); l > 0 {
		out.Elapsed = time.Unix(0, l).Sub(start)
	}
	return out
}

// cpuProfile saves a CPU profile of the plugin process covering d.
func (e *env) cpuProfile(ctx context.Context, d time.Duration, file string) error {
	secs := int(math.Max(1, math.Round(d.Seconds())))
	return saveProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", e.pprofAddr, secs), "", file)
}

// vaultCPUProfile saves a CPU profile of the Vault server covering d
// (sys/pprof, root token).
func (e *env) vaultCPUProfile(ctx context.Context, d time.Duration, file string) error {
	secs := int(math.Max(1, math.Round(d.Seconds())))
	return saveProfile(ctx, fmt.Sprintf("%s/v1/sys/pprof/profile?seconds=%d", e.vaultAddr, secs), rootToken, file)
}

func saveProfile(ctx context.Context, url, token, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// setupReads mounts the Salesforce plugin (account bench, a client
// credentials role bench with the cache warm), the no-op plugin and KV-v2,
// and stores the same payload in noop/entry and kv/data/bench as
// creds/bench answers, so every read returns the same bytes of data.
func (e *env) setupReads(ctx context.Context) ([]readPair, error) {
	if err := e.mountSalesforce("salesforce"); err != nil {
		return nil, err
	}
	integ := e.seedUser("integration@acme.demo")
	if _, err := e.client.Logical().Write("salesforce/accounts/bench", map[string]any{
		"username": integ.Username, "password": integ.Password, "security_token": integ.SecurityToken,
	}); err != nil {
		return nil, fmt.Errorf("writing salesforce/accounts/bench: %w", err)
	}
	if _, err := e.client.Logical().Write("salesforce/roles/bench", map[string]any{"grant_type": "client_credentials"}); err != nil {
		return nil, fmt.Errorf("writing salesforce/roles/bench: %w", err)
	}
	if _, err := e.client.Logical().Read("salesforce/token/bench"); err != nil {
		return nil, fmt.Errorf("warming salesforce/token/bench: %w", err)
	}
	creds, err := e.client.Logical().Read("salesforce/creds/bench")
	if err != nil || creds == nil {
		return nil, fmt.Errorf("reading salesforce/creds/bench: %v", err)
	}

	if err := e.client.Sys().Mount("noop", &api.MountInput{Type: noopName}); err != nil {
		return nil, fmt.Errorf("enabling %s at noop/: %w", noopName, err)
	}
	if _, err := e.client.Logical().Write("noop/entry", creds.Data); err != nil {
		return nil, fmt.Errorf("writing noop/entry: %w", err)
	}

	if err := e.client.Sys().Mount("kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		return nil, fmt.Errorf("enabling kv-v2 at kv/: %w", err)
	}
	// A new KV-v2 mount answers writes only once its upgrade is done.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.client.Logical().Write("kv/data/bench", map[string]any{"data": creds.Data})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("writing kv/data/bench: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	storage := "noop entry (1 storage read)"
	return []readPair{
		{Name: "creds", ALabel: "salesforce creds/<name>", APath: "salesforce/creds/bench", BLabel: storage, BPath: "noop/entry", Target: 1.0, Profile: true},
		{Name: "token", ALabel: "salesforce token/<role> (warm)", APath: "salesforce/token/bench", BLabel: "noop lease (leased read)", BPath: "noop/lease", Target: 0.9, Profile: true},
		{Name: "account", ALabel: "salesforce accounts/<name>", APath: "salesforce/accounts/bench", BLabel: storage, BPath: "noop/entry"},
		{Name: "kv", ALabel: "KV-v2 read", APath: "kv/data/bench", BLabel: storage, BPath: "noop/entry"},
	}, nil
}
