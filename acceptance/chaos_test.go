package acceptance

// Crash at every step of a rotation (issue 10, section 1). A one-node
// Vault on integrated storage is killed with SIGKILL inside each window of
// a password rotation, restarted on the same data and unsealed; then the
// stored password must be exactly what Salesforce holds, nobody locked
// out, no WAL entry left, the next rotation must work, and no read may
// have served a password Salesforce no longer accepts without saying so.
//
// `make test` runs one crash per window (chaosShortCases); `make chaos`
// (CHAOS=all) runs every window x mode x rotation kind.

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// The windows of one rotation, in order.
const (
	winBeforeSend = "before-send" // WAL written, request not sent (plugin pause)
	winInFlight   = "in-flight"   // at Salesforce, not applied yet, lands later (emulator Latency)
	winApplied    = "applied"     // applied, answer not delivered (emulator LatencyAfter)
	winAnswered   = "answered"    // answered, not stored (plugin pause)
	winStored     = "stored"      // stored, WAL not deleted (plugin pause)
)

// Crash modes.
const (
	modeKillVault  = "kill-vault"  // kill -9 of the Vault server
	modeKillPlugin = "kill-plugin" // kill -9 of the plugin process alone
	modeKillTwice  = "kill-twice"  // kill -9 of Vault, and again during its recovery
)

// Rotation kinds.
const (
	kindAdmin = "admin" // account, rotation_method=admin (REST password POST)
	kindSelf  = "self"  // account, rotation_method=self (SOAP changeOwnPassword)
	kindRoot  = "root"  // rotate-root (SOAP changeOwnPassword of config's admin)
)

var (
	chaosWindows = []string{winBeforeSend, winInFlight, winApplied, winAnswered, winStored}
	chaosModes   = []string{modeKillVault, modeKillPlugin, modeKillTwice}
	chaosKinds   = []string{kindAdmin, kindSelf, kindRoot}
)

type chaosCase struct{ kind, window, mode string }

func (cc chaosCase) name() string { return cc.kind + "/" + cc.window + "/" + cc.mode }

// chaosShortCases: one crash per window, covering every kind and mode, for
// make test.
var chaosShortCases = []chaosCase{
	{kindAdmin, winBeforeSend, modeKillTwice},
	{kindAdmin, winInFlight, modeKillVault},
	{kindSelf, winApplied, modeKillVault},
	{kindRoot, winAnswered, modeKillPlugin},
	{kindSelf, winStored, modeKillTwice},
}

func chaosCases() []chaosCase {
	if os.Getenv("CHAOS") != "all" {
		return chaosShortCases
	}
	var all []chaosCase
	for _, k := range chaosKinds {
		for _, w := range chaosWindows {
			for _, m := range chaosModes {
				all = append(all, chaosCase{k, w, m})
			}
		}
	}
	return all
}

const (
	// chaosPause is how long the chaos plugin holds a rotation at a step:
	// long enough to observe the window from outside and kill.
	chaosPause = 4 * time.Second
	// chaosLatency holds a call at the emulator (before or after applying
	// it); below the configured request_timeout (10s).
	chaosLatency = 8 * time.Second
	// settleLimit bounds the wait for recovery: generous, since an engine
	// may keep an unconclusive WAL for request_timeout plus a margin.
	settleLimit = 3 * time.Minute
	// recoveryLoginWait bounds the wait for a recovery's first login:
	// the engine checks a candidate once its WAL entry is older than
	// request_timeout plus a 30s margin (rotation_settle.go).
	recoveryLoginWait = chaosRequestTimeout + 30*time.Second + 20*time.Second
)

// chaosRow is one line of the report.
type chaosRow struct {
	Case       string
	Outcome    string
	Changed    string // "kept" (the old password stayed) or "new"
	Settle     time.Duration
	OrphanGone time.Duration
	// FailedLogins is the user's failed-login count at Salesforce once
	// settled (the org locks out at orgLockoutThreshold).
	FailedLogins int
	Reads        string
}

var chaosReport struct {
	sync.Mutex
	rows []chaosRow
}

// chaosConcurrency is how many crash cases run at once (CHAOS_PARALLEL
// overrides it). A case spends most of its time waiting (for a window, for
// a WAL entry to be old enough to settle), each on its own Vault and org.
func chaosConcurrency(t *testing.T) int {
	if v := os.Getenv("CHAOS_PARALLEL"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CHAOS_PARALLEL=%q: want a positive number", v)
		}
		return n
	}
	return 3
}

