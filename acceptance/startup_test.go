package acceptance

// Start-up never blocks on Salesforce, and no plugin outlives its Vault
// (issue 10, section 1).

import (
	"strings"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// chaosRequestTimeout is the request_timeout privateOrg.configure sets: a
// mount that waited for any Salesforce call would take at least this long.
const chaosRequestTimeout = 10 * time.Second

// TestChaosStartupWithoutSalesforce: Vault is killed while a password
// change it sent has been applied but not answered, and comes back while
// Salesforce is unreachable. The mount must come up and serve reads at
// once (before a single Salesforce call could have timed out), the
// account with the unsettled rotation must say so and why (once the
// engine has tried Salesforce: that Salesforce could not be reached), the
// other account must not, and everything settles once Salesforce is back.
func TestChaosStartupWithoutSalesforce(t *testing.T) {
	need(t)
	t.Parallel()
	org := newPrivateOrg(t, 2)
	c := newRaftCluster(t, 1)
	node := c.nodes[0]
	c.mountChaosPlugin(t, chaosMount)
	org.configure(t, c, chaosMount)
	c.writeJSON(t, chaosMount+"/config/rotation", map[string]any{"min_password_lifetime": false})
	uuid := c.mountUUID(t, chaosMount)
	for name, user := range map[string]string{"pending": org.user(1), "team-a/other": org.user(2)} {
		c.writeJSON(t, chaosMount+"/accounts/"+name, map[string]any{
			"username": user, "password": org.emu.Password(user), "rotation_method": kindAdmin,
		})
	}
	old := org.emu.Password(org.user(1))

	held := org.emu.HeldAnswers("rest.password")
	org.emu.InjectFault("rest.password", emulator.Fault{LatencyAfter: chaosLatency, Times: 1})
	rotation := make(chan cliResult, 1)
	go func() { rotation <- c.run(node, "", "write", "-f", chaosMount+"/rotate/pending") }()
	if !pollUntil(30*time.Second, func() bool { return org.emu.HeldAnswers("rest.password") > held }) {
		t.Fatal("the password change never reached Salesforce")
	}
	candidate := org.emu.Password(org.user(1))
	noteSecret(candidate)
	plugins := node.plugins()
	killed := time.Now()
	node.kill9()
	waitOrphans(t, plugins, killed)
	<-rotation

	org.gate.close()
	node.restart(t)
	unsealed := time.Now()
	if err := node.waitHealth(200, chaosRequestTimeout); err != nil {
		t.Errorf("not active within request_timeout (%s) of the unseal while Salesforce is unreachable: start-up waits for Salesforce (%v)",
			chaosRequestTimeout, err)
	}
	client := node.client("")
	var first time.Duration
	if !pollUntil(chaosRequestTimeout, func() bool {
		s, err := client.Logical().Read(chaosMount + "/creds/team-a/other")
		return err == nil && s != nil
	}) {
		t.Errorf("no creds read answered within request_timeout (%s) of the unseal while Salesforce is unreachable", chaosRequestTimeout)
	} else {
		first = time.Since(unsealed)
		t.Logf("first read served %s after the unseal, Salesforce unreachable", first.Round(10*time.Millisecond))
	}

	other, err := client.Logical().Read(chaosMount + "/creds/team-a/other")
	if err != nil || other == nil {
		t.Fatalf("creds/team-a/other: %v", err)
	}
	if other.Data["password"] != org.emu.Password(org.user(2)) {
		t.Error("creds/team-a/other does not serve Salesforce's password")
	}
	if readSaysPending(other.Warnings, other.Data) {
		t.Errorf("creds/team-a/other, which has no unsettled rotation, says it has: %v", other.Warnings)
	}

	creds, err := client.Logical().Read(chaosMount + "/creds/pending")
	if err != nil || creds == nil {
		t.Fatalf("creds/pending is not served while Salesforce is unreachable: %v", err)
	}
	if creds.Data["password"] != candidate && !readSaysPending(creds.Warnings, creds.Data) {
		t.Errorf("creds/pending serves a password Salesforce no longer accepts without a pending-rotation warning or status (warnings %v)", creds.Warnings)
	}
	acct, err := client.Logical().Read(chaosMount + "/accounts/pending")
	if err != nil || acct == nil {
		t.Fatalf("accounts/pending: %v", err)
	}
	if !readSaysPending(acct.Warnings, acct.Data) {
		t.Errorf("accounts/pending does not say that its rotation awaits reconciliation (warnings %v)", acct.Warnings)
	}

	// Once the engine has tried Salesforce and the call has timed out,
	// the account says why it is still unsettled.
	if !pollUntil(settleLimit, func() bool { return org.gate.stopped.Load() > 0 }) {
		t.Errorf("the engine never tried to settle the rotation in %s while Salesforce was unreachable", settleLimit)
	} else {
		time.Sleep(chaosRequestTimeout + 2*time.Second)
		acct, err = client.Logical().Read(chaosMount + "/accounts/pending")
		if err != nil || acct == nil {
			t.Fatalf("accounts/pending: %v", err)
		}
		// The warnings and the rotation error field, not the whole
		// record: other fields may use the same words for other things.
		lastErr, _ := acct.Data["last_rotation_error"].(string)
		text := strings.ToLower(strings.Join(acct.Warnings, " ") + " " + lastErr)
		t.Logf("accounts/pending while Salesforce is unreachable: warnings %q; last_rotation_error %q", acct.Warnings, lastErr)
		if !readSaysPending(acct.Warnings, acct.Data) || !strings.Contains(text, "salesforce") ||
			!containsAny(text, "reach", "answer", "timeout", "timed out", "unavailable", "connect") {
			t.Errorf("after a call to Salesforce timed out, accounts/pending does not say that its rotation is unsettled because Salesforce "+
				"could not be reached: warnings %v", acct.Warnings)
		}
	}

	// Salesforce returns: everything settles without an operator.
	org.gate.open()
	back := time.Now()
	settled := pollUntil(settleLimit, func() bool {
		keys, err := c.rawKeys(uuid, "wal/")
		if err != nil || len(keys) > 0 {
			return false
		}
		s, err := client.Logical().Read(chaosMount + "/creds/pending")
		return err == nil && s != nil && s.Data["password"] == org.emu.Password(org.user(1))
	})
	if !settled {
		keys, _ := c.rawKeys(uuid, "wal/")
		t.Fatalf("not settled %s after Salesforce came back: %d WAL entries left", settleLimit, len(keys))
	}
	t.Logf("settled %s after Salesforce came back", time.Since(back).Round(10*time.Millisecond))
	if org.emu.Password(org.user(1)) == old {
		t.Error("Salesforce lost the applied change")
	}
	if r := c.run(node, "", "write", "-f", chaosMount+"/rotate/pending"); r.Err != nil {
		t.Errorf("the next rotation failed: %v\n%s", r.Err, r.Stderr)
	}
	if s, _ := client.Logical().Read(chaosMount + "/creds/pending"); s == nil || s.Data["password"] != org.emu.Password(org.user(1)) {
		t.Error("after the next rotation creds/pending does not serve Salesforce's password")
	}
}

func containsAny(s string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// TestChaosNoOrphanPlugin: Vault is killed while its plugin waits on a
// password change Salesforce has not applied yet. The plugin process must
// exit by itself within seconds, so its connection closes and the change
// is never applied; no call reaches Salesforce after the kill.
func TestChaosNoOrphanPlugin(t *testing.T) {
	need(t)
	t.Parallel()
	org := newPrivateOrg(t, 1)
	c := newRaftCluster(t, 1)
	node := c.nodes[0]
	c.mountChaosPlugin(t, chaosMount)
	org.configure(t, c, chaosMount)
	uuid := c.mountUUID(t, chaosMount)
	user := org.user(1)
	c.writeJSON(t, chaosMount+"/accounts/chaos", map[string]any{"username": user, "password": org.emu.Password(user)})
	old := org.emu.Password(user)

	calls := org.emu.Calls("rest.password")
	org.emu.InjectFault("rest.password", emulator.Fault{Latency: chaosLatency, Times: 1})
	go c.run(node, "", "write", "-f", chaosMount+"/rotate/chaos")
	if !pollUntil(30*time.Second, func() bool { return org.emu.Calls("rest.password") > calls }) {
		t.Fatal("the password change never reached Salesforce")
	}
	plugins := node.plugins()
	if len(plugins) == 0 {
		t.Fatal("no plugin process runs")
	}
	requests := org.requests.Load()
	killed := time.Now()
	node.kill9()
	if left := waitNoProcesses(plugins, 10*time.Second); len(left) > 0 {
		t.Fatalf("plugin processes %v still run 10s after Vault was killed", left)
	}
	t.Logf("the plugin process exited %s after Vault was killed", time.Since(killed).Round(10*time.Millisecond))

	time.Sleep(time.Until(killed.Add(chaosLatency + time.Second)))
	if n := org.requests.Load() - requests; n != 0 {
		t.Errorf("%d call(s) reached Salesforce after Vault was killed", n)
	}
	if org.emu.Password(user) != old {
		t.Error("the password change held at Salesforce was applied after Vault died: its caller was still connected")
	}

	node.restart(t)
	if !pollUntil(settleLimit, func() bool {
		keys, err := c.rawKeys(uuid, "wal/")
		if err != nil || len(keys) > 0 {
			return false
		}
		s, err := node.client("").Logical().Read(chaosMount + "/creds/chaos")
		return err == nil && s != nil && s.Data["password"] == old
	}) {
		t.Error("after the restart the WAL is not settled or creds/chaos does not serve the unchanged password")
	}
}
