package acceptance

// A non-dev Vault, as operators run it: `vault server -config` with
// integrated storage (raft) on loopback ports, initialised with one key
// share and unsealed by the test, the plugin registered with its sha256
// and mounted. One node for the crash tests, three for HA. Nodes can be
// killed with SIGKILL (Vault alone, or the plugin process alone), and
// restarted on the same data directory.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// chaosVersion is the version the chaos build of the plugin reports: the
// release code plus chaos_pause.go (go build -tags chaos).
const chaosVersion = versionNew + "-chaos"

var (
	chaosOnce   sync.Once
	chaosBinary pluginBinary
	chaosErr    error
)

// chaosPlugin builds (once) the plugin with -tags chaos, which holds a
// rotation at the steps named in SF_CHAOS_PAUSE.
func chaosPlugin(t testing.TB) pluginBinary {
	t.Helper()
	hs := need(t)
	chaosOnce.Do(func() {
		dir := filepath.Join(hs.dir, "chaos-build")
		if chaosErr = os.MkdirAll(dir, 0o700); chaosErr != nil {
			return
		}
		path := filepath.Join(dir, pluginName)
		cmd := exec.Command("go", "build", "-buildvcs=false", "-tags", "chaos",
			"-ldflags", "-X "+versionVar+"="+chaosVersion, "-o", path, "./cmd/"+pluginName)
		cmd.Dir = hs.repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			chaosErr = fmt.Errorf("building the chaos plugin: %v\n%s", err, out)
			return
		}
		sum, err := fileSHA256(path)
		chaosErr = err
		chaosBinary = pluginBinary{Version: chaosVersion, Command: pluginName, Path: path, SHA256: sum}
	})
	if chaosErr != nil {
		t.Fatal(chaosErr)
	}
	return chaosBinary
}

// raftCluster is a Vault cluster on integrated storage.
type raftCluster struct {
	t         *testing.T
	dir       string
	nodes     []*raftNode
	unsealKey string
	rootToken string
	plugin    pluginBinary
}

// raftNode is one Vault server of a cluster. Each node has its own plugin
// directory (as separate machines would), so a plugin process belongs to
// the node whose directory holds its executable.
type raftNode struct {
	c           *raftCluster
	id          string
	addr        string // http://127.0.0.1:port
	clusterAddr string
	dataDir     string
	pluginDir   string
	config      string
	log         string

	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{}
	startedAt time.Time
}

var clusterSeq struct {
	sync.Mutex
	n int
}