// TestChaosCrashWindows crashes Vault (or the plugin) in each window of a
// rotation and checks the recovery.
func TestChaosCrashWindows(t *testing.T) {
	need(t)
	t.Parallel()
	cases := chaosCases()
	t.Cleanup(func() {
		chaosReport.Lock()
		defer chaosReport.Unlock()
		order := map[string]int{}
		for i, cc := range cases {
			order[cc.name()] = i
		}
		sort.SliceStable(chaosReport.rows, func(i, j int) bool {
			return order[chaosReport.rows[i].Case] < order[chaosReport.rows[j].Case]
		})
		var b strings.Builder
		fmt.Fprintf(&b, "\n%-34s %-8s %-5s %10s %10s %6s  %s\n", "kind/window/mode", "outcome", "pw", "settle", "orphan", "failed", "concurrent creds reads")
		for _, r := range chaosReport.rows {
			orphan := "-"
			if r.OrphanGone > 0 {
				orphan = r.OrphanGone.Round(10 * time.Millisecond).String()
			}
			fmt.Fprintf(&b, "%-34s %-8s %-5s %10s %10s %6d  %s\n", r.Case, r.Outcome, r.Changed, r.Settle.Round(10*time.Millisecond), orphan, r.FailedLogins, r.Reads)
		}
		t.Log("crashes per window x mode (pw: Salesforce kept the old password or has the new one; settle: from the restart, or the plugin kill, " +
			"to settled; orphan: the killed Vault's plugin gone after; failed: the user's failed logins at Salesforce)" + b.String())
	})
	// Subtests started from goroutines run at once (not limited by
	// -parallel); the semaphore bounds them.
	sem := make(chan struct{}, chaosConcurrency(t))
	var wg sync.WaitGroup
	for _, cc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(cc.name(), func(t *testing.T) {
				var row chaosRow
				// Deferred: a case that stops with t.Fatal is reported too.
				defer func() {
					row.Case = cc.name()
					row.Outcome = "ok"
					if t.Failed() {
						row.Outcome = "FAIL"
					}
					chaosReport.Lock()
					chaosReport.rows = append(chaosReport.rows, row)
					chaosReport.Unlock()
				}()
				row = runCrashCase(t, cc)
			})
		}()
	}
	wg.Wait()
}

// chaosMount is where the crash tests enable the plugin.
const chaosMount = "salesforce"

// pauseFor names the chaos plugin's pause of a window, if it has one.
func pauseFor(kind, window string) string {
	step := map[string]string{winBeforeSend: "wal-written", winAnswered: "password-changed", winStored: "stored"}[window]
	if step == "" {
		return ""
	}
	if kind == kindRoot {
		step = "root-" + step
	}
	return "SF_CHAOS_PAUSE=" + step + "=" + chaosPause.String()
}

// changeEndpoint is the emulator endpoint that changes the password.
func changeEndpoint(kind string) string {
	if kind == kindAdmin {
		return "rest.password"
	}
	return "soap.changeOwnPassword"
}

