package acceptance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// cliTable is a table the vault CLI printed: its column names and, for each
// row, the cells by column name ("" where a row has no cell).
type cliTable struct {
	columns []string
	rows    map[string]map[string]string // by the first column's cell
}

// parseCLITable reads a table of `vault list -detailed`: a header line, a
// line of dashes under each column name, then one row per key. Columns are
// cut where the dashes start, since cells may contain spaces.
func parseCLITable(t *testing.T, out string) cliTable {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "-") {
		t.Fatalf("not a table:\n%s", out)
	}
	var starts []int
	for _, m := range regexp.MustCompile(`-+`).FindAllStringIndex(lines[1], -1) {
		starts = append(starts, m[0])
	}
	cell := func(line string, i int) string {
		if starts[i] >= len(line) {
			return ""
		}
		end := len(line)
		if i+1 < len(starts) && starts[i+1] < end {
			end = starts[i+1]
		}
		return strings.TrimSpace(line[starts[i]:end])
	}
	tab := cliTable{rows: map[string]map[string]string{}}
	for i := range starts {
		tab.columns = append(tab.columns, cell(lines[0], i))
	}
	for _, line := range lines[2:] {
		row := map[string]string{}
		for i, col := range tab.columns {
			row[col] = cell(line, i)
		}
		tab.rows[row[tab.columns[0]]] = row
	}
	return tab
}

// assertRow checks the named cells of one row.
func (tab cliTable) assertRow(t *testing.T, key string, want map[string]string) {
	t.Helper()
	row, ok := tab.rows[key]
	if !ok {
		t.Errorf("no row %q in the table (rows: %v)", key, tab.rows)
		return
	}
	for col, w := range want {
		if got := row[col]; got != w {
			t.Errorf("row %q, column %s = %q, want %q", key, col, got, w)
		}
	}
}

// The operator's overview: `vault list -detailed` of accounts/ shows one
// status line per account (a healthy one, a blocked one, a folder), of a
// folder its nested accounts (one with a stale token), and of roles/ each
// role's grant; a plain list shows names only; no secret anywhere.
func TestOverviewListDetailedCLI(t *testing.T) {
	mount := mountPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	emu := emulatorServer(t)
	rotRestoreDemoUser(t, demoIntegUser, demoIntegPassword, demoIntegToken)
	rotRestoreDemoUser(t, demoTrustedUser, demoTrustedPasswd, "")

	vaultWriteJSON(t, mount+"/accounts/demo", map[string]any{
		"username": emulator.DemoInteg2Username, "password": demoInteg2Password, "security_token": "INTEG2TOKEN000000000000000",
	})
	// team-a/etl: rotated, the emailed token not written back: stale.
	vaultWriteJSON(t, mount+"/accounts/team-a/etl", map[string]any{
		"username": demoIntegUser, "password": demoIntegPassword, "security_token": demoIntegToken,
	})
	vaultCLI(t, "write", "-f", mount+"/rotate/team-a/etl")
	noteSecret(emu.Password(demoIntegUser))
	// trusted: scheduled; its password changed outside Vault, so the next
	// rotation finds drift and blocks.
	vaultWriteJSON(t, mount+"/accounts/trusted", map[string]any{
		"username": demoTrustedUser, "password": demoTrustedPasswd, "rotation_period": "24h",
	})
	const changedOutside = "Changed-Outside-Acc-7"
	noteSecret(changedOutside)
	emu.SetUserState(demoTrustedUser, func(u *emulator.User) { u.Password = changedOutside })
	vaultCLIFails(t, "write", "-f", mount+"/rotate/trusted")
	next := data(t, vaultJSON(t, "read", mount+"/accounts/trusted"))["next_vault_rotation"]

	out := vaultCLI(t, "list", "-detailed", mount+"/accounts")
	t.Logf("$ vault list -detailed %s/accounts\n%s", mount, out)
	secrets := []string{demoInteg2Password, demoIntegPassword, demoIntegToken, demoTrustedPasswd, changedOutside, emu.Password(demoIntegUser)}
	assertNoSecrets(t, "vault list -detailed accounts", out, secrets...)
	tab := parseCLITable(t, out)
	wantColumns := []string{"Keys", "failed_logins", "last_rotation_error", "next_vault_rotation", "rotation_blocked",
		"rotation_status", "security_token_status", "username"}
	if strings.Join(tab.columns, " ") != strings.Join(wantColumns, " ") {
		t.Errorf("columns = %v, want %v", tab.columns, wantColumns)
	}
	tab.assertRow(t, "demo", map[string]string{
		"username": emulator.DemoInteg2Username, "rotation_status": "manual", "security_token_status": "current",
		"failed_logins": "0", "rotation_blocked": "n/a", "next_vault_rotation": "n/a", "last_rotation_error": "n/a",
	})
	tab.assertRow(t, "trusted", map[string]string{
		"username": demoTrustedUser, "rotation_status": "blocked", "rotation_blocked": "drift",
		"failed_logins": "1", "next_vault_rotation": next.(string), "security_token_status": "n/a",
	})
	if msg := tab.rows["trusted"]["last_rotation_error"]; !strings.HasPrefix(msg, `the stored credential of account "trusted"`) {
		t.Errorf("trusted: last_rotation_error = %q", msg)
	}
	// A folder's row has its name and nothing else.
	tab.assertRow(t, "team-a/", map[string]string{"username": "", "rotation_status": "", "failed_logins": ""})

	out = vaultCLI(t, "list", "-detailed", mount+"/accounts/team-a")
	t.Logf("$ vault list -detailed %s/accounts/team-a\n%s", mount, out)
	assertNoSecrets(t, "vault list -detailed accounts/team-a", out, secrets...)
	parseCLITable(t, out).assertRow(t, "etl", map[string]string{
		"username": demoIntegUser, "rotation_status": "manual", "security_token_status": "stale", "failed_logins": "0",
	})

	// Without -detailed the CLI prints the names only.
	if out := vaultCLI(t, "list", mount+"/accounts"); strings.Contains(out, "rotation_status") || !lineHas(out, "trusted") {
		t.Errorf("vault list without -detailed:\n%s", out)
	}

	vaultCLI(t, "write", mount+"/roles/pw", "grant_type=password", "account=demo")
	vaultCLI(t, "write", mount+"/roles/cc", "grant_type=client_credentials", "ttl=10m", "cache=false")
	out = vaultCLI(t, "list", "-detailed", mount+"/roles")
	t.Logf("$ vault list -detailed %s/roles\n%s", mount, out)
	roles := parseCLITable(t, out)
	wantColumns = []string{"Keys", "account", "cache", "grant_type", "revoke_on_lease_end", "ttl"}
	if strings.Join(roles.columns, " ") != strings.Join(wantColumns, " ") {
		t.Errorf("role columns = %v, want %v", roles.columns, wantColumns)
	}
	roles.assertRow(t, "pw", map[string]string{"grant_type": "password", "account": "demo", "cache": "true", "revoke_on_lease_end": "true", "ttl": "0s"})
	roles.assertRow(t, "cc", map[string]string{"grant_type": "client_credentials", "account": "n/a", "cache": "false", "ttl": "10m"})
}

