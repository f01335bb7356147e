package docswalk

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Shell is one bash process that a document's commands are typed into, so
// that what one command sets (variables, aliases, exports) holds for the
// next, as in a terminal. Output is stdout and stderr interleaved, as a
// terminal shows them.
type Shell struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan struct{}
	end    *regexp.Regexp
	endTag string
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{}
}

// StartShell starts bash in dir with env. Aliases are expanded, as in an
// interactive shell.
func StartShell(dir string, env []string) (*Shell, error) {
	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	tag := "docs-walk-end-" + hex.EncodeToString(nonce)
	s := &Shell{
		done:   make(chan struct{}),
		end:    regexp.MustCompile(`\n?` + tag + ` (\d+)\n`),
		notify: make(chan struct{}, 1),
	}
	s.cmd = exec.Command("bash", "--norc", "--noprofile")
	s.cmd.Dir = dir
	s.cmd.Env = env
	// Own process group, so Close also ends anything a command left running
	// in the background; and gone with the test binary.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		pw.Close()
	}()
	go func() {
		defer close(s.done)
		chunk := make([]byte, 4096)
		for {
			n, err := pr.Read(chunk)
			s.mu.Lock()
			s.buf.Write(chunk[:n])
			s.mu.Unlock()
			select {
			case s.notify <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	s.endTag = tag
	if _, err := io.WriteString(s.stdin, "shopt -s expand_aliases\n"); err != nil {
		return nil, err
	}
	return s, nil
}

// Run types one command and waits for it to finish. It returns what the
// command printed and its exit status. Commands get no stdin unless they
// bring their own (a pipe, a here-document), so a command reading stdin
// cannot swallow the commands after it.
func (s *Shell) Run(command string, timeout time.Duration) (output string, status int, err error) {
	script := fmt.Sprintf("{\n%s\n} </dev/null\nprintf '\\n%s %%d\\n' \"$?\"\n", command, s.endTag)
	if _, err := io.WriteString(s.stdin, script); err != nil {
		return "", -1, fmt.Errorf("the shell is gone: %w", err)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		data := s.buf.Bytes()
		if loc := s.end.FindSubmatchIndex(data); loc != nil {
			output = string(data[:loc[0]])
			status, _ = strconv.Atoi(string(data[loc[2]:loc[3]]))
			rest := append([]byte(nil), data[loc[1]:]...)
			s.buf.Reset()
			s.buf.Write(rest)
			s.mu.Unlock()
			return output, status, nil
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-s.done:
			// Drain what arrived with the end of the stream, then give up.
			s.mu.Lock()
			data := s.buf.String()
			s.mu.Unlock()
			if s.end.MatchString(data) {
				continue
			}
			return data, -1, errors.New("the shell exited")
		case <-deadline.C:
			s.mu.Lock()
			data := s.buf.String()
			s.mu.Unlock()
			s.Close()
			return data, -1, fmt.Errorf("no end after %s: killed", timeout)
		}
	}
}

// Close ends the shell and everything it started.
func (s *Shell) Close() {
	_ = s.stdin.Close()
	if s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}
