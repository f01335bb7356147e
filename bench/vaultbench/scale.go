package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

type scaleOptions struct {
	accounts       int // N: accounts stored before the second batch
	batch          int // accounts per timed batch
	writers        int
	writeTimeout   time.Duration
	fill           string // raw or api
	rotationPeriod string // of every account ("" for none), so the queue holds them
	// profileDir, with -pprof, receives CPU profiles of the plugin and of
	// Vault during the first seconds of each timed batch
	// (cpu-writes-first.pprof, vault-cpu-writes-first.pprof, ...-more...).
	profileDir string
}

// writeBatch is one timed batch of account creations.
type writeBatch struct {
	Stored  int // accounts already stored when the batch started
	Planned int
	Done    int
	Errors  int
	// FirstError is the last line of the first error, e.g. Vault's
	// "context canceled" when a write outlived max_request_duration.
	FirstError string
	Elapsed    time.Duration
	Mean       time.Duration
	P99        time.Duration
	TimedOut   bool
}

func (w writeBatch) rate() float64 {
	if w.Elapsed <= 0 {
		return 0
	}
	return float64(w.Done) / w.Elapsed.Seconds()
}

// startResult is target 5: a reload of the mount with N accounts stored.
type startResult struct {
	Accounts int
	// Reload is how long sys/plugins/reload/backend took to answer.
	Reload time.Duration
	// FirstRead runs from the reload request to the first creds read
	// answered after it returned.
	FirstRead time.Duration
	// Queue runs from the reload request to the plugin's log line
	// "rotation queue initialized" (0 if it never came).
	Queue          time.Duration
	QueueScheduled int // scheduled_accounts of that line, -1 if absent
	PIDs           []int
	NewProcess     bool
	RSS, HWM       int64
	List           time.Duration // `vault list` of the accounts, CLI
	ListCount      int
	Warnings       []string
}

type scaleResult struct {
	First, More writeBatch
	FillMode    string
	Fill        time.Duration
	Start       startResult
	Warnings    []string
}

func scaleName(i int) string     { return fmt.Sprintf("scale-%06d", i) }
func scaleUsername(i int) string { return scaleName(i) + "@bench.example" }

// runScale is targets 4 and 5 on their own mount: a timed batch of
// account writes, a fill up to N accounts, a reload of the mount (start-up
// figures), then a second timed batch with N stored.
func (e *env) runScale(ctx context.Context, o scaleOptions) (*scaleResult, error) {
	const mount = "sf-scale"
	if err := e.mountSalesforce(mount); err != nil {
		return nil, err
	}
	defer e.disable(mount)
	res := &scaleResult{FillMode: o.fill}
	account := func(i int) (string, map[string]any) {
		data := map[string]any{"username": scaleUsername(i), "password": fmt.Sprintf("Scale-Pass-%06d", i), "verify": false}
		if o.rotationPeriod != "" {
			data["rotation_period"] = o.rotationPeriod
		}
		return mount + "/accounts/" + scaleName(i), data
	}

	var raw *rawStore
	var before map[string]bool
	if o.fill == "raw" {
		var err error
		if raw, err = e.rawStoreOf(mount); err != nil {
			return nil, err
		}
		if before, err = raw.walk(ctx); err != nil {
			return nil, err
		}
	}

	progress("writes: first %d accounts (verify=false, %d writers)", o.batch, o.writers)
	stop := e.profileWrites(ctx, o, "first")
	res.First = e.timedWrites(ctx, 1, o.batch, o.writers, 0, account)
	stop()
	if res.First.Done < o.batch {
		return res, fmt.Errorf("first batch: %d of %d writes succeeded", res.First.Done, o.batch)
	}

	fillFrom, fillTo := o.batch+1, o.accounts
	progress("writes: filling to %d accounts (%s)", o.accounts, o.fill)
	start := time.Now()
	switch o.fill {
	case "api":
		if err := e.writeEach(ctx, fillFrom, fillTo, o.writers, account); err != nil {
			return res, err
		}
	case "raw":
		warnings, err := raw.fill(ctx, before, o.batch, fillFrom, fillTo, o.writers)
		res.Warnings = append(res.Warnings, warnings...)
		if err != nil {
			return res, err
		}
	default:
		return res, fmt.Errorf("-fill must be raw or api, not %q", o.fill)
	}
	res.Fill = time.Since(start)

	res.Start = e.measureStart(ctx, mount, max(o.accounts, o.batch))

	progress("writes: %d more with %d stored (stops after %s)", o.batch, max(o.accounts, o.batch), o.writeTimeout)
	stop = e.profileWrites(ctx, o, "more")
	res.More = e.timedWrites(ctx, o.accounts+1, o.accounts+o.batch, o.writers, o.writeTimeout, account)
	stop()
	res.More.Stored = max(o.accounts, o.batch)
	return res, nil
}

