package docswalk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Terminal runs a command as a terminal's foreground job, the way a
// developer runs `make dev`: in a new session on a pseudo-terminal, so that
// Ctrl-C reaches its whole process group through the terminal driver, as
// from a keyboard.
type Terminal struct {
	cmd    *exec.Cmd
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// StartInTerminal starts cmd (Dir and Env set by the caller) on a new
// pseudo-terminal.
func StartInTerminal(cmd *exec.Cmd) (*Terminal, error) {
	master, slave, err := openPTY()
	if err != nil {
		return nil, err
	}
	defer slave.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		return nil, err
	}
	t := &Terminal{cmd: cmd, master: master, exited: make(chan struct{})}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		chunk := make([]byte, 4096)
		for {
			n, err := master.Read(chunk)
			t.mu.Lock()
			t.out.Write(chunk[:n])
			t.mu.Unlock()
			if err != nil { // EIO once every process has closed the terminal
				return
			}
		}
	}()
	go func() {
		t.err = cmd.Wait()
		// Whatever the job wrote before it ended is read before exited
		// closes (or after a short wait, if a straggler keeps it open).
		select {
		case <-readDone:
		case <-time.After(2 * time.Second):
		}
		close(t.exited)
	}()
	return t, nil
}

// Output is everything written to the terminal so far, with the terminal's
// CR LF line ends turned back into LF.
func (t *Terminal) Output() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.ReplaceAll(t.out.String(), "\r\n", "\n")
}

// WaitFor waits until the output contains s, the job exits, or timeout.
func (t *Terminal) WaitFor(s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(t.Output(), s) {
			return nil
		}
		select {
		case <-t.exited:
			if strings.Contains(t.Output(), s) {
				return nil
			}
			return fmt.Errorf("exited (%v) before printing %q", t.err, s)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q after %s", s, timeout)
		}
	}
}

// Interrupt types Ctrl-C, and waits up to timeout for the job to exit. It
// returns the job's exit error (nil for status 0).
func (t *Terminal) Interrupt(timeout time.Duration) error {
	if _, err := t.master.Write([]byte{0x03}); err != nil {
		return fmt.Errorf("typing Ctrl-C: %w", err)
	}
	select {
	case <-t.exited:
		return t.err
	case <-time.After(timeout):
		return fmt.Errorf("still running %s after Ctrl-C", timeout)
	}
}

// Kill ends the job's whole process group, if it still runs, and releases
// the terminal.
func (t *Terminal) Kill() {
	select {
	case <-t.exited:
	default:
		_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-t.exited:
		case <-time.After(10 * time.Second):
		}
	}
	t.master.Close()
}

// Exited reports whether the job has ended, and its exit error.
func (t *Terminal) Exited() (bool, error) {
	select {
	case <-t.exited:
		return true, t.err
	default:
		return false, nil
	}
}

func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	var n uint32
	if err := ioctl(master, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("TIOCGPTN: %w", err)
	}
	var unlock int32
	if err := ioctl(master, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("TIOCSPTLCK: %w", err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

func ioctl(f *os.File, req uint, arg unsafe.Pointer) error {
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := conn.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errors.New(errno.Error())
	}
	return nil
}
