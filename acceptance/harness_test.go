// Package acceptance runs the plugin inside a real Vault server, driven the way
// users drive it: through the vault CLI and the Go API client.
//
// TestMain builds the plugin twice (v0.1.0 and v0.1.1, so upgrades can be
// tested) into a plugin directory, obtains a Vault binary through
// scripts/build-vault.sh (or $VAULT_BIN), starts the Salesforce emulator
// in-process on a loopback port and a `vault server -dev` whose config names
// the plugin directory, and stops all of it at the end. Registration is left
// to the tests, which do it as an operator would (sha256 and version).
//
// Without a Vault binary (go test -short, or no way to build one) the tests
// skip, except under CI=true, where that is a failure.
//
// Helpers for tests: vaultCLI, vaultCLIFails, vaultCLIStdin, vaultJSON,
// vaultJSONAs, apiClient, registerPlugin, mountPlugin, configureEmulatorAdmin,
// pluginProcesses, emulatorServer, noteSecret. A non-dev Vault on
// integrated storage (one node or a cluster) is in raft_test.go; an org of
// a test's own in emuorg_test.go.
//
// The dev server logs at trace level and has a file audit device; at the
// end every Vault log and audit log of the run is searched for every
// secret the suite used (leakscan_test.go).
package acceptance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

const (
	pluginName = "vault-plugin-secrets-salesforce"
	versionVar = "github.com/vault-salesforce/vault-plugin-secrets-salesforce.Version"
	rootToken  = "root"

	// The two plugin versions built for the suite; upgrades go from the
	// first to the second.
	versionOld = "v0.1.0"
	versionNew = "v0.1.1"
)

// pluginBinary is one built plugin version in the plugin directory.
type pluginBinary struct {
	Version string
	Command string // file name inside the plugin directory
	Path    string
	SHA256  string
}

type harness struct {
	repoRoot  string
	dir       string // everything the suite writes, removed at the end
	home      string // HOME for vault processes (the dev server writes ~/.vault-token)
	pluginDir string
	plugins   map[string]pluginBinary // by version

	vaultBin    string
	vaultAddr   string
	vaultCmd    *exec.Cmd
	vaultLog    string
	vaultExited chan struct{}

	emu     *emulator.Server
	emuHTTP *http.Server
	emuURL  string
}

var (
	h *harness
	// skipReason is set when the suite cannot run here (no Vault binary);
	// every test then skips with it.
	skipReason string

	secretsMu sync.Mutex
	// secrets holds values that must never appear in Vault's log (and so in
	// the plugin's log lines, which Vault copies there).
	secrets = map[string]bool{}
)

// errNoVault marks the one failure that skips instead of failing (outside CI).
var errNoVault = errors.New("no vault binary")

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	inCI := os.Getenv("CI") != "" && os.Getenv("CI") != "false"
	if testing.Short() {
		skipReason = "acceptance tests start a real Vault server; skipped with -short"
		if inCI {
			fmt.Fprintln(os.Stderr, "acceptance: -short is not allowed under CI=true: the acceptance suite must run")
			return 1
		}
		return m.Run()
	}

	started, err := startHarness()
	if err != nil {
		if started != nil {
			_ = started.stop()
			if errors.Is(err, errNoVault) {
				_ = os.RemoveAll(started.dir)
			} else {
				fmt.Fprintln(os.Stderr, "acceptance: kept", started.dir, "for inspection")
			}
		}
		if errors.Is(err, errNoVault) && !inCI {
			skipReason = fmt.Sprintf("%v (set VAULT_BIN, or run `make vault` to build one)", err)
			fmt.Fprintln(os.Stderr, "acceptance: SKIPPING:", skipReason)
			return m.Run()
		}
		fmt.Fprintln(os.Stderr, "acceptance: cannot start:", err)
		return 1
	}
	h = started

	code := m.Run()

	if err := h.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "acceptance: teardown:", err)
		code = 1
	}
	rep, err := scanForLeaks()
	fmt.Fprintf(os.Stderr, "acceptance: leak scan: %d secret values searched in %d files (%d bytes: Vault server logs at trace level with the plugin's lines, audit logs)\n",
		rep.Secrets, rep.Files, rep.Bytes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "acceptance: FAIL: leak scan:", err)
		code = 1
	}
	for file, lengths := range rep.Hits {
		// Lengths only: the report must not leak what it found.
		fmt.Fprintf(os.Stderr, "acceptance: FAIL: %s contains %d secret value(s) (lengths %v)\n", file, len(lengths), lengths)
		code = 1
	}
	if code == 0 {
		_ = os.RemoveAll(h.dir)
	} else {
		fmt.Fprintln(os.Stderr, "acceptance: kept", h.dir, "for inspection (vault.log there)")
	}
	return code
}

