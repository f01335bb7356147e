package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

const (
	pluginName   = "vault-plugin-secrets-salesforce"
	noopName     = "bench-noop"
	versionVar   = "github.com/vault-salesforce/vault-plugin-secrets-salesforce.Version"
	rootToken    = "root"
	pprofAddrEnv = "SALESFORCE_PLUGIN_PPROF_ADDR"
)

// env is everything one run starts: the plugin binaries, one Vault dev
// server and the in-process emulator behind a front that can add latency
// and record arrivals.
type env struct {
	root      string // repository root
	dir       string // temporary: plugin dir, Vault config, home, log
	pluginDir string
	version   string // the Salesforce plugin's version
	pluginSHA string
	noopSHA   string
	pprofAddr string // the plugin's pprof listener, when built with -pprof

	vaultBin    string
	vaultAddr   string
	vaultLog    string
	vaultCmd    *exec.Cmd
	vaultExited chan struct{}
	client      *api.Client
	httpc       *http.Client

	seed   *emulator.Seed
	emu    *emulator.Server
	front  *emuFront
	emuSrv *http.Server
	// loginURL acts as login.salesforce.com, myDomainURL as the org's My
	// Domain (client credentials work only there).
	loginURL, myDomainURL string
}

type envOptions struct {
	pprof       bool
	rotUsers    int
	vaultLogLvl string
}

func startEnv(ctx context.Context, opts envOptions) (*env, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vaultbench-")
	if err != nil {
		return nil, err
	}
	// Vault resolves the plugin directory through symlinks; so do we, so
	// that /proc/<pid>/exe paths compare equal.
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return nil, err
	}
	e := &env{root: root, dir: dir, pluginDir: filepath.Join(dir, "plugins")}
	for _, d := range []string{e.pluginDir, filepath.Join(dir, "home")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return e, err
		}
	}
	e.version = readVersion(root)
	if e.vaultBin, err = obtainVault(root); err != nil {
		return e, err
	}
	if opts.pprof {
		port, err := freePort()
		if err != nil {
			return e, err
		}
		e.pprofAddr = "127.0.0.1:" + strconv.Itoa(port)
	}
	progress("building the plugin (%s%s) and the no-op plugin", e.version, map[bool]string{true: ", -tags pprof", false: ""}[opts.pprof])
	if e.pluginSHA, err = e.build(ctx, "./cmd/"+pluginName, pluginName, opts.pprof, "-X "+versionVar+"="+e.version); err != nil {
		return e, err
	}
	if e.noopSHA, err = e.build(ctx, "./bench/noop-plugin", noopName, false, ""); err != nil {
		return e, err
	}
	if err := e.startEmulator(opts.rotUsers); err != nil {
		return e, err
	}
	if err := e.startVault(ctx, opts.vaultLogLvl); err != nil {
		return e, err
	}
	if err := e.register(); err != nil {
		return e, err
	}
	return e, nil
}

// repoRoot finds the module root from the working directory (go run runs
// in the caller's directory, make in the repository).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/vault-salesforce/vault-plugin-secrets-salesforce\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the vault-plugin-secrets-salesforce repository")
		}
		dir = parent
	}
}

func readVersion(root string) string {
	data, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if v := strings.TrimSpace(string(data)); err == nil && v != "" {
		return v
	}
	return "v0.1.0"
}

// obtainVault asks scripts/build-vault.sh, which honours $VAULT_BIN and
// PATH and otherwise builds bin/vault once.
func obtainVault(root string) (string, error) {
	cmd := exec.Command(filepath.Join(root, "scripts", "build-vault.sh"))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/build-vault.sh: %w (set VAULT_BIN)", err)
	}
	bin := strings.TrimSpace(string(out))
	if bin == "" {
		return "", errors.New("scripts/build-vault.sh printed no path")
	}
	return bin, nil
}

