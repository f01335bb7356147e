package acceptance

// A non-dev Vault, as operators run it: `vault server -config` with
// integrated storage (raft) on loopback ports, initialised with one key
// share and unsealed by the test, the plugin registered with its sha256
// and mounted. One node for the crash tests, three for HA. Nodes can be
// killed with SIGKILL (Vault alone, or the plugin process alone), and
// restarted on the same data directory.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// One node of a raft cluster (raft_test.go): its Vault process, killed with
// kill -9 and restarted, unsealed, and the plugin processes it runs.

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o700)
}

// start runs the node's Vault server; it returns once the API answers.
func (n *raftNode) start() error {
	hs := h
	logFile, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(hs.vaultBin, "server", "-config="+n.config, "-log-level=trace")
	cmd.Env = hs.baseEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group (its plugins join it) for the teardown; and die
	// with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s: %w", n.id, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	n.mu.Lock()
	n.cmd, n.exited, n.startedAt = cmd, exited, time.Now()
	n.mu.Unlock()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited during start-up:\n%s", n.id, n.logTail(30))
		default:
		}
		if _, err := n.health(); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: the API did not answer within a minute:\n%s", n.id, n.logTail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running reports whether the node's Vault process is alive.
func (n *raftNode) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

func (n *raftNode) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// kill9 kills the node's Vault server alone with SIGKILL (its plugin
// processes are left to notice) and waits until it is gone.
func (n *raftNode) kill9() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// killPlugin kills the node's plugin processes with SIGKILL, leaving Vault
// running, and returns their pids.
func (n *raftNode) killPlugin(t testing.TB) []int {
	t.Helper()
	pids := processesUnder(n.pluginDir)
	if len(pids) == 0 {
		t.Fatalf("%s runs no plugin process to kill", n.id)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if left := waitNoProcesses(pids, 10*time.Second); len(left) > 0 {
		t.Fatalf("plugin processes %v survived SIGKILL", left)
	}
	return pids
}

// waitNoProcesses waits until none of pids runs and returns those that do.
func waitNoProcesses(pids []int, limit time.Duration) []int {
	deadline := time.Now().Add(limit)
	for {
		var left []int
		for _, pid := range pids {
			if processRunning(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processRunning: a zombie waiting for its reaper has exited.
func processRunning(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// unseal gives the node the unseal key (a joining node also completes its
// raft join with it).
func (n *raftNode) unseal() error {
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := n.client("").Sys().Unseal(n.c.unsealKey)
		if err == nil && !st.Sealed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: unseal: %v (status %+v)\n%s", n.id, err, st, n.logTail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// restart starts a killed node on the same data directory and unseals it.
func (n *raftNode) restart(t testing.TB) {
	t.Helper()
	if n.running() {
		t.Fatalf("%s is still running", n.id)
	}
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	if err := n.unseal(); err != nil {
		t.Fatal(err)
	}
}

// health returns the status code of sys/health: 200 active, 429 standby,
// 503 sealed, 501 not initialised.
func (n *raftNode) health() (int, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(n.addr + "/v1/sys/health")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (n *raftNode) waitHealth(code int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		got, err := n.health()
		if got == code {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: sys/health %d (%v), want %d", n.id, got, err, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStandby waits until the node is a standby that knows the active
// node (so it can forward requests).
func (n *raftNode) waitStandby(limit time.Duration) error {
	if err := n.waitHealth(http.StatusTooManyRequests, limit); err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		l, err := n.client("").Sys().Leader()
		if err == nil && l.LeaderAddress != "" && !l.IsSelf {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not know the active node: %v", n.id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client is an API client for the node with token (the root token when
// empty, once the cluster is initialised).
func (n *raftNode) client(token string) *api.Client {
	conf := api.DefaultConfig()
	conf.Address = n.addr
	conf.Timeout = 2 * time.Minute
	conf.MaxRetries = 0
	client, err := api.NewClient(conf)
	if err != nil {
		panic(err)
	}
	client.ClearNamespace()
	if token == "" {
		token = n.c.rootToken
	}
	if token == "" {
		client.ClearToken()
	} else {
		client.SetToken(token)
	}
	return client
}

func (n *raftNode) logTail(lines int) string {
	data, _ := os.ReadFile(n.log)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// plugins lists the pids of plugin processes the node started.
func (n *raftNode) plugins() []int { return processesUnder(n.pluginDir) }
