package main

import (
	"fmt"
	"html"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything a run measured, printed as text and as Markdown.
type report struct {
	Command  string
	Started  time.Time
	Machine  string
	LoadAvg  [2]string // at start and end
	Versions string
	Reads    readOptions
	Pairs    []pairResult
	Rotation *rotationResult
	RotOpts  rotationOptions
	Scale    *scaleResult
	ScaleOpt scaleOptions
	Errors   []string
}

func machineInfo() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				var kb float64
				fmt.Sscan(f[1], &kb)
				mem = fmt.Sprintf(", %.1f GiB RAM", kb/1024/1024)
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d CPUs (%s)%s, Linux %s", runtime.NumCPU(), model, mem, strings.TrimSpace(string(kernel)))
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

func versions(e *env) string {
	commit := "unknown commit"
	if out, err := exec.Command("git", "-C", e.root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", e.root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			commit += " with uncommitted changes"
		}
	}
	vault := "Vault ?"
	if out, err := exec.Command(e.vaultBin, "version").Output(); err == nil {
		vault = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return fmt.Sprintf("%s %s (commit %s), %s, %s", pluginName, e.version, commit, vault, runtime.Version())
}

func verdict(ok bool) string {
	if ok {
		return "holds"
	}
	return "BELOW TARGET"
}

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func spread(r []float64) string {
	if len(r) == 0 {
		return "-"
	}
	lo, hi := r[0], r[0]
	for _, v := range r {
		lo, hi = min(lo, v), max(hi, v)
	}
	return fmt.Sprintf("%.2f-%.2f", lo, hi)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// readRow is one table row, shared by the text and Markdown forms.
func readRow(p pairResult) []string {
	target, ok := "-", ""
	if p.Pair.Target > 0 {
		target = fmt.Sprintf(">= %.2fx", p.Pair.Target)
		ok = verdict(p.Ratio() >= p.Pair.Target)
	}
	errs := ""
	if n := sideErrors(p.A) + sideErrors(p.B); n > 0 {
		errs = fmt.Sprintf(" (%d errors)", n)
	}
	return []string{
		p.Pair.ALabel, fmt.Sprintf("%.0f", sideRate(p.A)), ms(sideLatency(p.A, 0.5)), ms(sideLatency(p.A, 0.99)),
		p.Pair.BLabel, fmt.Sprintf("%.0f", sideRate(p.B)), ms(sideLatency(p.B, 0.5)), ms(sideLatency(p.B, 0.99)),
		fmt.Sprintf("%.2fx", p.Ratio()), spread(p.roundRatios()), target, ok + errs,
	}
}

var readHeader = []string{"path (A)", "req/s", "p50", "p99", "reference (B)", "req/s", "p50", "p99", "A/B", "per round", "target", ""}

// writeText prints the report for a terminal.
func (r *report) writeText(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n%s\nmachine: %s; load average %s at start, %s at end\n", r.Command, r.Versions, r.Machine, r.LoadAvg[0], r.LoadAvg[1])
	if len(r.Pairs) > 0 {
		fmt.Fprintf(w, "\nReads through one Vault dev server: %d concurrent HTTP readers, %d rounds of %s per side in alternation (A B A B ...)\n",
			r.Reads.readers, r.Reads.rounds, r.Reads.round)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(readHeader, "\t"))
		for _, p := range r.Pairs {
			fmt.Fprintln(tw, strings.Join(readRow(p), "\t"))
		}
		tw.Flush()
	}
	for _, line := range r.scaleLines() {
		fmt.Fprintln(w, line)
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, "ERROR:", e)
	}
}

