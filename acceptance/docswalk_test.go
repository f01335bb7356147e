//go:build linux

package acceptance

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/acceptance/docswalk"
)

// The docs walk (issue 16): every transcript block of README.md, docs/*.md
// and emulator/README.md runs in order, one document at a time, against a
// fresh `make dev` started the way a developer starts it (in a terminal,
// ended with Ctrl-C), in a copy of the repository so that nothing a
// developer has in .dev/ or bin/ is touched. The convention (markers, what
// is compared) is in CONTRIBUTING.md.
//
// Ports: the docs show make dev's defaults (Vault 8200, emulator 8787, the
// webhook receiver 8790); the walk picks free ports and rewrites loopback
// addresses in commands to them, and back in output.

// docsWalkDocs are the walked documents, relative to the repository root.
func docsWalkDocs(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	sort.Strings(docs)
	out := []string{"README.md"}
	for _, d := range docs {
		rel, _ := filepath.Rel(root, d)
		out = append(out, rel)
	}
	return append(out, filepath.Join("emulator", "README.md")), nil
}

// documented ports of make dev
const (
	docsVaultPort    = 8200
	docsEmulatorPort = 8787
	docsWebhookPort  = 8790
	docsEmulator2    = 8788 // a second, standalone emulator beside make dev's
)

// DOCSWALK_VERBOSE=1 logs every command with its (redacted) output, for
// finding which command of a document did something unexpected.
var docsVerbose = os.Getenv("DOCSWALK_VERBOSE") != ""

const (
	docsCommandTimeout = 3 * time.Minute
	// make dev builds the plugin and the emulator first; on a cold 2-core
	// machine that takes minutes. This bounds a hang, it measures nothing.
	docsStartTimeout = 8 * time.Minute
)

func TestDocsWalk(t *testing.T) {
	hs := need(t)
	docs, err := docsWalkDocs(hs.repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	// Parse every document first, so a mistake in the markup fails its
	// document at once, before make dev starts.
	parsed := map[string]*docswalk.Doc{}
	parseErrs := map[string]error{}
	for _, d := range docs {
		src, err := os.ReadFile(filepath.Join(hs.repoRoot, d))
		if err != nil {
			t.Fatal(err)
		}
		parsed[d], parseErrs[d] = docswalk.Parse(d, src)
	}
	goEnv, err := docsGoEnv()
	if err != nil {
		t.Fatal(err)
	}
	// One working directory for the whole walk: each document gets a fresh
	// copy of the repository at the same path, so Go's build cache, which
	// keys on the source directory, serves every make dev after the first.
	work, err := os.MkdirTemp("", "salesforce-docswalk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			_ = os.RemoveAll(work)
		} else {
			t.Logf("kept %s for inspection (repo/.dev/ has the logs of the last document)", work)
		}
	})
	for _, d := range docs {
		t.Run(strings.ReplaceAll(d, "/", "_"), func(t *testing.T) {
			if err := parseErrs[d]; err != nil {
				t.Fatalf("the markup of %s does not follow the docs convention (CONTRIBUTING.md):\n%v", d, err)
			}
			if !hasRunnable(parsed[d]) {
				// Nothing to type: report the skips without starting make dev.
				for _, b := range parsed[d].Blocks {
					t.Run(fmt.Sprintf("line_%d", b.Line), func(t *testing.T) { t.Skipf("%s:%d: not run: %s", d, b.Line, b.SkipReason) })
				}
				return
			}
			start := time.Now()
			walkDoc(t, hs, work, goEnv, func(string) (*docswalk.Doc, error) { return parsed[d], nil })
			t.Logf("%s: walked in %s", d, time.Since(start).Round(time.Second))
		})
	}
	// What make dev itself tells a developer to paste into a second shell.
	t.Run("make_dev_banner", func(t *testing.T) {
		start := time.Now()
		walkDoc(t, hs, work, goEnv, bannerCommands)
		t.Logf("make dev's banner: walked in %s", time.Since(start).Round(time.Second))
	})
}

// hasRunnable reports whether a document has a command the walk runs.
func hasRunnable(doc *docswalk.Doc) bool {
	for _, b := range doc.Blocks {
		if !b.Skip && len(b.Commands) > 0 {
			return true
		}
	}
	return false
}

