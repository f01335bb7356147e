// Package docswalk reads the shell transcripts in the project's Markdown
// docs and checks what a run of them printed, for the docs walk of the
// acceptance suite (acceptance/docswalk_test.go). The convention it
// implements is described for contributors in CONTRIBUTING.md:
//
//   - A fenced block whose lines include commands starting with "$ " is a
//     transcript: each command runs in one shell per document, in order; the
//     lines after a command, up to the next "$ ", are its output.
//   - An HTML comment on the line before the block changes how it is run:
//     <!-- docs-walk: skip: <reason> --> (not run, reason reported),
//     <!-- docs-walk: expect --> (the output shown must match),
//     <!-- docs-walk: fails --> (every command must exit non-zero);
//     expect and fails combine (<!-- docs-walk: expect fails -->).
//   - A sh/bash/shell/console block without "$ " commands is an error, so
//     that no command in the docs escapes the walk unnoticed.
package docswalk

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// Doc is one Markdown file's transcript blocks, in order.
type Doc struct {
	Path   string
	Blocks []Block
}

// Block is one fenced transcript block.
type Block struct {
	Line       int // 1-based line of the opening fence
	Info       string
	Skip       bool
	SkipReason string
	Expect     bool // compare the documented output with the real one
	Fails      bool // every command must exit non-zero
	Commands   []Command
}

// Command is one "$ " command of a block, with continuation lines.
type Command struct {
	Line   int    // 1-based line of the "$ " line
	Text   string // the command as typed (continuation lines included, prompt removed)
	Output string // the output the doc shows (may be empty)
}

// shellInfo are fence info strings that announce shell commands.
var shellInfo = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true, "shell-session": true, "zsh": true}

var (
	fenceRE  = regexp.MustCompile("^( *)(`{3,}|~{3,})\\s*([^`\\s]*)[^`]*$")
	markerRE = regexp.MustCompile(`^\s*<!--\s*docs-walk:(.*?)-->\s*$`)
)

// Parse reads the transcript blocks of one Markdown document. Errors name
// the file and line and are mistakes in the doc (an unknown marker, a shell
// block without prompts, an incomplete command).
func Parse(path string, src []byte) (*Doc, error) {
	doc := &Doc{Path: path}
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	var errs []error
	fail := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...)))
	}

	prevNonBlank := -1 // index of the last non-blank line outside a block
	for i := 0; i < len(lines); i++ {
		m := fenceRE.FindStringSubmatch(lines[i])
		if m == nil {
			if strings.Contains(lines[i], "docs-walk:") {
				// A marker must be a whole-line comment right before a
				// block; one that is not would be silently ignored.
				if !markerRE.MatchString(lines[i]) {
					fail(i+1, "malformed docs-walk marker (want a line <!-- docs-walk: ... -->)")
				} else if next := nextNonBlank(lines, i+1); next < 0 || fenceRE.FindStringSubmatch(lines[next]) == nil {
					fail(i+1, "docs-walk marker is not on the line before a fenced block")
				}
			}
			if strings.TrimSpace(lines[i]) != "" {
				prevNonBlank = i
			}
			continue
		}
		indent, fence, info := len(m[1]), m[2], strings.ToLower(m[3])
		start := i
		var content []string
		closed := false
		for i++; i < len(lines); i++ {
			l := lines[i]
			t := strings.TrimLeft(l, " ")
			if strings.HasPrefix(t, fence[:1]) && strings.Trim(strings.TrimSpace(t), fence[:1]) == "" && len(strings.TrimSpace(t)) >= len(fence) {
				closed = true
				break
			}
			content = append(content, dedent(l, indent))
		}
		if !closed {
			fail(start+1, "fenced block is never closed")
			break
		}
		block := Block{Line: start + 1, Info: info}
		hasMarker := false
		if prevNonBlank >= 0 {
			if mm := markerRE.FindStringSubmatch(lines[prevNonBlank]); mm != nil {
				hasMarker = true
				if err := parseMarker(&block, mm[1]); err != nil {
					fail(prevNonBlank+1, "%v", err)
				}
			}
		}
		prevNonBlank = i

		isTranscript := false
		for _, l := range content {
			if strings.HasPrefix(l, "$ ") {
				isTranscript = true
				break
			}
		}
		switch {
		case isTranscript:
			cmds, err := parseTranscript(content, start+2)
			if err != nil {
				fail(start+1, "%v", err)
				continue
			}
			block.Commands = cmds
			doc.Blocks = append(doc.Blocks, block)
		case shellInfo[info] && !block.Skip:
			fail(start+1, "```%s block has no \"$ \" commands: write it as a transcript (\"$ command\" lines, output below) or mark it <!-- docs-walk: skip: reason -->", info)
		case hasMarker && !block.Skip:
			fail(start+1, "docs-walk marker on a block without \"$ \" commands")
		case block.Skip:
			// A skipped shell block that is not a transcript is still
			// reported, so nobody wonders why it was not run.
			doc.Blocks = append(doc.Blocks, block)
		}
	}
	return doc, errors.Join(errs...)
}