// scaleLines are targets 3 to 5, one figure per line, in plain text that
// also reads as a Markdown list.
func (r *report) scaleLines() []string {
	var out []string
	if rr := r.Rotation; rr != nil {
		out = append(out, "", fmt.Sprintf("(3) Rotation at scale: %d accounts due at once, emulator latency %s per call, max_concurrent_rotations=%d",
			rr.Accounts, rr.Latency, rr.Concurrency))
		var per, once []string
		whole := 0
		for _, ep := range sortedKeys(rr.PerRotation) {
			per = append(per, fmt.Sprintf("%s %d", ep, rr.PerRotation[ep]))
			whole += rr.PerRotation[ep]
		}
		for _, ep := range sortedKeys(rr.Once) {
			once = append(once, fmt.Sprintf("%s x%d", ep, rr.Once[ep]))
		}
		out = append(out,
			fmt.Sprintf("- rotated: %d of %d%s", rr.Rotated, rr.Accounts, map[bool]string{true: " (timed out)", false: ""}[rr.TimedOut]),
			fmt.Sprintf("- Salesforce calls per rotation (emulator counters / %d): %s = %d round trips", rr.Accounts, strings.Join(per, ", "), whole))
		if len(once) > 0 {
			out = append(out, fmt.Sprintf("- calls beyond those: %s (not per rotation; counted in the bound as %d calls in all, %.3f round trips per rotation)",
				strings.Join(once, ", "), rr.TotalCalls, rr.RoundTrips))
		} else {
			out = append(out, "- calls beyond those: none")
		}
		ratio := safeDiv(rr.Total.Seconds(), rr.Bound.Seconds())
		boundLine := fmt.Sprintf("- bound: %.3f x %s x %d / %d = %s", rr.RoundTrips, rr.Latency, rr.Accounts, rr.Concurrency, rr.ConcBound.Round(time.Millisecond))
		if rr.RPS > 0 {
			boundLine += fmt.Sprintf("; at requests_per_second=%d, %d calls take %s; the bound is the larger, %s",
				rr.RPS, rr.TotalCalls, rr.RateBound.Round(time.Millisecond), rr.Bound.Round(time.Millisecond))
		}
		rateOK := "no per-org request rate read back"
		if rr.RPS > 0 {
			rateOK = fmt.Sprintf("requests_per_second=%d: %s", rr.RPS, verdict(rr.MaxRate <= rr.RPS))
		}
		out = append(out, boundLine,
			fmt.Sprintf("- total, from due to the end of the last call: %s = %.2fx the bound (target <= 1.25x: %s); first call %s after due",
				rr.Total.Round(time.Millisecond), ratio, verdict(ratio > 0 && ratio <= 1.25), rr.FirstCall.Round(time.Millisecond)),
			fmt.Sprintf("- max request rate at the emulator: %d calls in one second (%s); rate settings read back from config/rotation: %s",
				rr.MaxRate, rateOK, formatSettings(rr.RateSettings)))
		for _, w := range rr.Warnings {
			out = append(out, "- warning: "+w)
		}
	}
	if s := r.Scale; s != nil {
		ratio := safeDiv(s.More.rate(), s.First.rate())
		out = append(out, "", fmt.Sprintf("(4) Account writes: verify=false, %d concurrent writers, rotation_period=%q", r.ScaleOpt.writers, r.ScaleOpt.rotationPeriod),
			"- "+batchLine("first", s.First),
			"- "+batchLine("more", s.More),
			fmt.Sprintf("- rate ratio: %.2fx (target >= 0.90x: %s)", ratio, verdict(ratio >= 0.9)),
			fmt.Sprintf("- fill from %d to %d accounts: %s (%s)", s.First.Planned, s.Start.Accounts, ms(s.Fill), fillHow(s.FillMode)))
		for _, w := range s.Warnings {
			out = append(out, "- warning: "+w)
		}
		st := s.Start
		queue := "not seen"
		if st.Queue > 0 {
			queue = fmt.Sprintf("%s (scheduled_accounts=%d)", ms(st.Queue), st.QueueScheduled)
		}
		proc := "same process"
		if st.NewProcess {
			proc = "new process"
		}
		readOK := st.FirstRead > 0 && st.FirstRead <= 3*time.Second && st.Queue > 0 && st.Queue <= 3*time.Second
		out = append(out, "", fmt.Sprintf("(5) Mount start with %d accounts (sys/plugins/reload/backend of the mount)", st.Accounts),
			fmt.Sprintf("- reload answered after %s; first creds read answered %s after the reload request; rotation queue rebuilt after %s (target: both <= 3s: %s)",
				ms(st.Reload), ms(st.FirstRead), queue, verdict(readOK)),
			fmt.Sprintf("- plugin RSS %s, peak %s (pids %v, %s; target <= 200 MiB: %s)", mib(st.RSS), mib(st.HWM), st.PIDs, proc, verdict(st.RSS > 0 && st.RSS <= 200<<20)),
			fmt.Sprintf("- vault list of the accounts: %d names in %s (CLI, process start included)", st.ListCount, ms(st.List)))
		for _, w := range st.Warnings {
			out = append(out, "- warning: "+w)
		}
	}
	return out
}

func fillHow(mode string) string {
	if mode == "raw" {
		return "raw: copies of an engine-written account through sys/raw, not timed as writes"
	}
	return "api: account writes through the engine"
}

