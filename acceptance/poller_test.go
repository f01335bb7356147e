package acceptance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// credsPoller reads creds/<name> over and over while a test crashes and
// restarts Vault, and checks every answer against the org: a read may
// serve a password Salesforce no longer accepts only if it says so (a
// warning or a status field about a pending rotation). Reads that fail
// (Vault down) are fine; the engine must never be wrong silently.
type credsPoller struct {
	c     *raftCluster
	org   *privateOrg
	user  string
	path  string
	stopc chan struct{}
	done  chan struct{}

	mu                          sync.Mutex
	reads, failed, raced, noted int
	bad                         []string
}

func startCredsPoller(t *testing.T, c *raftCluster, org *privateOrg, user, path string) *credsPoller {
	p := &credsPoller{c: c, org: org, user: user, path: path, stopc: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *credsPoller) loop() {
	defer close(p.done)
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; ; i++ {
		select {
		case <-p.stopc:
			return
		case <-time.After(100 * time.Millisecond):
		}
		// Round robin over the running nodes: standbys forward reads.
		var nodes []*raftNode
		for _, n := range p.c.nodes {
			if n.running() {
				nodes = append(nodes, n)
			}
		}
		if len(nodes) == 0 {
			continue
		}
		n := nodes[i%len(nodes)]
		before := p.org.emu.Password(p.user)
		served, pending, ok := readCreds(client, n.addr, p.c.rootToken, p.path)
		after := p.org.emu.Password(p.user)
		p.mu.Lock()
		switch {
		case !ok:
			p.failed++
		case served == after:
			p.reads++
		case served == before:
			// Salesforce changed the password while the read ran: the
			// read was right when it started.
			p.reads++
			p.raced++
		case pending:
			p.reads++
			p.noted++
		default:
			p.reads++
			p.bad = append(p.bad, fmt.Sprintf("%s via %s: served a password Salesforce does not accept, without a pending-rotation warning or status",
				time.Now().Format("15:04:05.000"), n.id))
		}
		p.mu.Unlock()
	}
}

// readCreds reads a creds path; ok is false when Vault did not answer 200.
func readCreds(client *http.Client, addr, token, path string) (password string, pending, ok bool) {
	req, err := http.NewRequest(http.MethodGet, addr+"/v1/"+path, nil)
	if err != nil {
		return "", false, false
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := client.Do(req)
	if err != nil {
		return "", false, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", false, false
	}
	var body struct {
		Data     map[string]any `json:"data"`
		Warnings []string       `json:"warnings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", false, false
	}
	password, _ = body.Data["password"].(string)
	return password, readSaysPending(body.Warnings, body.Data), true
}

// pendingWords are the ways a read can say that a rotation is unsettled;
// the wording is the engine's, the substance is checked.
var pendingWords = []string{"pending", "interrupted", "unfinished", "unsettled", "not yet settled", "awaiting",
	"reconcil", "in progress", "may not log in", "may be replaced"}

// readSaysPending reports whether a read flags a rotation whose outcome is
// not settled: a warning saying so, or a status field.
func readSaysPending(warnings []string, data map[string]any) bool {
	says := func(s string) bool {
		s = strings.ToLower(s)
		for _, w := range pendingWords {
			if strings.Contains(s, w) {
				return true
			}
		}
		return false
	}
	for _, w := range warnings {
		if says(w) {
			return true
		}
	}
	for k, v := range data {
		k = strings.ToLower(k)
		if !strings.Contains(k, "status") && !strings.Contains(k, "pending") && !strings.Contains(k, "wal") {
			continue
		}
		switch v := v.(type) {
		case string:
			if says(v) {
				return true
			}
		case bool:
			if v && strings.Contains(k, "pending") {
				return true
			}
		}
	}
	return false
}

// stop ends the poller and returns a summary; bad lists the silent wrong
// reads.
func (p *credsPoller) stop() (summary string, bad []string) {
	select {
	case <-p.stopc:
	default:
		close(p.stopc)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%d reads answered (%d raced a change, %d flagged pending), %d not answered", p.reads, p.raced, p.noted, p.failed),
		append([]string(nil), p.bad...)
}

// reportSilentReads fails the test for the silently wrong reads, naming
// the first few.
func reportSilentReads(t *testing.T, bad []string) {
	t.Helper()
	if len(bad) == 0 {
		return
	}
	show := bad
	if len(show) > 3 {
		show = append(append([]string(nil), bad[:2]...), "...", bad[len(bad)-1])
	}
	t.Errorf("%d creds reads served a password Salesforce no longer accepts without saying so:\n%s", len(bad), strings.Join(show, "\n"))
}