// profileWrites starts a CPU profile of the plugin for the first seconds of
// a write batch (with -pprof); the returned func waits for it.
func (e *env) profileWrites(ctx context.Context, o scaleOptions, which string) func() {
	if e.pprofAddr == "" || o.profileDir == "" {
		return func() {}
	}
	plugin, vault := make(chan error, 1), make(chan error, 1)
	go func() {
		plugin <- e.cpuProfile(ctx, 2*time.Second, filepath.Join(o.profileDir, "cpu-writes-"+which+".pprof"))
	}()
	go func() {
		vault <- e.vaultCPUProfile(ctx, 2*time.Second, filepath.Join(o.profileDir, "vault-cpu-writes-"+which+".pprof"))
	}()
	return func() {
		for _, err := range []error{<-plugin, <-vault} {
			if err != nil {
				progress("warning: CPU profile of the %s write batch: %v", which, err)
			}
		}
	}
}

// timedWrites creates accounts from..to with writers goroutines, starting
// no new write after limit (0: no limit).
func (e *env) timedWrites(ctx context.Context, from, to, writers int, limit time.Duration, req func(i int) (string, map[string]any)) writeBatch {
	out := writeBatch{Stored: from - 1, Planned: to - from + 1}
	var mu sync.Mutex
	var lat []time.Duration
	next := make(chan int)
	start := time.Now()
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				path, data := req(i)
				t := time.Now()
				_, err := e.client.Logical().WriteWithContext(ctx, path, data)
				d := time.Since(t)
				mu.Lock()
				if err != nil {
					if out.Errors == 0 {
						out.FirstError = lastLine(err.Error())
						progress("warning: writing %s after %s: %s", path, d.Round(time.Millisecond), out.FirstError)
					}
					out.Errors++
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	for i := from; i <= to; i++ {
		if (limit > 0 && time.Since(start) > limit) || ctx.Err() != nil {
			out.TimedOut = true
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	out.Elapsed = time.Since(start)
	out.Done = len(lat)
	if len(lat) > 0 {
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		out.Mean = sum / time.Duration(len(lat))
		out.P99 = quantile(lat, 0.99)
	}
	return out
}

// lastLine is the last non-empty line of an API error, which names the
// cause (the first lines repeat the URL).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(lines[len(lines)-1]), "* "))
}

// eachIndex runs fn for i in [from, to] with workers goroutines; the first
// error stops it.
func (e *env) eachIndex(ctx context.Context, from, to, workers int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := from; i <= to; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return first
}

// measureStart reloads the mount and times what an operator waits for
// after a restart: the first creds read, the rotation queue (from the
// plugin's log line), memory and a full listing.
func (e *env) measureStart(ctx context.Context, mount string, n int) startResult {
	out := startResult{Accounts: n, QueueScheduled: -1}
	pidsBefore := e.pluginPIDs()
	offset := fileSize(e.vaultLog)
	progress("start: reloading %s/ with %d accounts", mount, n)
	t0 := time.Now()
	if _, err := e.client.Sys().ReloadPluginWithContext(ctx, &api.ReloadPluginInput{Mounts: []string{mount + "/"}}); err != nil {
		out.Warnings = append(out.Warnings, fmt.Sprintf("reload: %v", err))
		return out
	}
	out.Reload = time.Since(t0)
	for {
		code, err := e.get(ctx, mount+"/creds/"+scaleName(1))
		if err == nil && code == http.StatusOK {
			out.FirstRead = time.Since(t0)
			break
		}
		if time.Since(t0) > 5*time.Minute || ctx.Err() != nil {
			out.Warnings = append(out.Warnings, fmt.Sprintf("no creds read answered within 5m of the reload (last: %d %v)", code, err))
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for {
		at, scheduled, ok := findQueueLine(e.vaultLog, offset)
		if ok {
			out.Queue = max(at.Sub(t0), 0)
			out.QueueScheduled = scheduled
			break
		}
		if time.Since(t0) > 5*time.Minute || ctx.Err() != nil {
			out.Warnings = append(out.Warnings, `no "rotation queue initialized" line in Vault's log within 5m of the reload`)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	out.PIDs = e.pluginPIDs()
	for _, pid := range out.PIDs {
		if !slices.Contains(pidsBefore, pid) {
			out.NewProcess = true
		}
		rss, hwm, err := procMemory(pid)
		if err == nil {
			out.RSS += rss
			out.HWM += hwm
		}
	}
	if len(out.PIDs) == 0 {
		out.Warnings = append(out.Warnings, "no plugin process found")
	}

	cmd := exec.CommandContext(ctx, e.vaultBin, "list", "-format=json", mount+"/accounts")
	cmd.Env = append(e.baseEnv(), "VAULT_ADDR="+e.vaultAddr, "VAULT_TOKEN="+rootToken)
	t := time.Now()
	stdout, err := cmd.Output()
	out.List = time.Since(t)
	var names []string
	if err == nil {
		err = json.Unmarshal(stdout, &names)
	}
	if err != nil {
		out.Warnings = append(out.Warnings, fmt.Sprintf("vault list %s/accounts: %v", mount, err))
	}
	out.ListCount = len(names)
	return out
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

var (
	scheduledRe   = regexp.MustCompile(`scheduled_accounts=(\d+)`)
	pluginStampRe = regexp.MustCompile(` timestamp=(\S+)`)
)

// findQueueLine looks in Vault's log, from offset on, for the plugin's
// "rotation queue initialized" line and returns when it was logged.
func findQueueLine(path string, offset int64) (time.Time, int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, 0, false
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return time.Time{}, 0, false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if at, n, ok := parseQueueLine(sc.Text()); ok {
			return at, n, true
		}
	}
	return time.Time{}, 0, false
}

// parseQueueLine reads a Vault log line such as
//
//	2025-11-30T06:10:00.123Z [INFO]  secrets.vault-plugin-secrets-salesforce...: rotation queue initialized: scheduled_accounts=10000 timestamp=...
func parseQueueLine(line string) (time.Time, int, bool) {
	if !strings.Contains(line, "rotation queue initialized") {
		return time.Time{}, 0, false
	}
	// The plugin's own timestamp, when its line carries one, is when it
	// logged; the one at the start is when Vault copied the line.
	var at time.Time
	var err error
	if m := pluginStampRe.FindStringSubmatch(line); m != nil {
		at, err = time.Parse(time.RFC3339Nano, m[1])
	} else {
		stamp, _, _ := strings.Cut(line, " ")
		at, err = time.Parse("2006-01-02T15:04:05.000Z0700", stamp)
	}
	if err != nil {
		return time.Time{}, 0, false
	}
	n := -1
	if m := scheduledRe.FindStringSubmatch(line); m != nil {
		n, _ = strconv.Atoi(m[1])
	}
	return at, n, true
}
