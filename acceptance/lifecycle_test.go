package acceptance

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// mountInfo is the part of `vault secrets list -detailed -format=json` the
// operator checks after an install or an upgrade.
type mountInfo struct {
	Type                 string `json:"type"`
	PluginVersion        string `json:"plugin_version"`
	RunningPluginVersion string `json:"running_plugin_version"`
	RunningSHA256        string `json:"running_sha256"`
}

// pluginList is `vault plugin list -detailed -format=json`.
type pluginList struct {
	Details []struct {
		Name    string `json:"name"`
		Type    string `json:"type"`
		Version string `json:"version"`
	} `json:"details"`
}

func secretsList(t *testing.T) map[string]mountInfo {
	t.Helper()
	return vaultJSONAs[map[string]mountInfo](t, "secrets", "list", "-detailed")
}

// pluginProcessAnswering makes the mount answer a request (so that a lazily
// started plugin is running) and returns the plugin processes of version.
func pluginProcessAnswering(t *testing.T, mount, version string) []int {
	t.Helper()
	if out := vaultCLI(t, "path-help", mount+"/"); !strings.Contains(out, "Salesforce") {
		t.Fatalf("vault path-help %s/ does not describe the Salesforce engine:\n%s", mount, out)
	}
	pids := pluginProcessesOf(t, version)
	if len(pids) == 0 {
		t.Fatalf("no process runs the %s plugin binary while %s/ is mounted (all plugin processes: %v)", version, mount, pluginProcesses(t))
	}
	return pids
}

// TestOperatorLifecycle runs the README's operator guide step by step:
// register with sha256 and version, enable, reload, upgrade with
// `secrets tune -plugin-version` + reload, disable, deregister.
func TestOperatorLifecycle(t *testing.T) {
	need(t)
	// Earlier tests' mounts are gone; their plugin processes end shortly after.
	if pids := waitFor(func() []int { return pluginProcesses(t) }); len(pids) != 0 {
		t.Fatalf("plugin processes %v are running before the plugin is enabled", pids)
	}
	old, next := plugin(t, versionOld), plugin(t, versionNew)

	// Register both versions, as an operator does before an upgrade.
	vaultCLI(t, registerCommand(old)...)
	vaultCLI(t, registerCommand(next)...)
	for _, p := range []pluginBinary{old, next} {
		data := vaultJSON(t, "plugin", "info", "-version="+p.Version, "secret", pluginName)
		if data["sha256"] != p.SHA256 || data["version"] != p.Version || data["command"] != p.Command {
			t.Errorf("vault plugin info -version=%s: got sha256=%v version=%v command=%v, want %s %s %s",
				p.Version, data["sha256"], data["version"], data["command"], p.SHA256, p.Version, p.Command)
		}
	}
	var listed []string
	for _, d := range vaultJSONAs[pluginList](t, "plugin", "list", "-detailed", "secret").Details {
		if d.Name == pluginName {
			listed = append(listed, d.Version)
		}
	}
	if !slices.Contains(listed, versionOld) || !slices.Contains(listed, versionNew) {
		t.Errorf("vault plugin list -detailed secret lists %s with versions %v, want %s and %s", pluginName, listed, versionOld, versionNew)
	}

	// Enable at salesforce/ with an explicit version.
	vaultCLI(t, "secrets", "enable", "-path=salesforce", "-plugin-version="+versionOld, pluginName)
	disabled := false
	t.Cleanup(func() {
		if !disabled {
			runVault(t, nil, "", "secrets", "disable", "salesforce/")
		}
	})
	m := secretsList(t)["salesforce/"]
	if m.Type != pluginName || m.PluginVersion != versionOld || m.RunningPluginVersion != versionOld || m.RunningSHA256 != old.SHA256 {
		t.Fatalf("after enable, vault secrets list -detailed shows %+v; want type %s, version %s running %s with sha256 %s",
			m, pluginName, versionOld, versionOld, old.SHA256)
	}
	table := vaultCLI(t, "secrets", "list", "-detailed")
	if !lineHas(table, "salesforce/", pluginName, versionOld) {
		t.Errorf("the table of vault secrets list -detailed has no salesforce/ line with %s %s:\n%s", pluginName, versionOld, table)
	}
	before := pluginProcessAnswering(t, "salesforce", versionOld)

	// Reload restarts the plugin process.
	out := vaultCLI(t, "plugin", "reload", "-plugin="+pluginName)
	if !strings.Contains(out, "Success") {
		t.Errorf("vault plugin reload printed %q", out)
	}
	after := pluginProcessAnswering(t, "salesforce", versionOld)
	for _, pid := range after {
		if slices.Contains(before, pid) {
			t.Errorf("plugin process %d survived vault plugin reload (before %v, after %v)", pid, before, after)
		}
	}

	// Upgrade: point the mount at the new version, then reload it.
	vaultCLI(t, "secrets", "tune", "-plugin-version="+versionNew, "salesforce/")
	m = secretsList(t)["salesforce/"]
	if m.PluginVersion != versionNew {
		t.Errorf("after tune, plugin_version = %q, want %s", m.PluginVersion, versionNew)
	}
	vaultCLI(t, "plugin", "reload", "-plugin="+pluginName)
	pluginProcessAnswering(t, "salesforce", versionNew)
	m = secretsList(t)["salesforce/"]
	if m.PluginVersion != versionNew || m.RunningPluginVersion != versionNew || m.RunningSHA256 != next.SHA256 {
		t.Errorf("after the upgrade, vault secrets list -detailed shows %+v; want %s running %s with sha256 %s",
			m, versionNew, versionNew, next.SHA256)
	}
	if pids := waitFor(func() []int { return pluginProcessesOf(t, versionOld) }); len(pids) != 0 {
		t.Errorf("the old %s plugin process(es) %v still run after the upgrade", versionOld, pids)
	}

	// Remove: disable the mount (no plugin process remains), deregister.
	vaultCLI(t, "secrets", "disable", "salesforce/")
	disabled = true
	if _, ok := secretsList(t)["salesforce/"]; ok {
		t.Errorf("salesforce/ is still listed after vault secrets disable")
	}
	if pids := waitFor(func() []int { return pluginProcesses(t) }); len(pids) != 0 {
		t.Errorf("plugin processes %v still run after vault secrets disable", pids)
	}
	for _, v := range []string{versionOld, versionNew} {
		vaultCLI(t, "plugin", "deregister", "-version="+v, "secret", pluginName)
		vaultCLIFails(t, "plugin", "info", "-version="+v, "secret", pluginName)
	}
	msg := vaultCLIFails(t, "secrets", "enable", "-path=salesforce", "-plugin-version="+versionOld, pluginName)
	if !strings.Contains(msg, "plugin") {
		t.Errorf("enabling a deregistered plugin failed with an unexpected message: %s", msg)
	}
}