func startHarness() (*harness, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "salesforce-acceptance-")
	if err != nil {
		return nil, err
	}
	// Vault resolves the plugin directory through symlinks; so do we, so
	// that /proc/<pid>/exe paths compare equal.
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return nil, err
	}
	hs := &harness{
		repoRoot:  root,
		dir:       dir,
		home:      filepath.Join(dir, "home"),
		pluginDir: filepath.Join(dir, "plugins"),
		plugins:   map[string]pluginBinary{},
	}
	for _, d := range []string{hs.home, hs.pluginDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return hs, err
		}
	}

	if hs.vaultBin, err = obtainVault(root); err != nil {
		return hs, err
	}
	for _, v := range []string{versionOld, versionNew} {
		if err := hs.buildPlugin(v); err != nil {
			return hs, err
		}
	}
	if err := hs.startEmulator(); err != nil {
		return hs, err
	}
	if err := hs.startVault(); err != nil {
		return hs, err
	}
	return hs, nil
}

// obtainVault asks scripts/build-vault.sh, which honours $VAULT_BIN and PATH
// and otherwise builds (once) bin/vault from tools/vault.
func obtainVault(root string) (string, error) {
	cmd := exec.Command(filepath.Join(root, "scripts", "build-vault.sh"))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: scripts/build-vault.sh failed: %v", errNoVault, err)
	}
	bin := strings.TrimSpace(string(out))
	if bin == "" {
		return "", fmt.Errorf("%w: scripts/build-vault.sh printed no path", errNoVault)
	}
	return bin, nil
}

func (hs *harness) buildPlugin(version string) error {
	command := pluginName + "-" + version
	path := filepath.Join(hs.pluginDir, command)
	cmd := exec.Command("go", "build", "-buildvcs=false",
		"-ldflags", "-X "+versionVar+"="+version,
		"-o", path, "./cmd/"+pluginName)
	cmd.Dir = hs.repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the plugin %s: %v\n%s", version, err, out)
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return err
	}
	hs.plugins[version] = pluginBinary{Version: version, Command: command, Path: path, SHA256: sum}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(hash.Sum(nil)), nil
}

// startEmulator serves the demo org on a real loopback port, because the
// plugin runs in another process (started by Vault) and must reach it.
func (hs *harness) startEmulator() error {
	seed := emulator.DefaultSeed()
	emu, err := emulator.New(seed)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	hs.emuURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	emu.SetBaseURL(hs.emuURL, fmt.Sprintf("http://localhost:%d", port))
	hs.emu = emu
	noteOrg(emu, seedUsernames(seed))
	hs.emuHTTP = &http.Server{Handler: tapSecrets(emu), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.emuHTTP.Serve(ln) }()
	return nil
}