// bannerCommands are the commands make dev's banner suggests, between "In
// another shell, try:" and its "Logs:" line, as printed (real ports).
func bannerCommands(out string) (*docswalk.Doc, error) {
	_, rest, ok := strings.Cut(out, "In another shell, try:\n")
	if !ok {
		return nil, fmt.Errorf("no \"In another shell, try:\" in make dev's banner")
	}
	text, _, ok := strings.Cut(rest, "\nLogs:")
	if !ok {
		return nil, fmt.Errorf("no \"Logs:\" line after make dev's suggested commands")
	}
	return docswalk.ParseScript("make dev's banner", text)
}

// docsGoEnv pins the Go settings of the caller (module and build caches,
// proxy), since make dev and the walk's shell get a private HOME.
func docsGoEnv() ([]string, error) {
	vars := []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOINSECURE", "GOFLAGS", "GOTOOLCHAIN"}
	out, err := exec.Command("go", append([]string{"env", "-json"}, vars...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, err
	}
	var env []string
	for _, v := range vars {
		if m[v] != "" {
			env = append(env, v+"="+m[v])
		}
	}
	return env, nil
}

// walkDoc starts make dev in a fresh copy of the repository, runs the
// commands of the document getDoc returns (it gets make dev's output so far,
// for documents that make dev prints itself), stops make dev with Ctrl-C and
// checks how it ended and that its logs hold no secret the walk saw.
func walkDoc(t *testing.T, hs *harness, work string, goEnv []string, getDoc func(devOutput string) (*docswalk.Doc, error)) {
	repo := filepath.Join(work, "repo")
	home := filepath.Join(work, "home")
	// The previous document's bin/ is kept, as in a developer's checkout:
	// go build relinks only what changed, which saves make dev a link of
	// each binary per document (tens of seconds on a busy 2-core machine).
	keptBin := filepath.Join(work, "bin")
	if err := os.Rename(filepath.Join(repo, "bin"), keptBin); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, d := range []string{repo, home} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyRepo(hs.repoRoot, repo); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(keptBin, filepath.Join(repo, "bin")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	ports := docswalk.PortMap{}
	for _, p := range []int{docsVaultPort, docsEmulatorPort, docsWebhookPort, docsEmulator2} {
		free, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[p] = free
	}
	vaultBin, err := filepath.Abs(hs.vaultBin)
	if err != nil {
		t.Fatal(err)
	}

	// A clean environment, as in a new terminal: no VAULT_* or make
	// settings of the caller, a private HOME (vault server -dev writes
	// ~/.vault-token).
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "VAULT_"), strings.HasPrefix(name, "GO"),
			name == "HOME", name == "MAKEFLAGS", name == "MAKELEVEL", name == "MFLAGS", name == "PATH":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, goEnv...)
	env = append(env, "HOME="+home)

	devEnv := append(append([]string(nil), env...),
		"PATH="+os.Getenv("PATH"),
		"VAULT_BIN="+vaultBin,
		"VAULT_PORT="+strconv.Itoa(ports[docsVaultPort]),
		"EMULATOR_PORT="+strconv.Itoa(ports[docsEmulatorPort]))
	dev := exec.Command("make", "dev")
	dev.Dir = repo
	dev.Env = devEnv
	term, err := docswalk.StartInTerminal(dev)
	if err != nil {
		t.Fatalf("make dev: %v", err)
	}
	var redact docswalk.Redactor
	stopped := false
	defer func() {
		if !stopped {
			term.Kill()
		}
	}()
	devStart := time.Now()
	if err := term.WaitFor("Press Ctrl-C to stop.", docsStartTimeout); err != nil {
		t.Fatalf("make dev did not come up: %v\n%s", err, ports.ToDoc(redact.Scrub(term.Output())))
	}
	t.Logf("make dev came up in %s", time.Since(devStart).Round(time.Second))

	doc, err := getDoc(term.Output())
	if err != nil {
		t.Fatal(err)
	}

	// The second shell of the README: VAULT_ADDR and VAULT_TOKEN as the
	// banner says, and the vault that make dev runs on PATH.
	shellEnv := append(append([]string(nil), env...),
		"PATH="+filepath.Join(repo, ".dev", "bin")+":"+os.Getenv("PATH"),
		"VAULT_ADDR=http://127.0.0.1:"+strconv.Itoa(ports[docsVaultPort]),
		"VAULT_TOKEN=root")
	sh, err := docswalk.StartShell(repo, shellEnv)
	if err != nil {
		t.Fatal(err)
	}

	var leases docswalk.LeaseIDs
	commands, skipped := 0, 0
walk:
	for _, b := range doc.Blocks {
		where := fmt.Sprintf("%s:%d", doc.Path, b.Line)
		if b.Skip {
			skipped++
			t.Run(fmt.Sprintf("line_%d", b.Line), func(t *testing.T) { t.Skipf("%s: not run: %s", where, b.SkipReason) })
			continue
		}
		for _, c := range b.Commands {
			commands++
			at := fmt.Sprintf("%s:%d", doc.Path, c.Line)
			typed := ports.ToReal(leases.Rewrite(c.Text))
			raw, status, err := sh.Run(typed, docsCommandTimeout)
			out := ports.ToDoc(redact.Redact(typed, raw))
			if err != nil {
				t.Errorf("%s: $ %s\nthe walk's shell failed: %v\noutput so far:\n%s", at, c.Text, err, out)
				break walk
			}
			if docsVerbose {
				t.Logf("%s: $ %s\n(status %d)\n%s", at, c.Text, status, out)
			}
			leases.Learn(c.Output, out)
			switch {
			case b.Fails && status == 0:
				t.Errorf("%s: $ %s\nsucceeded, but the block is marked fails; output:\n%s", at, c.Text, out)
				break walk
			case !b.Fails && status != 0:
				t.Errorf("%s: $ %s\nexited with status %d; output:\n%s", at, c.Text, status, out)
				break walk
			}
			if b.Expect {
				if diff := docswalk.Match(c.Output, out); diff != "" {
					t.Errorf("%s: $ %s\nthe output differs from the documented one:\n%s", at, c.Text, diff)
				}
			}
		}
	}
	sh.Close()
	t.Logf("%s: %d commands run, %d blocks skipped", doc.Path, commands, skipped)

	// make dev ends with Ctrl-C, cleanly: its own last line, no make error.
	// make re-raises Ctrl-C's SIGINT on itself once its recipe has ended,
	// as a foreground job should, so its shell sees it interrupted (and
	// prints nothing); what it must not do is report the recipe as failed.
	stopped = true
	err = term.Interrupt(time.Minute)
	tail := ports.ToDoc(redact.Scrub(lastLines(term.Output(), 8)))
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
			err = nil
		}
	}
	if err != nil {
		term.Kill()
		t.Errorf("make dev after Ctrl-C: %v\nlast lines:\n%s", err, tail)
	} else if strings.Contains(tail, "make: ***") || !strings.Contains(tail, "==> stopped") {
		t.Errorf("make dev did not end cleanly after Ctrl-C (want its \"==> stopped\" line and no make error); last lines:\n%s", tail)
	}

	// No secret the walk saw may show up in the logs of make dev.
	for _, log := range []string{"vault.log", "emulator.log"} {
		data, err := os.ReadFile(filepath.Join(repo, ".dev", log))
		if err != nil {
			t.Errorf("reading .dev/%s: %v", log, err)
			continue
		}
		var lengths []int
		for _, s := range redact.Seen() {
			if strings.Contains(string(data), s) {
				lengths = append(lengths, len(s))
			}
		}
		if len(lengths) > 0 {
			t.Errorf(".dev/%s contains %d secret value(s) the walk saw (lengths %v)", log, len(lengths), lengths)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// copyRepo copies the source tree (not .git, .dev/, bin/ or test binaries),
// keeping file modes and symlinks.
func copyRepo(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() && (rel == ".git" || rel == ".dev" || rel == "bin") {
			return filepath.SkipDir
		}
		if rel == ".git" || strings.HasSuffix(rel, ".test") {
			return nil // .git is a file in a worktree
		}
		target := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		}
		return nil
	})
}

func copyFile(from, to string, mode fs.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
