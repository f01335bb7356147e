// Command vaultbench is the real-Vault half of `make bench` (issue 12): it
// builds the plugin and the no-op reference plugin (bench/noop-plugin),
// starts one Vault dev server and the Salesforce emulator in-process,
// mounts both plugins and KV-v2, and measures
//
//   - reads: creds, token (cache warm), accounts and KV-v2 against the
//     no-op plugin, with concurrent HTTP readers in alternating rounds,
//     printed as req/s and ratios (the machine's load hits both sides);
//   - (3) rotation at scale against a bound, with the emulator slowed down;
//   - (4) account write rate with few and with N accounts stored;
//   - (5) mount start with N accounts: first read, rotation queue, RSS,
//     vault list.
//
// It is a program rather than a test so that `go test ./...` never starts
// it: it runs for minutes and wants a quiet machine. See
// docs/performance.md for the flags and how to read the output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vaultbench:", err)
		os.Exit(1)
	}
}

type phases map[string]bool

var allPhases = []string{"reads", "rotation", "scale"}

func parsePhases(s string) (phases, error) {
	p := phases{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if name == "all" {
			for _, n := range allPhases {
				p[n] = true
			}
			continue
		}
		ok := false
		for _, n := range allPhases {
			ok = ok || n == name
		}
		if !ok {
			return nil, fmt.Errorf("-phases: unknown phase %q (want %s or all)", name, strings.Join(allPhases, ", "))
		}
		p[name] = true
	}
	return p, nil
}