// TestRegisterRejectsWrongBinary: a version the binary does not report is
// refused at registration, and a wrong sha256 is refused when the plugin is
// mounted, so an operator's copy-paste mistake never runs. It uses a catalog
// name of its own so the other tests' registrations stay intact.
func TestRegisterRejectsWrongBinary(t *testing.T) {
	old, next := plugin(t, versionOld), plugin(t, versionNew)
	const name = pluginName + "-check"
	t.Cleanup(func() {
		for _, v := range []string{versionOld, "v9.9.9"} {
			runVault(t, nil, "", "plugin", "deregister", "-version="+v, "secret", name)
		}
	})

	out := vaultCLIFails(t, "plugin", "register", "-sha256="+old.SHA256, "-version=v9.9.9", "-command="+old.Command, "secret", name)
	if !strings.Contains(out, "v9.9.9") || !strings.Contains(out, versionOld) {
		t.Errorf("registering %s as v9.9.9 failed without naming both versions: %s", old.Command, out)
	}
	vaultCLIFails(t, "plugin", "info", "-version=v9.9.9", "secret", name)

	// Vault 1.13 accepts the entry (its version probe is best effort) but
	// will not start a binary whose checksum differs.
	runVault(t, nil, "", "plugin", "register", "-sha256="+next.SHA256, "-version="+versionOld, "-command="+old.Command, "secret", name)
	out = vaultCLIFails(t, "secrets", "enable", "-path=sumcheck", "-plugin-version="+versionOld, name)
	if !strings.Contains(strings.ToLower(out), "checksum") {
		t.Errorf("enabling a plugin registered with a wrong sha256 failed without naming the checksum: %s", out)
	}
	if _, ok := secretsList(t)["sumcheck/"]; ok {
		t.Errorf("a plugin with a wrong sha256 was mounted")
	}
}

// waitFor polls list until it is empty (Vault stops plugin processes
// asynchronously) and returns the last result. The bound is generous: this
// waits for an event, it does not time it.
func waitFor(list func() []int) []int {
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := list()
		if len(got) == 0 || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lineHas reports whether one line of a table contains all the words.
func lineHas(table string, words ...string) bool {
	for line := range strings.SplitSeq(table, "\n") {
		fields := strings.Fields(line)
		all := true
		for _, w := range words {
			if !slices.Contains(fields, w) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
