package acceptance

// A 3-node raft cluster (issue 10, section 2): scheduled rotations run
// only on the active node, standbys forward reads, and a kill -9 of the
// active node in the middle of a rotation loses nothing, rotates nothing
// twice, and keeps the failed-login budget and the token cache honest.

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// haAccounts: name -> extra user of the private org.
var haAccounts = map[string]int{"alpha": 1, "team-a/etl": 2, "beta": 3, "wrong": 4, "plain": 5}

func TestHAFailover(t *testing.T) {
	need(t)
	t.Parallel()
	org := newPrivateOrg(t, 5)
	c := newRaftCluster(t, 3)
	c.mountChaosPlugin(t, chaosMount)
	org.configure(t, c, chaosMount)
	c.writeJSON(t, chaosMount+"/config/rotation", map[string]any{
		"min_password_lifetime": false, "max_failed_logins": 2, "login_budget_per_hour": 60,
	})
	uuid := c.mountUUID(t, chaosMount)
	user := func(name string) string { return org.user(haAccounts[name]) }
	for _, name := range []string{"alpha", "beta"} {
		c.writeJSON(t, chaosMount+"/accounts/"+name, map[string]any{"username": user(name), "password": org.emu.Password(user(name))})
	}
	// Two accounts on a schedule, one with a nested name: the queue must
	// be rebuilt with both.
	for _, name := range []string{"plain", "team-a/etl"} {
		c.writeJSON(t, chaosMount+"/accounts/"+name, map[string]any{
			"username": user(name), "password": org.emu.Password(user(name)), "rotation_period": "15s",
		})
	}
	// A stored password Salesforce rejects, behind three password roles.
	wrongPassword := "Wrong-Stored-Password-1"
	noteSecret(wrongPassword)
	c.writeJSON(t, chaosMount+"/accounts/wrong", map[string]any{"username": user("wrong"), "password": wrongPassword, "verify": false})
	for _, role := range []string{"bad1", "bad2", "bad3"} {
		c.cli(t, "", "write", chaosMount+"/roles/"+role, "grant_type=password", "account=wrong", "ttl=10m")
	}
	c.cli(t, "", "write", chaosMount+"/roles/tok", "grant_type=password", "account=beta", "ttl=10m")

	// SF password changes per account so far (each account starts at 0).
	changes := func(name string) int { return org.state(user(name)).PreviousPws }
	version := func(name string) int {
		acct, err := c.rawJSON(uuid, "accounts/"+name)
		if err != nil || acct == nil {
			return -1
		}
		return rotAsInt(acct["version"])
	}

	// Scheduled rotations run on the active node only; standbys run no
	// plugin at all.
	active := c.mustActive(t)
	if !pollUntil(90*time.Second, func() bool { return version("team-a/etl") >= 1 && version("plain") >= 1 }) {
		t.Fatalf("team-a/etl and plain did not rotate on their 15s schedule within 90s (versions %d, %d)", version("team-a/etl"), version("plain"))
	}
	for _, n := range c.nodes {
		if n != active && len(n.plugins()) > 0 {
			t.Errorf("standby %s runs plugin processes %v", n.id, n.plugins())
		}
	}
	if len(active.plugins()) == 0 {
		t.Errorf("the active node %s runs no plugin process", active.id)
	}

	// Standbys forward reads, and the answers are right.
	for _, n := range c.nodes {
		for _, name := range []string{"alpha", "team-a/etl"} {
			s, err := n.client("").Logical().Read(chaosMount + "/creds/" + name)
			if err != nil || s == nil {
				t.Errorf("read creds/%s via %s: %v", name, n.id, err)
				continue
			}
			if pw := s.Data["password"]; pw != org.emu.Password(user(name)) && !readSaysPending(s.Warnings, s.Data) {
				t.Errorf("creds/%s via %s is not Salesforce's password", name, n.id)
			}
		}
	}

	// The failed-login budget: three roles of an account whose stored
	// password Salesforce rejects cost at most max_failed_logins.
	readBadRoles := func(n *raftNode) {
		for _, role := range []string{"bad1", "bad2", "bad3"} {
			if s, err := n.client("").Logical().Read(chaosMount + "/token/" + role); err == nil && s != nil {
				t.Errorf("token/%s via %s succeeded with a wrong stored password", role, n.id)
			}
		}
	}
	readBadRoles(active)
	t.Logf("failed logins of the wrong-password account at Salesforce before the failover: %d", org.state(user("wrong")).FailedLogins)
	if st := org.state(user("wrong")); st.FailedLogins > 2 || st.Locked {
		t.Errorf("before the failover: %d failed logins at Salesforce (locked: %v), max_failed_logins is 2", st.FailedLogins, st.Locked)
	}

	// The token cache: a rotation drops the cached token.
	t1 := readToken(t, active.client(""), "tok")
	c.cli(t, "", "write", "-f", chaosMount+"/rotate/beta")
	t2 := readToken(t, active.client(""), "tok")
	if t2 == t1 {
		t.Error("token/tok served the token minted before beta's rotation")
	}

	poller := startCredsPoller(t, c, org, user("alpha"), chaosMount+"/creds/alpha")

	windows := []string{winApplied}
	if os.Getenv("CHAOS") == "all" {
		windows = append(windows, winInFlight)
	}
	for round, window := range windows {
		active = c.mustActive(t)
		held, calls := org.emu.HeldAnswers("rest.password"), org.emu.Calls("rest.password")
		if window == winApplied {
			org.emu.InjectFault("rest.password", emulator.Fault{LatencyAfter: chaosLatency, Times: 1})
		} else {
			org.emu.InjectFault("rest.password", emulator.Fault{Latency: chaosLatency, IgnoreCancel: true, Times: 1})
		}
		go c.run(active, "", "write", "-f", chaosMount+"/rotate/alpha")
		if !pollUntil(30*time.Second, func() bool {
			if window == winApplied {
				return org.emu.HeldAnswers("rest.password") > held
			}
			return org.emu.Calls("rest.password") > calls
		}) {
			t.Fatalf("round %d: alpha's password change never reached Salesforce", round+1)
		}
		plugins := active.plugins()
		killed := time.Now()
		active.kill9()
		// From the kill on, note when Salesforce sees each scheduled
		// account's password change again (the killed node can change
		// nothing any more); a minute is plenty for a 15s period and a 5s
		// tick.
		before := map[string]int{"plain": changes("plain"), "team-a/etl": changes("team-a/etl")}
		resumedCh := make(chan map[string]time.Duration, 1)
		go func() {
			resumed := map[string]time.Duration{}
			pollUntil(time.Minute, func() bool {
				for name, n := range before {
					if _, done := resumed[name]; !done && changes(name) > n {
						resumed[name] = time.Since(killed)
					}
				}
				return len(resumed) == len(before)
			})
			resumedCh <- resumed
		}()
		next, err := c.waitActive(active, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		failover := time.Since(killed)
		waitOrphans(t, plugins, killed)

		settled := pollUntil(settleLimit, func() bool {
			keys, err := c.rawKeys(uuid, "wal/")
			if err != nil || len(keys) > 0 {
				return false
			}
			s, err := next.client("").Logical().Read(chaosMount + "/creds/alpha")
			return err == nil && s != nil && s.Data["password"] == org.emu.Password(user("alpha"))
		})
		settle := time.Since(killed)
		if !settled {
			keys, _ := c.rawKeys(uuid, "wal/")
			t.Errorf("round %d (%s): alpha not settled %s after the kill: %d WAL entries left", round+1, window, settleLimit, len(keys))
		}
		resumed := <-resumedCh
		var resumes []string
		for _, name := range []string{"plain", "team-a/etl"} {
			if d, ok := resumed[name]; ok {
				resumes = append(resumes, fmt.Sprintf("%s %s", name, d.Round(10*time.Millisecond)))
			} else {
				resumes = append(resumes, name+" never")
				t.Errorf("round %d: the scheduled rotation of %s did not resume within a minute of the failover (version %d)", round+1, name, version(name))
			}
		}
		t.Logf("HA round %d (%s): %s -> %s; failover %s; alpha settled %s (%v); scheduled rotations resumed after the kill: %s",
			round+1, window, active.id, next.id, failover.Round(10*time.Millisecond), settle.Round(10*time.Millisecond), settled,
			strings.Join(resumes, ", "))

		// Any held call lands within chaosLatency: look after it.
		time.Sleep(time.Until(killed.Add(chaosLatency + time.Second)))
		active.restart(t)
		if err := active.waitStandby(2 * time.Minute); err != nil {
			t.Errorf("the restarted %s did not rejoin as a standby: %v", active.id, err)
		}
	}

	// After the failovers: nothing lost, nothing rotated twice.
	next := c.mustActive(t)
	for name := range haAccounts {
		if name == "wrong" {
			continue
		}
		s, err := next.client("").Logical().Read(chaosMount + "/creds/" + name)
		if err != nil || s == nil {
			t.Errorf("creds/%s: %v", name, err)
			continue
		}
		if s.Data["password"] != org.emu.Password(user(name)) {
			t.Errorf("creds/%s does not serve Salesforce's password", name)
		}
		if v, n := version(name), changes(name); v != n {
			t.Errorf("%s: Salesforce's password changed %d times, the stored version is %d: a rotation ran twice or was lost", name, n, v)
		}
	}
	if keys, _ := c.rawKeys(uuid, "wal/"); len(keys) > 0 {
		t.Errorf("%d WAL entries left", len(keys))
	}

	// The budget holds across the failover: no more failed logins.
	for _, n := range c.nodes {
		readBadRoles(n)
	}
	t.Logf("failed logins of the wrong-password account at Salesforce after the failover: %d", org.state(user("wrong")).FailedLogins)
	if st := org.state(user("wrong")); st.FailedLogins > 2 || st.Locked {
		t.Errorf("after the failover: %d failed logins at Salesforce (locked: %v), max_failed_logins is 2: the budget did not survive the failover",
			st.FailedLogins, st.Locked)
	}

	// The token cache across the failover: never the pre-rotation token;
	// a rotation on the new active node drops what standbys forward to.
	t3 := readToken(t, next.client(""), "tok")
	if t3 == t1 {
		t.Error("after the failover token/tok served the token minted before beta's rotation")
	}
	c.cli(t, "", "write", "-f", chaosMount+"/rotate/beta")
	for _, n := range c.nodes {
		if n == next {
			continue
		}
		if t4 := readToken(t, n.client(""), "tok"); t4 == t3 || t4 == t1 {
			t.Errorf("token/tok via standby %s served a token minted before the last rotation", n.id)
		} else if !org.emu.IsTokenActive(t4) {
			t.Errorf("token/tok via standby %s served a token Salesforce does not know", n.id)
		}
	}

	summary, bad := poller.stop()
	t.Logf("concurrent creds reads of alpha across the failovers: %s", summary)
	reportSilentReads(t, bad)
	for _, u := range []string{user("alpha"), user("team-a/etl"), user("beta"), demoAdminUser} {
		if org.state(u).Locked {
			t.Errorf("%s is locked out", u)
		}
	}
}

func readToken(t *testing.T, client *api.Client, role string) string {
	t.Helper()
	s, err := client.Logical().Read(chaosMount + "/token/" + role)
	if err != nil || s == nil {
		t.Fatalf("token/%s: %v", role, err)
	}
	tok, _ := s.Data["access_token"].(string)
	if tok == "" {
		t.Fatalf("token/%s: no access_token", role)
	}
	noteSecret(tok)
	return tok
}
