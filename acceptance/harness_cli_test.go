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
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The suite's ways of running the real vault CLI against the shared server,
// of finding the plugin processes Vault started, and of logging in to the
// emulator with SOAP as an application would.

type cliResult struct {
	Stdout, Stderr string
	Err            error
}

func runVault(t testing.TB, extraEnv []string, stdin string, args ...string) cliResult {
	t.Helper()
	hs := need(t)
	cmd := exec.Command(hs.vaultBin, args...)
	cmd.Env = append(hs.cliEnv(), extraEnv...)
	cmd.Dir = hs.dir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// The CLI talks to a local server; a hang is a bug, not a slow machine.
	timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	err := cmd.Run()
	timer.Stop()
	return cliResult{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// vaultCLI runs `vault args...` and returns its stdout; a non-zero exit fails
// the test.
func vaultCLI(t testing.TB, args ...string) string {
	t.Helper()
	r := runVault(t, nil, "", args...)
	if r.Err != nil {
		t.Fatalf("vault %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// vaultCLIStdin is vaultCLI with stdin, e.g. `vault write PATH -` with a JSON
// body, which keeps secrets off the command line.
func vaultCLIStdin(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	r := runVault(t, nil, stdin, args...)
	if r.Err != nil {
		t.Fatalf("vault %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// vaultWriteJSON writes data to path through `vault write PATH -`.
func vaultWriteJSON(t testing.TB, path string, data map[string]any) string {
	t.Helper()
	body, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return vaultCLIStdin(t, string(body), "write", path, "-")
}

// vaultCLIFails runs `vault args...`, expects a non-zero exit and returns
// stdout+stderr for the caller to check the message.
func vaultCLIFails(t testing.TB, args ...string) string {
	t.Helper()
	r := runVault(t, nil, "", args...)
	if r.Err == nil {
		t.Fatalf("vault %s succeeded, want an error\nstdout: %s", strings.Join(args, " "), r.Stdout)
	}
	return r.Stdout + r.Stderr
}

// vaultJSON runs `vault args...` with JSON output (VAULT_FORMAT=json) and
// decodes an object.
func vaultJSON(t testing.TB, args ...string) map[string]any {
	t.Helper()
	return vaultJSONAs[map[string]any](t, args...)
}

// vaultJSONAs runs `vault args...` with JSON output and decodes it into T
// (e.g. []string for `vault list`).
func vaultJSONAs[T any](t testing.TB, args ...string) T {
	t.Helper()
	r := runVault(t, []string{"VAULT_FORMAT=json"}, "", args...)
	if r.Err != nil {
		t.Fatalf("vault %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	var out T
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("vault %s: output is not the expected JSON (%v):\n%s", strings.Join(args, " "), err, r.Stdout)
	}
	return out
}

// pluginProcesses lists the pids of running processes whose executable is
// in the suite's plugin directory (any version).
func pluginProcesses(t testing.TB) []int {
	t.Helper()
	return processesUnder(need(t).pluginDir)
}

// pluginProcessesOf lists the pids running one plugin version's binary.
func pluginProcessesOf(t testing.TB, version string) []int {
	t.Helper()
	p := plugin(t, version)
	var pids []int
	for _, pid := range pluginProcesses(t) {
		if exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err == nil && exe == p.Path {
			pids = append(pids, pid)
		}
	}
	return pids
}

func processesUnder(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink("/proc/" + e.Name() + "/exe")
		if err != nil {
			continue
		}
		if strings.HasPrefix(exe, dir+string(filepath.Separator)) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// waitNoPluginProcesses waits up to limit for plugin processes to exit (Vault
// stops them asynchronously) and returns those still running.
func waitNoPluginProcesses(dir string, limit time.Duration) []int {
	deadline := time.Now().Add(limit)
	for {
		pids := processesUnder(dir)
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// soapLogin performs a SOAP partner login() against the emulator, as a
// Salesforce client library would with the credential Vault served. It
// returns the HTTP status and whether a session id came back.
func soapLogin(t testing.TB, username, passwordWithToken string) (status int, ok bool, body string) {
	t.Helper()
	return soapLoginAt(t, emulatorURL(t), username, passwordWithToken)
}

// soapLoginAt is soapLogin against the org at baseURL.
func soapLoginAt(t testing.TB, baseURL, username, passwordWithToken string) (status int, ok bool, body string) {
	t.Helper()
	var u, p bytes.Buffer
	_ = xml.EscapeText(&u, []byte(username))
	_ = xml.EscapeText(&p, []byte(passwordWithToken))
	envelope := `<?xml version="1.0" encoding="utf-8"?>` +
		`<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">` +
		`<env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com">` +
		`<n1:username>` + u.String() + `</n1:username><n1:password>` + p.String() + `</n1:password>` +
		`</n1:login></env:Body></env:Envelope>`
	req, err := http.NewRequest(http.MethodPost, baseURL+"/services/Soap/u/"+demoSOAPAPIVersion, strings.NewReader(envelope))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=UTF-8")
	req.Header.Set("SOAPAction", "login")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("SOAP login to the emulator: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.StatusCode == http.StatusOK && bytes.Contains(data, []byte("<sessionId>")), string(data)
}