// Vault Agent reads creds/<name> of a scheduled account again right after
// each rotation, because the read carries rotation_period beside ttl: with
// a static_secret_render_interval of an hour, the rendered version still
// follows a 10-second rotation period.
func TestAgentReadsCredsRightAfterScheduledRotation(t *testing.T) {
	hs := need(t)
	mount := mountPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	rotRestoreDemoUser(t, demoTrustedUser, demoTrustedPasswd, "")
	vaultWriteJSON(t, mount+"/config/rotation", map[string]any{"login_budget_per_hour": 60})
	vaultWriteJSON(t, mount+"/accounts/sched", map[string]any{
		"username": demoTrustedUser, "password": demoTrustedPasswd, "rotation_period": "10s",
	})
	creds := data(t, vaultJSON(t, "read", mount+"/creds/sched"))
	if rotAsInt(creds["rotation_period"]) != 10 || rotAsInt(creds["ttl"]) < 0 {
		t.Fatalf("creds: rotation_period %v, ttl %v; want 10 and a ttl", creds["rotation_period"], creds["ttl"])
	}

	dir := t.TempDir()
	token := strings.TrimSpace(vaultCLI(t, "token", "create", "-ttl=10m", "-field=token"))
	noteSecret(token)
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tokenFile := write("token", token)
	rendered := filepath.Join(dir, "version")
	tmpl := write("version.ctmpl", fmt.Sprintf(`{{ with secret "%s/creds/sched" }}{{ .Data.version }}{{ end }}`, mount))
	config := write("agent.hcl", fmt.Sprintf(`
auto_auth {
  method "token_file" {
    config = { token_file_path = %q }
  }
}
template_config {
  static_secret_render_interval = "1h"
}
template {
  source      = %q
  destination = %q
}
`, tokenFile, tmpl, rendered))

	logFile, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	agent := exec.Command(hs.vaultBin, "agent", "-config="+config)
	agent.Env = hs.cliEnv()
	agent.Stdout, agent.Stderr = logFile, logFile
	agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = agent.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = agent.Process.Kill()
			<-exited
		}
	})

	// The first render, then versions rendered by the Agent's own reads
	// after the rotations: an hour-long interval would show none of them.
	start := time.Now()
	deadline := start.Add(90 * time.Second)
	seen := map[string]time.Duration{}
	for len(seen) < 3 {
		if time.Now().After(deadline) {
			agentLog, _ := os.ReadFile(logFile.Name())
			t.Fatalf("the Agent rendered versions %v in 90s; want three (the first and two after rotations)\n%s", seen, agentLog)
		}
		if v, err := os.ReadFile(rendered); err == nil && len(v) > 0 {
			if _, ok := seen[string(v)]; !ok {
				seen[string(v)] = time.Since(start).Round(time.Second)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("versions rendered by the Agent, after: %v", seen)
	vaultCLI(t, "write", mount+"/accounts/sched", "disable_automated_rotation=true")
}