// newRaftCluster starts size nodes, initialises the first, unseals all,
// and enables a file audit device. Everything is stopped when the test
// ends; logs stay for the leak scan.
func newRaftCluster(t *testing.T, size int) *raftCluster {
	t.Helper()
	hs := need(t)
	clusterSeq.Lock()
	clusterSeq.n++
	seq := clusterSeq.n
	clusterSeq.Unlock()
	name := strings.Trim(mountNameCleaner.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	c := &raftCluster{t: t, dir: filepath.Join(hs.dir, fmt.Sprintf("raft-%02d-%s", seq, name)), plugin: chaosPlugin(t)}
	type ports struct{ api, cluster int }
	var ps []ports
	for i := 0; i < size; i++ {
		a, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		b, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, ports{a, b})
	}
	for i := 0; i < size; i++ {
		n := &raftNode{
			c:           c,
			id:          fmt.Sprintf("node%d", i+1),
			addr:        fmt.Sprintf("http://127.0.0.1:%d", ps[i].api),
			clusterAddr: fmt.Sprintf("127.0.0.1:%d", ps[i].cluster),
		}
		dir := filepath.Join(c.dir, n.id)
		n.dataDir = filepath.Join(dir, "data")
		n.pluginDir = filepath.Join(dir, "plugins")
		n.config = filepath.Join(dir, "vault.hcl")
		n.log = filepath.Join(dir, "vault.log")
		for _, d := range []string{n.dataDir, n.pluginDir} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if err := linkOrCopy(c.plugin.Path, filepath.Join(n.pluginDir, c.plugin.Command)); err != nil {
			t.Fatal(err)
		}
		var join strings.Builder
		for j := range ps {
			if j != i {
				fmt.Fprintf(&join, "  retry_join {\n    leader_api_addr = \"http://127.0.0.1:%d\"\n  }\n", ps[j].api)
			}
		}
		// performance_multiplier = 1 uses raft's base timings (1 s
		// heartbeat and election timeouts) instead of 5x that: a failover
		// takes seconds.
		hcl := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = %q
  performance_multiplier = 1
%s}
listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = %q
  tls_disable     = true
}
api_addr             = %q
cluster_addr         = "https://%s"
disable_mlock        = true
plugin_directory     = %q
raw_storage_endpoint = true
log_level            = "trace"
`, n.dataDir, n.id, join.String(), ps[i].api, n.clusterAddr, n.addr, n.clusterAddr, n.pluginDir)
		if err := os.WriteFile(n.config, []byte(hcl), 0o600); err != nil {
			t.Fatal(err)
		}
		noteScanFile(n.log, "vault server log (trace) of "+n.id)
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(c.stop)

	first := c.nodes[0]
	if err := first.start(); err != nil {
		t.Fatal(err)
	}
	init, err := first.client("").Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("vault operator init: %v\n%s", err, first.logTail(30))
	}
	c.unsealKey, c.rootToken = init.KeysB64[0], init.RootToken
	noteSecret(c.unsealKey, init.Keys[0], c.rootToken)
	if err := first.unseal(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitActive(nil, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes[1:] {
		if err := n.start(); err != nil {
			t.Fatal(err)
		}
		if err := n.unseal(); err != nil {
			t.Fatal(err)
		}
		if err := n.waitStandby(2 * time.Minute); err != nil {
			t.Fatalf("%s did not join as a standby: %v\n%s", n.id, err, n.logTail(30))
		}
	}
	audit := filepath.Join(c.dir, "audit.log")
	noteScanFile(audit, "audit log of "+filepath.Base(c.dir))
	c.cli(t, "", "audit", "enable", "file", "file_path="+audit)
	return c
}

// active returns the active node (nil if none answers as active).
func (c *raftCluster) active() *raftNode {
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		if code, _ := n.health(); code == http.StatusOK {
			return n
		}
	}
	return nil
}

// waitActive waits until a node other than except is active and returns it.
func (c *raftCluster) waitActive(except *raftNode, limit time.Duration) (*raftNode, error) {
	deadline := time.Now().Add(limit)
	for {
		for _, n := range c.nodes {
			if n == except || !n.running() {
				continue
			}
			if code, _ := n.health(); code == http.StatusOK {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			var tails []string
			for _, n := range c.nodes {
				tails = append(tails, n.id+":\n"+n.logTail(15))
			}
			return nil, fmt.Errorf("no active node within %s:\n%s", limit, strings.Join(tails, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mustActive is the active node, waiting for one if needed.
func (c *raftCluster) mustActive(t testing.TB) *raftNode {
	t.Helper()
	n, err := c.waitActive(nil, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// cli runs the vault CLI against the active node as root.
func (c *raftCluster) cli(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	r := c.run(c.mustActive(t), stdin, args...)
	if r.Err != nil {
		t.Fatalf("vault %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// run runs the vault CLI against a node.
func (c *raftCluster) run(n *raftNode, stdin string, args ...string) cliResult {
	return c.runEnv(n, nil, stdin, args...)
}

func (c *raftCluster) runEnv(n *raftNode, env []string, stdin string, args ...string) cliResult {
	cmd := exec.Command(h.vaultBin, args...)
	cmd.Env = append(append(h.baseEnv(), "VAULT_ADDR="+n.addr, "VAULT_TOKEN="+c.rootToken, "VAULT_MAX_RETRIES=0"), env...)
	cmd.Dir = c.dir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	timer := time.AfterFunc(3*time.Minute, func() { _ = cmd.Process.Kill() })
	err := cmd.Run()
	timer.Stop()
	return cliResult{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// writeJSON is `vault write PATH -` with a JSON body on the active node.
func (c *raftCluster) writeJSON(t testing.TB, path string, body map[string]any) string {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return c.cli(t, string(data), "write", path, "-")
}

// mountChaosPlugin registers the chaos build on the cluster (through the
// catalog API: Vault 1.13's CLI has no -env flag) with env, and enables
// it at mount as an operator would.
func (c *raftCluster) mountChaosPlugin(t testing.TB, mount string, env ...string) {
	t.Helper()
	body := map[string]any{"sha256": c.plugin.SHA256, "command": c.plugin.Command, "version": c.plugin.Version}
	if len(env) > 0 {
		body["env"] = env
	}
	c.writeJSON(t, "sys/plugins/catalog/secret/"+pluginName, body)
	info := c.cliJSON(t, "plugin", "info", "-version="+c.plugin.Version, "secret", pluginName)
	if info["sha256"] != c.plugin.SHA256 {
		t.Fatalf("vault plugin info: %v", info)
	}
	c.cli(t, "", "secrets", "enable", "-path="+mount, "-plugin-version="+c.plugin.Version, pluginName)
}

// cliJSON runs the CLI with JSON output (VAULT_FORMAT=json) on the active
// node.
func (c *raftCluster) cliJSON(t testing.TB, args ...string) map[string]any {
	t.Helper()
	r := c.runEnv(c.mustActive(t), []string{"VAULT_FORMAT=json"}, "", args...)
	if r.Err != nil {
		t.Fatalf("vault %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &m); err != nil {
		t.Fatalf("vault %s: not JSON: %v\n%s", strings.Join(args, " "), err, r.Stdout)
	}
	return m
}

// mountUUID is the storage id of a mount (its data lives under
// logical/<uuid>/ in the barrier).
func (c *raftCluster) mountUUID(t testing.TB, mount string) string {
	t.Helper()
	s, err := c.mustActive(t).client("").Logical().Read("sys/mounts/" + mount)
	if err != nil || s == nil {
		t.Fatalf("reading sys/mounts/%s: %v", mount, err)
	}
	uuid, _ := s.Data["uuid"].(string)
	if uuid == "" {
		t.Fatalf("sys/mounts/%s has no uuid: %v", mount, s.Data)
	}
	return uuid
}

// rawKeys lists a prefix of a mount's storage through sys/raw (the
// cluster's config sets raw_storage_endpoint).
func (c *raftCluster) rawKeys(uuid, prefix string) ([]string, error) {
	n := c.active()
	if n == nil {
		return nil, errors.New("no active node")
	}
	s, err := n.client("").Logical().List("sys/raw/logical/" + uuid + "/" + prefix)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, nil
	}
	raw, _ := s.Data["keys"].([]any)
	keys := make([]string, 0, len(raw))
	for _, k := range raw {
		keys = append(keys, fmt.Sprint(k))
	}
	return keys, nil
}

// rawJSON reads one JSON storage entry of a mount through sys/raw; nil if
// absent.
func (c *raftCluster) rawJSON(uuid, key string) (map[string]any, error) {
	n := c.active()
	if n == nil {
		return nil, errors.New("no active node")
	}
	s, err := n.client("").Logical().Read("sys/raw/logical/" + uuid + "/" + key)
	if err != nil || s == nil {
		return nil, err
	}
	value, _ := s.Data["value"].(string)
	var out map[string]any
	if err := json.Unmarshal([]byte(value), &out); err != nil {
		return nil, fmt.Errorf("sys/raw %s is not JSON: %w", key, err)
	}
	return out, nil
}

// stop ends every node (SIGTERM, then SIGKILL of its process group) and
// any plugin process left, then drops the data directories (the logs
// stay for the leak scan).
func (c *raftCluster) stop() {
	for _, n := range c.nodes {
		n.mu.Lock()
		cmd, exited := n.cmd, n.exited
		n.mu.Unlock()
		if cmd == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	for _, n := range c.nodes {
		if left := waitNoProcesses(n.plugins(), 10*time.Second); len(left) > 0 {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			c.t.Errorf("%s: plugin processes %v outlived their Vault; killed", n.id, left)
		}
		_ = os.RemoveAll(n.dataDir)
	}
}
