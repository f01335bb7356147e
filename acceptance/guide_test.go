package acceptance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A reader typing docs/applications.md: the guide runner and the Markdown
// helpers that take its commands and files out of the page. The tests that
// use them are in agent_test.go.

// guide runs the commands of docs/applications.md as a reader types them,
// in a directory laid out like the repository root, and records them so the
// test can check it ran exactly the guide's commands, in order.
type guide struct {
	t    *testing.T
	dir  string
	env  []string
	ran  []string
	mu   sync.Mutex
	proc map[int]*guideProcess // background processes by pid
}

type guideProcess struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

func newGuide(t *testing.T) *guide {
	t.Helper()
	hs := need(t)
	dir := t.TempDir()
	for _, name := range []string{"examples", "go.mod", "go.sum"} {
		if err := os.Symlink(filepath.Join(hs.repoRoot, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// `vault` on PATH is the suite's Vault, as `make dev`'s banner says.
	binDir := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hs.vaultBin, filepath.Join(binDir, "vault")); err != nil {
		t.Fatal(err)
	}
	env := append(hs.cliEnv(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	// The vault processes get a private HOME; go build keeps the caller's
	// caches so it does not rebuild every dependency.
	goVars := []string{"GOCACHE", "GOMODCACHE", "GOPATH"}
	out, err := exec.Command("go", append([]string{"env"}, goVars...)...).Output()
	values := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if err != nil || len(values) != len(goVars) {
		t.Fatalf("go env %v: %v\n%s", goVars, err, out)
	}
	for i, v := range goVars {
		env = append(env, v+"="+values[i])
	}
	g := &guide{t: t, dir: dir, env: env, proc: map[int]*guideProcess{}}
	t.Cleanup(g.stopAll)
	return g
}

// run types a command into bash and returns its combined output; a
// non-zero exit, or no exit within limit, fails the test.
func (g *guide) run(command string, limit time.Duration) string {
	g.t.Helper()
	out, err := g.bash(command, limit)
	if err != nil {
		g.t.Fatalf("$ %s\n%v:\n%s\n%s", command, err, out, g.logs())
	}
	return out
}

// runFails is run for a command the guide shows failing.
func (g *guide) runFails(command string, limit time.Duration) string {
	g.t.Helper()
	out, err := g.bash(command, limit)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		g.t.Fatalf("$ %s\nwant a failure, got %v:\n%s", command, err, out)
	}
	return out
}

func (g *guide) bash(command string, limit time.Duration) (string, error) {
	g.t.Logf("%s $ %s", time.Now().Format("15:04:05.000"), command)
	g.ran = append(g.ran, command)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", command)
	cmd.Dir = g.dir
	cmd.Env = g.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("no exit within %s: %w", limit, ctx.Err())
	}
	return string(out), err
}

// backgroundCommand is the guide's form for long-running processes:
// [NAME=VALUE ...] PROGRAM ARGS... > LOG 2>&1 & [echo $! > PIDFILE]
var backgroundCommand = regexp.MustCompile(`^((?:[A-Z_]+=\S+ )*)(\S+)((?: [^ >&]+)*) > (\S+) 2>&1 &(?: echo \$! > (\S+))?$`)

// start runs a background command of the guide as a child of the test (so
// it dies with the test binary), with the same program, arguments,
// environment, log file and pid file as typed.
func (g *guide) start(command string) *guideProcess {
	g.t.Helper()
	g.ran = append(g.ran, command)
	m := backgroundCommand.FindStringSubmatch(command)
	if m == nil {
		g.t.Fatalf("not a background command of the form the guide uses: %s", command)
	}
	env := append([]string(nil), g.env...)
	env = append(env, strings.Fields(m[1])...)
	prog := m[2]
	if prog == "vault" {
		prog = need(g.t).vaultBin
	} else {
		prog = filepath.Join(g.dir, prog)
	}
	logFile, err := os.Create(filepath.Join(g.dir, m[4]))
	if err != nil {
		g.t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(prog, strings.Fields(m[3])...)
	cmd.Dir = g.dir
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		g.t.Fatalf("$ %s: %v", command, err)
	}
	p := &guideProcess{name: m[2], cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	g.mu.Lock()
	g.proc[cmd.Process.Pid] = p
	g.mu.Unlock()
	if m[5] != "" {
		if err := os.WriteFile(filepath.Join(g.dir, m[5]), fmt.Appendf(nil, "%d\n", cmd.Process.Pid), 0o600); err != nil {
			g.t.Fatal(err)
		}
	}
	return p
}

// stopAll ends the background processes the guide started that are still
// running (each by its pid).
func (g *guide) stopAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for pid, p := range g.proc {
		select {
		case <-p.exited:
			continue
		default:
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-p.exited
		}
	}
}

func (g *guide) read(name string) string {
	g.t.Helper()
	data, err := os.ReadFile(filepath.Join(g.dir, name))
	if err != nil {
		g.t.Fatalf("%v\n%s", err, g.logs())
	}
	return string(data)
}

// logs is the tail of every log in .dev/agent, for failure messages.
func (g *guide) logs() string {
	var b strings.Builder
	matches, _ := filepath.Glob(filepath.Join(g.dir, ".dev", "agent", "*.log"))
	for _, m := range matches {
		data, _ := os.ReadFile(m)
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		fmt.Fprintf(&b, "--- %s (tail)\n%s\n", filepath.Base(m), strings.Join(lines, "\n"))
	}
	return b.String()
}

// waitLog waits until the log holds a line matching re after the first
// `after` bytes, and returns the log's length then.
func (g *guide) waitLog(name string, after int, re *regexp.Regexp) int {
	g.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		data := g.read(name)
		if len(data) > after && re.MatchString(data[after:]) {
			return len(data)
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s: no line matching %q after offset %d within 60s\n%s", name, re, after, g.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readRepoFile(t *testing.T, root, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// docBlock is a fenced block of a Markdown file: its info string (hcl,
// yaml, or empty for transcripts), its body with a final newline, and the
// HTML comment on the line before it, if any.
type docBlock struct {
	info, body, marker string
}

func fencedBlocks(doc string) []docBlock {
	var (
		blocks []docBlock
		cur    *docBlock
		prev   string
	)
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &docBlock{info: strings.TrimPrefix(trimmed, "```")}
			if strings.HasPrefix(strings.TrimSpace(prev), "<!--") {
				cur.marker = strings.TrimSpace(prev)
			}
		case cur != nil && trimmed == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.body += line + "\n"
		}
		prev = line
	}
	return blocks
}

// guideCommands are the `$ ` lines of the guide's plain transcript blocks,
// except blocks marked docs-walk: skip.
func guideCommands(t *testing.T) []string {
	t.Helper()
	doc := readRepoFile(t, need(t).repoRoot, appGuide)
	var cmds []string
	for _, b := range fencedBlocks(doc) {
		if b.info != "" || strings.HasPrefix(b.marker, "<!-- docs-walk: skip") {
			continue
		}
		for _, line := range strings.Split(b.body, "\n") {
			if c, ok := strings.CutPrefix(line, "$ "); ok {
				cmds = append(cmds, c)
			}
		}
	}
	return cmds
}

// yamlBlockScalar returns the literal block scalar that follows key (a
// line ending in "key: |"), with its indentation removed.
func yamlBlockScalar(body, key string) (string, bool) {
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != key {
			continue
		}
		keyIndent := len(l) - len(strings.TrimLeft(l, " "))
		var out bytes.Buffer
		indent := -1
		for _, s := range lines[i+1:] {
			if strings.TrimSpace(s) == "" {
				out.WriteString("\n")
				continue
			}
			n := len(s) - len(strings.TrimLeft(s, " "))
			if n <= keyIndent {
				break
			}
			if indent < 0 {
				indent = n
			}
			if n < indent {
				break
			}
			out.WriteString(s[indent:] + "\n")
		}
		return strings.TrimRight(out.String(), "\n") + "\n", true
	}
	return "", false
}
