package docswalk

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestTerminalCtrlCReachesTheForegroundJob(t *testing.T) {
	// bash ignores SIGINT for its background jobs, so only a terminal's
	// Ctrl-C to the foreground group (not a signal to one process) makes
	// the trap run while sleep is waited for.
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", `trap 'echo stopped by Ctrl-C; exit 0' INT; echo ready; sleep 30 & wait`)
	term, err := StartInTerminal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer term.Kill()
	if err := term.WaitFor("ready\n", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := term.Interrupt(10 * time.Second); err != nil {
		t.Fatalf("after Ctrl-C: %v\n%s", err, term.Output())
	}
	if !strings.Contains(term.Output(), "stopped by Ctrl-C\n") {
		t.Fatalf("the trap did not run:\n%q", term.Output())
	}
}