func batchLine(which string, b writeBatch) string {
	cut := ""
	if b.TimedOut {
		cut = " (stopped at the time limit)"
	}
	errs := ""
	if b.Errors > 0 {
		errs = fmt.Sprintf(", %d failed (first: %s)", b.Errors, b.FirstError)
	}
	if which == "first" {
		return fmt.Sprintf("first %d accounts: %s writes/s, %s per write on average (p99 %s)%s%s", b.Done, rate(b.rate()), ms(b.Mean), ms(b.P99), errs, cut)
	}
	return fmt.Sprintf("%d more with %d stored: %s writes/s, %s per write on average (p99 %s)%s%s", b.Done, b.Stored, rate(b.rate()), ms(b.Mean), ms(b.P99), errs, cut)
}

// rate formats a small rate with enough digits to compare.
func rate(r float64) string {
	if r < 10 {
		return fmt.Sprintf("%.2f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

func formatSettings(m map[string]any) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, ", ") + " (requests_per_minute spaces rotation starts; requests_per_second limits every Salesforce call)"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeMarkdown writes the results section of docs/performance.md.
func (r *report) writeMarkdown(w io.Writer, svgName string) {
	fmt.Fprintf(w, "Command: `%s`\n\n", r.Command)
	fmt.Fprintf(w, "Run: %s; %s.\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Versions)
	fmt.Fprintf(w, "Machine: %s; load average %s at start, %s at end.\n\n", r.Machine, r.LoadAvg[0], r.LoadAvg[1])
	if len(r.Pairs) > 0 {
		fmt.Fprintf(w, "Reads: %d concurrent HTTP readers, %d rounds of %s per side in alternation (A B A B ...).\n\n",
			r.Reads.readers, r.Reads.rounds, r.Reads.round)
		fmt.Fprintln(w, "| "+strings.Join(readHeader[:len(readHeader)-1], " | ")+" | |")
		fmt.Fprintln(w, strings.Repeat("|---", len(readHeader))+"|")
		for _, p := range r.Pairs {
			row := readRow(p)
			for i := range row {
				row[i] = mdText(row[i])
			}
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
		if svgName != "" {
			fmt.Fprintf(w, "\n![Throughput per path](%s)\n", svgName)
		}
	}
	for _, line := range r.scaleLines() {
		if strings.HasPrefix(line, "(") {
			line = "**" + line + "**\n"
		}
		fmt.Fprintln(w, mdText(line))
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, "\nError:", e)
	}
}

// mdText makes a line of the text report Markdown: comparison signs as
// symbols, angle brackets escaped.
func mdText(s string) string {
	return strings.NewReplacer(">=", "≥", "<=", "≤", "<", "&lt;", ">", "&gt;").Replace(s)
}

// svgChart draws the throughput of every path, A above its reference B,
// as horizontal bars on one scale, in plain SVG (no tool needed).
func svgChart(pairs []pairResult, title string) string {
	const (
		width   = 760
		labelW  = 250
		barMaxW = 400
		barH    = 18
		gap     = 4
		groupG  = 16
		top     = 44
	)
	maxRate := 0.0
	for _, p := range pairs {
		maxRate = max(maxRate, sideRate(p.A), sideRate(p.B))
	}
	if maxRate == 0 {
		maxRate = 1
	}
	height := top + len(pairs)*(2*barH+gap+groupG) + 24
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="10" y="36" fill="#555555">requests per second: each path (blue) above its reference (grey), the ratio A/B at the right</text>`+"\n")
	y := top
	for _, p := range pairs {
		for i, side := range []struct {
			label string
			rate  float64
			color string
		}{{p.Pair.ALabel, sideRate(p.A), "#3b6fb6"}, {p.Pair.BLabel, sideRate(p.B), "#a0a0a0"}} {
			w := int(side.rate / maxRate * barMaxW)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+barH-5, html.EscapeString(side.label))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", labelW, y, max(w, 1), barH, side.color)
			fmt.Fprintf(&b, `<text x="%d" y="%d">%.0f</text>`+"\n", labelW+max(w, 1)+4, y+barH-5, side.rate)
			if i == 0 {
				fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-weight="bold">%.2fx</text>`+"\n", width-10, y+barH+gap/2+4, p.Ratio())
			}
			y += barH + gap
		}
		y += groupG - gap
	}
	b.WriteString("</svg>\n")
	return b.String()
}
