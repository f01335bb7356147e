package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestWatchParentFiresOnlyWhenTheParentChanges(t *testing.T) {
	var ppid atomic.Int64
	ppid.Store(4242)
	fired := make(chan struct{})
	go watchParent(4242, func() int { return int(ppid.Load()) }, time.Millisecond, func() { close(fired) })
	select {
	case <-fired:
		t.Fatal("orphaned while the parent is alive")
	case <-time.After(50 * time.Millisecond):
	}
	ppid.Store(1) // re-parented to init
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("not orphaned after the parent changed")
	}
}

// The real thing: a process whose parent is killed with SIGKILL exits by
// itself. The test binary plays three roles, chosen by an environment
// variable: this test starts a "parent", which starts a "child" running
// the watchdog and prints its pid; the test kills the parent.
func TestOrphanedProcessExits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestOrphanedProcessExits$")
	parent.Env = append(os.Environ(), watchdogRoleEnv+"=parent")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = parent.Process.Kill()
		t.Fatalf("no child pid from the parent: %v", err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("bad child pid %q", line)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if !alive(child) {
		t.Fatal("the child is not running")
	}
	time.Sleep(3 * parentPollInterval)
	if !alive(child) {
		t.Fatal("the child exited while its parent was alive")
	}

	_ = parent.Process.Kill()
	_ = parent.Wait()
	killed := time.Now()
	for alive(child) {
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("the child still runs %s after its parent was killed", time.Since(killed))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the orphaned child exited %s after its parent was killed", time.Since(killed).Round(time.Millisecond))
}

const watchdogRoleEnv = "SF_WATCHDOG_TEST_ROLE"

// alive reports whether pid runs (a zombie waiting for a reaper has exited).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

func TestMain(m *testing.M) {
	switch os.Getenv(watchdogRoleEnv) {
	case "parent":
		child := exec.Command(os.Args[0], "-test.run=^$")
		child.Env = append(os.Environ(), watchdogRoleEnv+"=child")
		if err := child.Start(); err != nil {
			os.Exit(3)
		}
		fmt.Println(child.Process.Pid)
		time.Sleep(time.Hour) // until the test kills us
		os.Exit(0)
	case "child":
		go watchParent(os.Getppid(), os.Getppid, parentPollInterval, func() { os.Exit(0) })
		time.Sleep(time.Minute) // the test fails if we get this far
		os.Exit(4)
	}
	os.Exit(m.Run())
}