func (hs *harness) startVault() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	hs.vaultAddr = "http://127.0.0.1:" + strconv.Itoa(port)
	config := filepath.Join(hs.dir, "vault.hcl")
	if err := os.WriteFile(config, fmt.Appendf(nil, "plugin_directory = %q\n", hs.pluginDir), 0o600); err != nil {
		return err
	}
	hs.vaultLog = filepath.Join(hs.dir, "vault.log")
	noteScanFile(hs.vaultLog, "dev server log (trace)")
	logFile, err := os.Create(hs.vaultLog)
	if err != nil {
		return err
	}
	// Trace, so the leak check at the end also reads the plugin's debug lines.
	cmd := exec.Command(hs.vaultBin, "server", "-dev", "-log-level=trace",
		"-dev-root-token-id="+rootToken,
		"-dev-listen-address=127.0.0.1:"+strconv.Itoa(port),
		"-config="+config)
	cmd.Env = hs.baseEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Own process group, so teardown can reach plugin processes too; and die
	// with the test binary if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting vault: %w", err)
	}
	hs.vaultCmd = cmd
	hs.vaultExited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(hs.vaultExited)
	}()

	client, err := hs.newClient()
	if err != nil {
		return err
	}
	// A generous bound for a loaded 2-core machine; this waits for start-up,
	// it does not measure it.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-hs.vaultExited:
			return fmt.Errorf("vault exited during start-up:\n%s", hs.vaultLogTail(40))
		default:
		}
		health, err := client.Sys().Health()
		if err == nil && health.Initialized && !health.Sealed {
			return hs.enableAudit(client)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault not ready at %s (last error: %v):\n%s", hs.vaultAddr, err, hs.vaultLogTail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// enableAudit adds a file audit device, searched by the leak scan.
func (hs *harness) enableAudit(client *api.Client) error {
	path := filepath.Join(hs.dir, "audit.log")
	noteScanFile(path, "dev server audit log")
	err := client.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": path}})
	if err != nil {
		return fmt.Errorf("enabling the file audit device: %w", err)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// stop ends Vault (which stops its plugins), then the emulator, and checks
// that no plugin process outlived them.
func (hs *harness) stop() error {
	var errs []error
	if hs.vaultCmd != nil && hs.vaultCmd.Process != nil {
		_ = hs.vaultCmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-hs.vaultExited:
		case <-time.After(30 * time.Second):
			errs = append(errs, errors.New("vault did not stop within 30s of SIGTERM; killed"))
			_ = syscall.Kill(-hs.vaultCmd.Process.Pid, syscall.SIGKILL)
			<-hs.vaultExited
		}
	}
	if hs.emuHTTP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = hs.emuHTTP.Shutdown(ctx)
		cancel()
	}
	if hs.pluginDir != "" {
		if pids := waitNoPluginProcesses(hs.pluginDir, 10*time.Second); len(pids) > 0 {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			errs = append(errs, fmt.Errorf("plugin processes %v were still running after Vault stopped; killed", pids))
		}
	}
	return errors.Join(errs...)
}

func (hs *harness) vaultLogTail(lines int) string {
	data, _ := os.ReadFile(hs.vaultLog)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// baseEnv is the environment of every vault process: the caller's minus any
// VAULT_* setting that could point the CLI elsewhere, with a private HOME.
func (hs *harness) baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+hs.home)
}

func (hs *harness) cliEnv() []string {
	return append(hs.baseEnv(), "VAULT_ADDR="+hs.vaultAddr, "VAULT_TOKEN="+rootToken)
}

func (hs *harness) newClient() (*api.Client, error) {
	conf := api.DefaultConfig()
	conf.Address = hs.vaultAddr
	client, err := api.NewClient(conf)
	if err != nil {
		return nil, err
	}
	client.SetToken(rootToken)
	client.ClearNamespace()
	return client, nil
}

// --- helpers for tests ---

// need returns the running harness, or skips the test when there is none.
func need(t testing.TB) *harness {
	t.Helper()
	if h == nil {
		if skipReason == "" {
			skipReason = "the acceptance harness did not start"
		}
		t.Skip(skipReason)
	}
	return h
}

// apiClient is a github.com/hashicorp/vault/api client for the dev server,
// logged in as root.
func apiClient(t testing.TB) *api.Client {
	t.Helper()
	client, err := need(t).newClient()
	if err != nil {
		t.Fatalf("vault api client: %v", err)
	}
	return client
}

// emulatorServer is the in-process emulator the plugin talks to, for peeks
// (Password, LatestSecurityToken, Calls) and fault injection.
func emulatorServer(t testing.TB) *emulator.Server {
	t.Helper()
	return need(t).emu
}

// emulatorURL is the emulator's login URL (http://127.0.0.1:PORT).
func emulatorURL(t testing.TB) string {
	t.Helper()
	return need(t).emuURL
}

// noteSecret records a value that must never show up in Vault's log; the
// suite fails at the end if it does.
func noteSecret(values ...string) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	for _, v := range values {
		if v != "" {
			secrets[v] = true
		}
	}
}