func runCrashCase(t *testing.T, cc chaosCase) (row chaosRow) {
	org := newPrivateOrg(t, 1)
	c := newRaftCluster(t, 1)
	node := c.nodes[0]
	var env []string
	if p := pauseFor(cc.kind, cc.window); p != "" {
		env = append(env, p)
	}
	c.mountChaosPlugin(t, chaosMount, env...)
	org.configure(t, c, chaosMount)
	c.writeJSON(t, chaosMount+"/config/rotation", map[string]any{"min_password_lifetime": false})
	uuid := c.mountUUID(t, chaosMount)

	target := demoAdminUser
	rotatePath := chaosMount + "/rotate-root"
	var poller *credsPoller
	if cc.kind != kindRoot {
		target = org.user(1)
		c.writeJSON(t, chaosMount+"/accounts/chaos", map[string]any{
			"username": target, "password": org.emu.Password(target), "rotation_method": cc.kind,
		})
		rotatePath = chaosMount + "/rotate/chaos"
		poller = startCredsPoller(t, c, org, target, chaosMount+"/creds/chaos")
	}
	oldPassword := org.emu.Password(target)
	version := func() int {
		acct, err := c.rawJSON(uuid, "accounts/chaos")
		if err != nil || acct == nil {
			return -1
		}
		return rotAsInt(acct["version"])
	}
	startVersion := version()

	// Arm the window and start the rotation.
	endpoint := changeEndpoint(cc.kind)
	calls, held := org.emu.Calls(endpoint), org.emu.HeldAnswers(endpoint)
	switch cc.window {
	case winInFlight:
		// Salesforce has the whole request and completes it even when
		// the caller is gone: the change lands chaosLatency later.
		org.emu.InjectFault(endpoint, emulator.Fault{Latency: chaosLatency, IgnoreCancel: true, Times: 1})
	case winApplied:
		org.emu.InjectFault(endpoint, emulator.Fault{LatencyAfter: chaosLatency, Times: 1})
	}
	rotation := make(chan cliResult, 1)
	go func() { rotation <- c.run(node, "", "write", "-f", rotatePath) }()

	reached := pollUntil(30*time.Second, func() bool {
		switch cc.window {
		case winBeforeSend:
			keys, _ := c.rawKeys(uuid, "wal/")
			return len(keys) > 0
		case winInFlight:
			return org.emu.Calls(endpoint) > calls
		case winApplied:
			return org.emu.HeldAnswers(endpoint) > held
		case winAnswered:
			return org.emu.Password(target) != oldPassword
		case winStored:
			keys, _ := c.rawKeys(uuid, "wal/")
			if len(keys) == 0 {
				return false
			}
			if cc.kind == kindRoot {
				cfg, _ := c.rawJSON(uuid, "config")
				return cfg != nil && cfg["password"] != oldPassword
			}
			return version() == startVersion+1
		}
		return false
	})
	if !reached {
		select {
		case r := <-rotation:
			t.Fatalf("the rotation never reached the %s window; it ended: %v %s %s", cc.window, r.Err, r.Stdout, r.Stderr)
		default:
		}
		t.Fatalf("the rotation never reached the %s window", cc.window)
	}

	// Crash.
	killedAt := time.Now()
	var settleFrom time.Time
	switch cc.mode {
	case modeKillPlugin:
		node.killPlugin(t)
		settleFrom = time.Now()
	case modeKillVault, modeKillTwice:
		plugins := node.plugins()
		node.kill9()
		row.OrphanGone = waitOrphans(t, plugins, killedAt)
		if cc.mode == modeKillTwice {
			// Catch the recovery inside a Salesforce call: the call is
			// applied (a probe login counted) but its answer held.
			logins := heldLogins(org)
			org.emu.InjectFault("soap.login", emulator.Fault{LatencyAfter: chaosLatency, Times: 1})
			org.emu.InjectFault("oauth.token", emulator.Fault{LatencyAfter: chaosLatency, Times: 1})
			node.restart(t)
			restarted := time.Now()
			// The recovery logs in once the WAL entry is old enough for
			// a rejection to prove something (request_timeout plus the
			// engine's margin); a recovery that needs no login (the
			// password was already stored) ends first.
			var ended bool
			pollUntil(recoveryLoginWait, func() bool {
				if heldLogins(org) > logins {
					return true
				}
				keys, err := c.rawKeys(uuid, "wal/")
				ended = err == nil && len(keys) == 0
				return ended
			})
			switch {
			case heldLogins(org) > logins:
				t.Logf("second kill during recovery: inside a login whose answer was held, %s after the unseal", time.Since(restarted).Round(10*time.Millisecond))
			case ended:
				t.Logf("second kill during recovery: the recovery settled without a login, %s after the unseal", time.Since(restarted).Round(10*time.Millisecond))
			default:
				t.Errorf("second kill during recovery: the recovery neither logged in nor settled within %s of the unseal", recoveryLoginWait)
			}
			plugins = node.plugins()
			second := time.Now()
			node.kill9()
			waitOrphans(t, plugins, second)
			org.emu.ClearFaults()
		}
		settleFrom = time.Now()
		node.restart(t)
	}
	r := <-rotation
	t.Logf("the interrupted rotation's CLI call ended: %v", r.Err)

	// Settled: no WAL entry, and the stored password is Salesforce's.
	silentConfigReads := 0
	stored := func() (string, bool) {
		if cc.kind == kindRoot {
			// Traffic on the mount, as clients would send: after a plugin
			// crash Vault restarts the plugin only for a request (or
			// its once-a-minute rollback tick).
			var read *api.Secret
			if n := c.active(); n != nil {
				read, _ = n.client("").Logical().Read(chaosMount + "/config")
			}
			cfg, err := c.rawJSON(uuid, "config")
			if err != nil || cfg == nil {
				return "", false
			}
			pw, _ := cfg["password"].(string)
			// Only rotate-root writes its WAL entry, so one present after
			// the read was there during it: a read that did not call a
			// wrong admin password pending was silent about it.
			if read != nil && read.Data["root_rotation_status"] == nil && pw != org.emu.Password(target) {
				if keys, err := c.rawKeys(uuid, "wal/"); err == nil && len(keys) > 0 {
					silentConfigReads++
				}
			}
			return pw, true
		}
		n := c.active()
		if n == nil {
			return "", false
		}
		s, err := n.client("").Logical().Read(chaosMount + "/creds/chaos")
		if err != nil || s == nil {
			return "", false
		}
		pw, _ := s.Data["password"].(string)
		return pw, true
	}
	settled := pollUntil(settleLimit, func() bool {
		pw, ok := stored() // first: it is also traffic on the mount
		keys, err := c.rawKeys(uuid, "wal/")
		return err == nil && len(keys) == 0 && ok && pw == org.emu.Password(target)
	})
	row.Settle = time.Since(settleFrom)
	if !settled {
		keys, _ := c.rawKeys(uuid, "wal/")
		pw, _ := stored()
		t.Errorf("not settled %s after the restart: %d WAL entries left; stored password is Salesforce's: %v (Salesforce has the %s one)",
			settleLimit, len(keys), pw == org.emu.Password(target), changedWord(org.emu.Password(target) != oldPassword))
	} else {
		t.Logf("settled %s after the restart", row.Settle.Round(10*time.Millisecond))
	}
	// A request held at the emulator by a process that should be gone
	// would land now: look again once every injected latency is over.
	if wait := time.Until(killedAt.Add(chaosLatency + time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	row.Changed = changedWord(org.emu.Password(target) != oldPassword)
	if pw, ok := stored(); !ok || pw != org.emu.Password(target) {
		t.Errorf("after every held call was over, the stored password is not Salesforce's (readable: %v; Salesforce has the %s one)", ok, row.Changed)
	}
	if silentConfigReads > 0 {
		t.Errorf("%d reads of config, while an unsettled rotate-root left a wrong admin password in it, did not say so", silentConfigReads)
	}
	for _, u := range []string{target, demoAdminUser} {
		if st := org.state(u); st.Locked {
			t.Errorf("%s is locked out (%d failed logins)", u, st.FailedLogins)
		}
	}
	row.FailedLogins = org.state(target).FailedLogins
	// Log in with it, as its user would (only when it is Salesforce's:
	// a wrong one would cost the user a failed login).
	if pw, _ := stored(); pw != "" && pw == org.emu.Password(target) {
		noteSecret(pw)
		if status, ok, _ := soapLoginAt(t, org.url, target, pw); !ok {
			t.Errorf("the stored password of %s does not log in (HTTP %d)", target, status)
		}
	}

	// The next rotation works.
	org.emu.ClearFaults()
	before := org.emu.Password(target)
	if r := c.run(c.mustActive(t), "", "write", "-f", rotatePath); r.Err != nil {
		t.Errorf("the next rotation failed: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	} else if after := org.emu.Password(target); after == before {
		t.Error("the next rotation did not change the password in Salesforce")
	} else if pw, _ := stored(); pw != after {
		t.Error("after the next rotation the stored password is not Salesforce's")
	}
	if keys, _ := c.rawKeys(uuid, "wal/"); len(keys) > 0 {
		t.Errorf("%d WAL entries left after the next rotation", len(keys))
	}
	if cc.kind != kindRoot {
		if v := version(); v < startVersion+1 {
			t.Errorf("account version %d after the next rotation, want more than %d", v, startVersion)
		}
	}

	if poller != nil {
		summary, bad := poller.stop()
		row.Reads = summary
		t.Logf("concurrent creds reads: %s", summary)
		reportSilentReads(t, bad)
		if len(bad) > 0 {
			row.Reads += fmt.Sprintf(", %d SILENTLY WRONG", len(bad))
		}
	}
	return row
}

func changedWord(changed bool) string {
	if changed {
		return "new"
	}
	return "kept"
}

// heldLogins counts the logins whose answer the emulator held back.
func heldLogins(org *privateOrg) int {
	return org.emu.HeldAnswers("soap.login") + org.emu.HeldAnswers("oauth.token")
}

// waitOrphans checks that the plugin processes of a killed Vault exit by
// themselves and returns how long after the kill they were gone.
func waitOrphans(t *testing.T, pids []int, killedAt time.Time) time.Duration {
	t.Helper()
	if left := waitNoProcesses(pids, 10*time.Second); len(left) > 0 {
		t.Errorf("plugin processes %v still run 10s after their Vault was killed", left)
		return 0
	}
	return time.Since(killedAt)
}

// pollUntil polls cond every 50ms until it holds or limit passes.
func pollUntil(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
