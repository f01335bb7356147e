package docswalk

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// PortMap maps the ports the docs show (8200 for Vault, 8787 for the
// emulator, ...) to the ports a walk really uses, so that walks can run
// beside a developer's `make dev` and each other.
type PortMap map[int]int

var hostPortRE = regexp.MustCompile(`(127\.0\.0\.1|localhost|\[::1\]):(\d{2,5})\b`)

// ToReal rewrites documented loopback ports in a command to the real ones.
func (p PortMap) ToReal(s string) string { return p.rewrite(s, false) }

// ToDoc rewrites real loopback ports in output back to the documented ones.
func (p PortMap) ToDoc(s string) string { return p.rewrite(s, true) }

func (p PortMap) rewrite(s string, toDoc bool) string {
	return hostPortRE.ReplaceAllStringFunc(s, func(hp string) string {
		m := hostPortRE.FindStringSubmatch(hp)
		port, _ := strconv.Atoi(m[2])
		for doc, real := range p {
			from, to := doc, real
			if toDoc {
				from, to = real, doc
			}
			if port == from {
				return m[1] + ":" + strconv.Itoa(to)
			}
		}
		return hp
	})
}

// Values that differ from run to run, replaced by a placeholder on both
// sides before comparing. Order matters: timestamps before hex strings.
var normalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]"), ""},
	{regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})`), "<time>"},
	{regexp.MustCompile(`\b\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\b`), "<time>"},
	{regexp.MustCompile(`\b1\d{12}\b`), "<time>"}, // Unix milliseconds (OAuth issued_at)
	{regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "<uuid>"},
	{regexp.MustCompile(`\b[0-9a-fA-F]{32,}\b`), "<hex>"},
	{regexp.MustCompile(`([A-Za-z0-9])_[0-9a-f]{8}\b`), "${1}_<accessor>"}, // mount accessors
	// Vault lease ids: the last element of a lease path under salesforce/,
	// or a whole line of `vault list sys/leases/lookup/...`.
	{regexp.MustCompile(`\b(salesforce/[A-Za-z0-9_./-]*/)[A-Za-z0-9]{24}\b`), "${1}<lease>"},
	{regexp.MustCompile(`(?m)^(\s*)[A-Za-z0-9]{24}(\s*)$`), "${1}<lease>${2}"},
	// Durations counted down from a server-side time (1h59m59s, 37.92s);
	// whole settings such as 24h, 15m or 0s stay exact.
	{regexp.MustCompile(`\b(?:\d+h)?\d+m\d+(?:\.\d+)?s\b`), "<duration>"},
	{regexp.MustCompile(`\b\d+h\d+(?:\.\d+)?s\b`), "<duration>"},
	{regexp.MustCompile(`\b\d+\.\d+s\b`), "<duration>"},
	{regexp.MustCompile(`\b\d+(?:\.\d+)?(?:ns|µs|us|ms)\b`), "<duration>"}, // log lines
}

// Normalize turns output into the lines that are compared: placeholders
// for run-specific values, runs of blanks collapsed, blank lines dropped.
func Normalize(s string) []string {
	s = strings.ReplaceAll(s, "\r", "")
	for _, n := range normalizers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// wildcard tokens in documented output: a line of only "..." (or "…")
// stands for any number of lines; inside a line they stand for any text.
// <redacted> stands for any non-empty value.
var expectTokenRE = regexp.MustCompile(`<redacted>|\.\.\.|…`)

func isLineWildcard(l string) bool { return l == "..." || l == "…" }

func linePattern(l string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, loc := range expectTokenRE.FindAllStringIndex(l, -1) {
		b.WriteString(regexp.QuoteMeta(l[last:loc[0]]))
		if l[loc[0]:loc[1]] == "<redacted>" {
			b.WriteString(".+")
		} else {
			b.WriteString(".*")
		}
		last = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(l[last:]))
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// Match compares documented output with real output, both normalised. It
// returns "" when they match, else a report of both, normalised (the real
// output must already be redacted: the report is printed).
func Match(documented, real string) string {
	exp, act := Normalize(documented), Normalize(real)
	pats := make([]*regexp.Regexp, len(exp))
	for i, l := range exp {
		if !isLineWildcard(l) {
			pats[i] = linePattern(l)
		}
	}
	// memo[i][j]: exp[i:] matches act[j:]; 0 unknown, 1 yes, 2 no.
	memo := make([][]byte, len(exp)+1)
	for i := range memo {
		memo[i] = make([]byte, len(act)+1)
	}
	best := 0 // the most expected lines matched on any path, for the report
	var match func(i, j int) bool
	match = func(i, j int) bool {
		if i > best {
			best = i
		}
		if i == len(exp) {
			return j == len(act)
		}
		if memo[i][j] != 0 {
			return memo[i][j] == 1
		}
		ok := false
		if pats[i] == nil {
			for k := j; k <= len(act) && !ok; k++ {
				ok = match(i+1, k)
			}
		} else {
			ok = j < len(act) && pats[i].MatchString(act[j]) && match(i+1, j+1)
		}
		memo[i][j] = 2
		if ok {
			memo[i][j] = 1
		}
		return ok
	}
	if match(0, 0) {
		return ""
	}
	var b strings.Builder
	if best < len(exp) {
		fmt.Fprintf(&b, "first documented line not matched: %q\n", exp[best])
	} else {
		b.WriteString("the real output has more lines than documented (end the block with a \"...\" line if it is abridged)\n")
	}
	b.WriteString("--- documented (normalised)\n")
	for _, l := range exp {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("--- real (normalised, secrets redacted)\n")
	for _, l := range act {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}