func nextNonBlank(lines []string, from int) int {
	for j := from; j < len(lines); j++ {
		if strings.TrimSpace(lines[j]) != "" {
			return j
		}
	}
	return -1
}

// dedent removes up to n leading spaces: a fence indented inside a list
// item indents its content the same way.
func dedent(l string, n int) string {
	for k := 0; k < n && strings.HasPrefix(l, " "); k++ {
		l = l[1:]
	}
	return l
}

func parseMarker(b *Block, spec string) error {
	spec = strings.TrimSpace(spec)
	if rest, ok := strings.CutPrefix(spec, "skip"); ok {
		reason, ok := strings.CutPrefix(strings.TrimSpace(rest), ":")
		reason = strings.TrimSpace(reason)
		if !ok || reason == "" {
			return errors.New("docs-walk: skip needs a reason: <!-- docs-walk: skip: why it cannot run here -->")
		}
		b.Skip, b.SkipReason = true, reason
		return nil
	}
	words := strings.FieldsFunc(spec, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(words) == 0 {
		return errors.New("empty docs-walk marker (want skip: <reason>, expect, fails)")
	}
	for _, w := range words {
		switch w {
		case "expect":
			b.Expect = true
		case "fails":
			b.Fails = true
		default:
			return fmt.Errorf("unknown docs-walk marker %q (want skip: <reason>, expect, fails)", w)
		}
	}
	return nil
}

// parseTranscript splits a block's lines into commands and their output.
// firstLine is the 1-based line number of content[0].
func parseTranscript(content []string, firstLine int) ([]Command, error) {
	var cmds []Command
	i := 0
	for i < len(content) && strings.TrimSpace(content[i]) == "" {
		i++
	}
	if i < len(content) && !strings.HasPrefix(content[i], "$ ") {
		return nil, fmt.Errorf("line %d: a transcript starts with a \"$ \" command, not %q", firstLine+i, content[i])
	}
	for i < len(content) {
		line := firstLine + i
		text := strings.TrimPrefix(content[i], "$ ")
		i++
		for {
			complete, err := shellComplete(text)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", line, err)
			}
			if complete {
				break
			}
			if i >= len(content) {
				return nil, fmt.Errorf("line %d: the command is incomplete at the end of the block", line)
			}
			text += "\n" + content[i]
			i++
		}
		var out []string
		for i < len(content) && !strings.HasPrefix(content[i], "$ ") {
			out = append(out, content[i])
			i++
		}
		for len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" {
			out = out[:len(out)-1]
		}
		cmds = append(cmds, Command{Line: line, Text: text, Output: strings.Join(out, "\n")})
	}
	return cmds, nil
}

// shellComplete reports whether text is a complete shell command, asking
// bash itself (bash -n), so quoting, pipes at line ends and here-documents
// follow the shell's own rules. A syntax error other than an early end of
// input is returned as an error.
func shellComplete(text string) (bool, error) {
	if strings.HasSuffix(text, "\\") {
		return false, nil
	}
	cmd := exec.Command("bash", "--norc", "--noprofile", "-n")
	cmd.Stdin = strings.NewReader(text + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	msg := stderr.String()
	if strings.Contains(msg, "unexpected end of file") || strings.Contains(msg, "unexpected EOF") || strings.Contains(msg, "delimited by end-of-file") {
		return false, nil
	}
	if err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return false, fmt.Errorf("bash -n: %v", err)
		}
		return false, fmt.Errorf("not a valid shell command: %s", strings.TrimSpace(msg))
	}
	return true, nil
}

// ParseScript reads commands without prompts, one per line (continued as the
// shell continues them), skipping blank lines and comments: the commands a
// program prints for the user to paste, such as make dev's banner. Each
// becomes a block of a Doc named name; a command whose comment says it runs
// "until Ctrl-C" is a skipped block, since it would never hand back the shell.
func ParseScript(name, text string) (*Doc, error) {
	lines := strings.Split(text, "\n")
	doc := &Doc{Path: name}
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		c := Command{Line: i + 1, Text: l}
		for {
			complete, err := shellComplete(c.Text)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", name, c.Line, err)
			}
			if complete {
				break
			}
			if i+1 >= len(lines) {
				return nil, fmt.Errorf("%s:%d: the command is incomplete at the end", name, c.Line)
			}
			i++
			c.Text += "\n" + lines[i]
		}
		b := Block{Line: c.Line, Commands: []Command{c}}
		if untilCtrlC.MatchString(c.Text) {
			b.Skip, b.SkipReason = true, "runs until Ctrl-C"
		}
		doc.Blocks = append(doc.Blocks, b)
	}
	return doc, nil
}

var untilCtrlC = regexp.MustCompile(`#.*\buntil Ctrl-C\b`)