func parseKV(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vaultbench", flag.ContinueOnError)
	var (
		phaseList = fs.String("phases", "all", "what to run: reads, rotation, scale (comma-separated) or all")
		readers   = fs.Int("readers", 16, "concurrent HTTP readers")
		round     = fs.Duration("round", 3*time.Second, "length of one round of one side")
		rounds    = fs.Int("rounds", 4, "rounds per side, alternating A B A B ...")
		warmup    = fs.Duration("warmup", time.Second, "unmeasured reads of each side before its rounds")

		rotAccounts    = fs.Int("rot-accounts", 1000, "(3) accounts due at once")
		rotLatency     = fs.Duration("rot-latency", 50*time.Millisecond, "(3) latency the emulator adds to every Salesforce call")
		rotConcurrency = fs.Int("rot-concurrency", 16, "(3) config/rotation max_concurrent_rotations")
		rotRPM         = fs.Int("rot-rpm", 60000, "(3) config/rotation requests_per_minute (rotation starts per minute; high so it does not bind)")
		rotRPS         = fs.Int("rot-rps", 1000, "(3) config/rotation requests_per_second, the per-org request rate (1000: over three times what 16 rotations at 50ms make, so calls seldom queue for it; 0: the engine's default)")
		rotConfig      = fs.String("rot-config", "", "(3) more config/rotation fields, key=value,... (e.g. a per-org request rate once the engine has one)")
		rotTimeout     = fs.Duration("rot-timeout", 10*time.Minute, "(3) give up waiting for the rotations after this")

		accounts     = fs.Int("accounts", 0, "(4, 5) N, the accounts stored before the second write batch and at mount start (default 10000, or 100000 with -full)")
		full         = fs.Bool("full", false, "(4, 5) the full size of issue 12: N=100000")
		batch        = fs.Int("write-batch", 1000, "(4) accounts per timed write batch")
		writers      = fs.Int("writers", 16, "(3, 4) concurrent writers")
		writeTimeout = fs.Duration("write-timeout", time.Minute, "(4) start no write of the second batch after this (its rate is then from the writes done)")
		fill         = fs.String("fill", "api", "(4, 5) how to go from the first batch to N accounts: api (write each through the engine) or raw (clone an engine-written account, index keys included, through sys/raw)")
		scalePeriod  = fs.String("scale-rotation-period", "720h", "(4, 5) rotation_period of the scale accounts, so the rotation queue holds them (\"\" for none)")

		pprof    = fs.Bool("pprof", false, "build the plugin with -tags pprof and save CPU profiles of the plugin process during the creds and token rounds, the rotations and the write batches (in -out)")
		outDir   = fs.String("out", "", "directory for results.md, throughput.svg, profiles and vault.log (default .bench in the repository)")
		svgPath  = fs.String("svg", "", "also write the chart here (e.g. docs/performance.svg)")
		logLevel = fs.String("vault-log-level", "info", "Vault server log level (the plugin's rotation queue line is at info)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ph, err := parsePhases(*phaseList)
	if err != nil {
		return err
	}
	extra, err := parseKV(*rotConfig)
	if err != nil {
		return fmt.Errorf("-rot-config: %w", err)
	}
	if *accounts == 0 {
		*accounts = 10000
		if *full {
			*accounts = 100000
		}
	}
	if *accounts < *batch {
		return fmt.Errorf("-accounts (%d) must be at least -write-batch (%d)", *accounts, *batch)
	}

	rep := &report{
		Command: "go run ./bench/vaultbench " + strings.Join(args, " "),
		Started: time.Now(),
		Machine: machineInfo(),
		LoadAvg: [2]string{loadAvg(), ""},
		Reads:   readOptions{readers: *readers, round: *round, rounds: *rounds, warmup: *warmup},
		RotOpts: rotationOptions{accounts: *rotAccounts, latency: *rotLatency, concurrency: *rotConcurrency, rpm: *rotRPM, rps: *rotRPS,
			extra: extra, writers: *writers, timeout: *rotTimeout},
		ScaleOpt: scaleOptions{accounts: *accounts, batch: *batch, writers: *writers, writeTimeout: *writeTimeout,
			fill: *fill, rotationPeriod: *scalePeriod},
	}
	rep.Command = strings.TrimSpace(rep.Command)

	rotUsers := 0
	if ph["rotation"] {
		rotUsers = *rotAccounts
	}
	e, err := startEnv(ctx, envOptions{pprof: *pprof, rotUsers: rotUsers, vaultLogLvl: *logLevel})
	if e != nil {
		defer func() {
			e.stop()
			if err := os.RemoveAll(e.dir); err != nil {
				progress("warning: %v", err)
			}
		}()
	}
	if err != nil {
		return err
	}
	if *outDir == "" {
		*outDir = filepath.Join(e.root, ".bench")
	}
	if *pprof {
		rep.RotOpts.profileDir, rep.RotOpts.profileFor = *outDir, 15*time.Second
		rep.ScaleOpt.profileDir = *outDir
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	rep.Reads.outDir = *outDir
	rep.Versions = versions(e)
	progress("Vault at %s, emulator at %s, output in %s", e.vaultAddr, e.loginURL, *outDir)

	// The scale phase runs first, while no other mount shares the
	// multiplexed plugin process, so its RSS is the N accounts' alone.
	if ph["scale"] {
		res, err := e.runScale(ctx, rep.ScaleOpt)
		rep.Scale = res
		if err != nil {
			rep.Errors = append(rep.Errors, "scale: "+err.Error())
		}
	}
	if ph["rotation"] && ctx.Err() == nil {
		res, err := e.runRotation(ctx, rep.RotOpts)
		rep.Rotation = res
		if err != nil {
			rep.Errors = append(rep.Errors, "rotation: "+err.Error())
		}
	}
	if ph["reads"] && ctx.Err() == nil {
		// With -pprof, the next plugin process must get the pprof port.
		e.waitNoPluginProcess(10 * time.Second)
		pairs, err := e.setupReads(ctx)
		if err == nil {
			rep.Pairs, err = e.runPairs(ctx, pairs, rep.Reads)
		}
		if err != nil {
			rep.Errors = append(rep.Errors, "reads: "+err.Error())
		}
	}
	rep.LoadAvg[1] = loadAvg()

	rep.writeText(os.Stdout)
	return errors.Join(rep.save(e, *outDir, *svgPath), ctx.Err())
}

// save writes results.md, the chart and Vault's log to dir.
func (r *report) save(e *env, dir, extraSVG string) error {
	var errs []error
	svgName := ""
	if len(r.Pairs) > 0 {
		svg := svgChart(r.Pairs, fmt.Sprintf("Reads through one Vault dev server, %d concurrent readers", r.Reads.readers))
		svgName = "throughput.svg"
		errs = append(errs, os.WriteFile(filepath.Join(dir, svgName), []byte(svg), 0o644))
		if extraSVG != "" {
			errs = append(errs, os.WriteFile(extraSVG, []byte(svg), 0o644))
		}
	}
	var md strings.Builder
	r.writeMarkdown(&md, svgName)
	errs = append(errs, os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644))
	if data, err := os.ReadFile(e.vaultLog); err == nil {
		errs = append(errs, os.WriteFile(filepath.Join(dir, "vault.log"), data, 0o644))
	}
	progress("wrote %s", dir)
	return errors.Join(errs...)
}

// waitNoPluginProcess waits for Salesforce plugin processes of earlier
// phases to exit.
func (e *env) waitNoPluginProcess(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for len(e.pluginPIDs()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}