func (e *env) build(ctx context.Context, pkg, name string, pprof bool, ldflags string) (string, error) {
	path := filepath.Join(e.pluginDir, name)
	args := []string{"build", "-buildvcs=false"}
	if pprof {
		args = append(args, "-tags", "pprof")
	}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	args = append(args, "-o", path, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return fileSHA256(path)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (e *env) startVault(ctx context.Context, logLevel string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	e.vaultAddr = "http://127.0.0.1:" + strconv.Itoa(port)
	config := filepath.Join(e.dir, "vault.hcl")
	// raw_storage_endpoint lets -fill=raw copy account entries into the
	// mount's storage without going through the engine.
	hcl := fmt.Sprintf("plugin_directory = %q\nraw_storage_endpoint = true\n", e.pluginDir)
	if err := os.WriteFile(config, []byte(hcl), 0o600); err != nil {
		return err
	}
	e.vaultLog = filepath.Join(e.dir, "vault.log")
	logFile, err := os.Create(e.vaultLog)
	if err != nil {
		return err
	}
	cmd := exec.Command(e.vaultBin, "server", "-dev", "-log-level="+logLevel,
		"-dev-root-token-id="+rootToken,
		"-dev-listen-address=127.0.0.1:"+strconv.Itoa(port),
		"-config="+config)
	cmd.Env = e.baseEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Own process group, so teardown reaches plugin processes too; and die
	// with the driver if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting vault: %w", err)
	}
	e.vaultCmd = cmd
	e.vaultExited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(e.vaultExited)
	}()

	conf := api.DefaultConfig()
	conf.Address = e.vaultAddr
	conf.MaxRetries = 0
	conf.Timeout = 10 * time.Minute
	if e.client, err = api.NewClient(conf); err != nil {
		return err
	}
	e.client.SetToken(rootToken)
	e.client.ClearNamespace()
	e.httpc = &http.Client{Transport: &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
	}}

	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-e.vaultExited:
			return fmt.Errorf("vault exited during start-up:\n%s", e.vaultLogTail(30))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		health, err := e.client.Sys().Health()
		if err == nil && health.Initialized && !health.Sealed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault not ready at %s (%v):\n%s", e.vaultAddr, err, e.vaultLogTail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// baseEnv is the environment of vault processes: the caller's minus any
// VAULT_* setting, with a private HOME.
func (e *env) baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "HOME="+filepath.Join(e.dir, "home"))
}

func (e *env) vaultLogTail(lines int) string {
	data, _ := os.ReadFile(e.vaultLog)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// register puts both plugins in the catalog as an operator would.
func (e *env) register() error {
	in := &api.RegisterPluginInput{
		Name: pluginName, Type: api.PluginTypeSecrets, Command: pluginName,
		SHA256: e.pluginSHA, Version: e.version,
	}
	if e.pprofAddr != "" {
		in.Env = []string{pprofAddrEnv + "=" + e.pprofAddr}
	}
	if err := e.client.Sys().RegisterPlugin(in); err != nil {
		return fmt.Errorf("registering %s: %w", pluginName, err)
	}
	if err := e.client.Sys().RegisterPlugin(&api.RegisterPluginInput{
		Name: noopName, Type: api.PluginTypeSecrets, Command: noopName, SHA256: e.noopSHA,
	}); err != nil {
		return fmt.Errorf("registering %s: %w", noopName, err)
	}
	return nil
}

// mountSalesforce enables the plugin at path and configures it against the
// emulator's demo org, its admin logging in with the password grant at the
// My Domain URL (as make dev does).
func (e *env) mountSalesforce(path string) error {
	if err := e.client.Sys().Mount(path, &api.MountInput{Type: pluginName, Config: api.MountConfigInput{PluginVersion: e.version}}); err != nil {
		return fmt.Errorf("enabling %s at %s/: %w", pluginName, path, err)
	}
	admin := e.seedUser(emulator.DemoAdminUsername)
	_, err := e.client.Logical().Write(path+"/config", map[string]any{
		"login_url":                e.myDomainURL,
		"allow_non_salesforce_url": true,
		"client_id":                emulator.DemoClientID,
		"client_secret":            emulator.DemoClientSecret,
		"grant_type":               "password",
		"username":                 admin.Username,
		"password":                 admin.Password,
		"security_token":           admin.SecurityToken,
	})
	if err != nil {
		return fmt.Errorf("writing %s/config: %w", path, err)
	}
	return nil
}

func (e *env) seedUser(username string) emulator.User {
	for _, u := range e.seed.Users {
		if strings.EqualFold(u.Username, username) {
			return u
		}
	}
	panic("no seed user " + username)
}

func (e *env) disable(path string) {
	if err := e.client.Sys().Unmount(path); err != nil {
		progress("warning: disabling %s/: %v", path, err)
	}
}

// get is one raw HTTP read, as an application would make it.
func (e *env) get(ctx context.Context, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.vaultAddr+"/v1/"+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Vault-Token", rootToken)
	resp, err := e.httpc.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// pluginPIDs lists the processes running the Salesforce plugin binary.
func (e *env) pluginPIDs() []int {
	want := filepath.Join(e.pluginDir, pluginName)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink("/proc/" + ent.Name() + "/exe"); err == nil && exe == want {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// procMemory reads VmRSS and VmHWM (peak RSS) of a process, in bytes.
func procMemory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmHWM:":
			hwm = kb * 1024
		}
	}
	return rss, hwm, sc.Err()
}

// stop ends Vault (which stops its plugins) and the emulator.
func (e *env) stop() {
	if e.vaultCmd != nil && e.vaultCmd.Process != nil {
		_ = e.vaultCmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.vaultExited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-e.vaultCmd.Process.Pid, syscall.SIGKILL)
			<-e.vaultExited
		}
	}
	if e.emuSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = e.emuSrv.Shutdown(ctx)
		cancel()
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vaultbench: "+format+"\n", args...)
}
