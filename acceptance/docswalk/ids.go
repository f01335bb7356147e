package docswalk

import (
	"regexp"
	"strings"
)

// LeaseIDs maps the lease ids a doc shows to the ones a walk really got, so
// that a documented command such as `vault lease renew
// salesforce/token/pw/nFz8DuG9vtMJBmSZK1gbOpyg`, which a reader types with
// the id from their own screen, runs with the id the walk's own earlier
// command printed. Ids are learnt from a command's documented and real
// output: lease paths (salesforce/token/<role>/<id>) pair up per prefix in
// order of appearance, and bare ids (the lines of `vault list
// sys/leases/lookup/...`) pair up in order among those not yet known.
type LeaseIDs struct {
	docToReal map[string]string
	realUsed  map[string]bool
}

var (
	leasePathRE = regexp.MustCompile(`\b((?:[A-Za-z0-9_.-]+/)+)([A-Za-z0-9]{24})\b`)
	bareLeaseRE = regexp.MustCompile(`^\s*([A-Za-z0-9]{24})\s*$`)
)

// Learn pairs the lease ids of a command's documented output with those of
// its real output.
func (m *LeaseIDs) Learn(documented, real string) {
	if m.docToReal == nil {
		m.docToReal, m.realUsed = map[string]string{}, map[string]bool{}
	}
	docPaths, realPaths := leasePaths(documented), leasePaths(real)
	for prefix, docIDs := range docPaths {
		m.pair(docIDs, realPaths[prefix])
	}
	m.pair(bareLeases(documented), bareLeases(real))
}

func (m *LeaseIDs) pair(docIDs, realIDs []string) {
	var free []string
	for _, r := range realIDs {
		if !m.realUsed[r] {
			free = append(free, r)
		}
	}
	for _, d := range docIDs {
		if _, known := m.docToReal[d]; known || len(free) == 0 {
			continue
		}
		m.docToReal[d] = free[0]
		m.realUsed[free[0]] = true
		free = free[1:]
	}
}

// Rewrite replaces the documented lease ids in a command with real ones.
func (m *LeaseIDs) Rewrite(command string) string {
	for d, r := range m.docToReal {
		command = regexp.MustCompile(`\b`+regexp.QuoteMeta(d)+`\b`).ReplaceAllString(command, r)
	}
	return command
}

func leasePaths(s string) map[string][]string {
	out := map[string][]string{}
	seen := map[string]bool{}
	for _, m := range leasePathRE.FindAllStringSubmatch(s, -1) {
		if !seen[m[2]] {
			seen[m[2]] = true
			out[m[1]] = append(out[m[1]], m[2])
		}
	}
	return out
}

func bareLeases(s string) []string {
	var ids []string
	for _, l := range strings.Split(s, "\n") {
		if m := bareLeaseRE.FindStringSubmatch(l); m != nil {
			ids = append(ids, m[1])
		}
	}
	return ids
}
