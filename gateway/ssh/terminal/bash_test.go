package terminal

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// bashSession drives a real interactive bash on a local pty and feeds the
// Tracker exactly what would cross the gateway: keys in, output out.
type bashSession struct {
	t       *testing.T
	pty     *os.File
	cmd     *exec.Cmd
	mu      sync.Mutex
	tracker *Tracker
	output  bytes.Buffer
	cmds    []Command
	changed chan struct{}
	readErr chan error
	closing sync.Once
}

const (
	testPrompt  = "pt> "
	readyMarker = "\\033]2;ready\\007" // an invisible title change
	readyBytes  = "\x1b]2;ready\x07"
)

func startBash(t *testing.T, dir string, cols, rows int) *bashSession {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is required for this test: %v", err)
	}
	cmd := exec.Command(bash, "--norc", "--noprofile", "-i")
	cmd.Dir = dir
	cmd.Env = []string{
		"HOME=" + dir,
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"TERM=xterm-256color",
		"PS1=[\\W]" + testPrompt,
		"HISTFILE=" + filepath.Join(dir, "history"),
		"HISTCONTROL=",
		// The marker says bash is ready for the next line, so the test
		// types like a person who waits for the prompt.
		"PROMPT_COMMAND=history -a; printf '" + readyMarker + "'",
		"LESS=", "LESSHISTFILE=-",
		"INPUTRC=/dev/null",
	}
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	if err != nil {
		t.Fatalf("start bash on a pty: %v", err)
	}
	s := &bashSession{
		t: t, pty: f, cmd: cmd,
		tracker: New(Options{Width: cols, Height: rows}),
		changed: make(chan struct{}),
		readErr: make(chan error, 1),
	}
	go s.readLoop()
	t.Cleanup(s.close)
	return s
}

func (s *bashSession) readLoop() {
	buf := make([]byte, 4096)
	for {
		n, err := s.pty.Read(buf)
		if n > 0 {
			s.mu.Lock()
			s.output.Write(buf[:n])
			s.cmds = append(s.cmds, s.tracker.Output(buf[:n])...)
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		}
		if err != nil {
			s.readErr <- err
			return
		}
	}
}

// send types keys. The Tracker sees them before bash does, as at the gateway.
func (s *bashSession) send(keys string) {
	s.mu.Lock()
	s.cmds = append(s.cmds, s.tracker.Input([]byte(keys))...)
	s.mu.Unlock()
	if _, err := s.pty.Write([]byte(keys)); err != nil {
		s.t.Fatalf("write keys: %v", err)
	}
}

// waitOutput polls until the output so far satisfies cond.
func (s *bashSession) waitOutput(what string, cond func(out string) bool) {
	s.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		out, ch := s.output.String(), s.changed
		s.mu.Unlock()
		if cond(out) {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			s.t.Fatalf("timed out waiting for %s; output so far:\n%q", what, out)
		}
	}
}

// waitPrompts waits until bash has printed its n-th prompt.
func (s *bashSession) waitPrompts(n int) {
	s.t.Helper()
	s.waitOutput("prompt", func(out string) bool {
		return strings.Count(out, readyBytes) >= n &&
			strings.Contains(out[strings.LastIndex(out, readyBytes):], testPrompt)
	})
}

// close waits for bash to exit (after "exit", or killed) and closes the
// Tracker. It runs once; the test cleanup calls it again.
func (s *bashSession) close() {
	s.closing.Do(func() {
		done := make(chan struct{})
		go func() {
			_ = s.cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
		<-s.readErr // the pty reports EIO once bash and its children are gone
		_ = s.pty.Close()
		s.mu.Lock()
		s.cmds = append(s.cmds, s.tracker.Close()...)
		s.mu.Unlock()
	})
}

func (s *bashSession) commands() []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Command(nil), s.cmds...)
}

// TestTrackerMatchesBashHistory types a session full of line editing into a
// real bash and checks that every extracted command is what bash recorded
// in its own history file.
func TestTrackerMatchesBashHistory(t *testing.T) {
	if _, err := exec.LookPath("less"); err != nil {
		t.Fatalf("less is required for this test: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "unique-target-file.txt"), []byte("content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("0123456789", 12) // wraps on an 80-column screen
	s := startBash(t, dir, 80, 24)
	prompts := 1
	s.waitPrompts(prompts)
	steps := []struct {
		name string
		keys string
	}{
		{"plain", "echo hello\r"},
		{"tab completion", "cat uniq\t\r"},
		{"history recall", "\x1b[A\r"},
		{"ctrl-u", "echo garbage\x15echo fixed\r"},
		{"backspace", "echo typx\x7fo\r"},
		{"cursor movement", "echo ac\x1b[Db\r"},
		{"multi-line output", "seq 1 5\r"},
		{"cd", "cd subdir\r"},
		{"pwd after cd", "pwd\r"},
		{"wrapped line", "echo " + long + "\r"},
		{"full-screen program", "less ../unique-target-file.txt\r"},
	}
	for _, st := range steps {
		s.send(st.keys)
		if st.name == "full-screen program" {
			s.waitOutput("less on the alternate screen", func(out string) bool { return strings.Contains(out, "\x1b[?1049h") })
			s.send("q")
		}
		prompts++
		s.waitPrompts(prompts)
	}
	s.send("echo after-less\r")
	prompts++
	s.waitPrompts(prompts)

	hist, err := os.ReadFile(filepath.Join(dir, "history"))
	if err != nil {
		t.Fatalf("bash history: %v", err)
	}
	want := strings.Split(strings.TrimSpace(string(hist)), "\n")
	s.send("exit\r")
	s.close()

	var got []string
	for _, c := range s.commands() {
		got = append(got, c.Text)
	}
	if len(got) > 0 && got[len(got)-1] == "exit" {
		got = got[:len(got)-1]
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("extracted commands differ from bash history\n got: %q\nwant: %q", got, want)
	}
	// Spot-check outputs: the multi-line output, and nothing of less's screen.
	for _, c := range s.commands() {
		switch c.Text {
		case "seq 1 5":
			if c.Output != "1\n2\n3\n4\n5" {
				t.Errorf("seq output = %q", c.Output)
			}
		case "pwd":
			if !strings.HasSuffix(c.Output, "/subdir") {
				t.Errorf("pwd output = %q", c.Output)
			}
		case "less ../unique-target-file.txt":
			if strings.Contains(c.Output, "content") {
				t.Errorf("less output leaked the alternate screen: %q", c.Output)
			}
		}
		if c.End.Before(c.Start) {
			t.Errorf("%q: end %v before start %v", c.Text, c.End, c.Start)
		}
	}
}

// TestTrackerTypeAhead types lines before bash shows their prompt, as a
// fast typist or a paste does, and checks nothing is lost or invented;
// then interrupts a line, which must not be recorded.
func TestTrackerTypeAhead(t *testing.T) {
	dir := t.TempDir()
	s := startBash(t, dir, 80, 24)
	s.waitPrompts(1)
	// Typed while sleep runs: the keys wait in the tty until bash reads them.
	s.send("sleep 0.3\r")
	s.send("echo typed-ahead\r")
	s.send("echo second\r")
	s.waitPrompts(4)
	s.send("echo abandoned")
	s.waitOutput("the abandoned line's echo", func(out string) bool { return strings.Contains(out, "echo abandoned") })
	s.send("\x03")
	s.waitOutput("interrupted line", func(out string) bool { return strings.Count(out, "^C") >= 1 })
	s.waitPrompts(5)
	s.send("echo last\r")
	s.waitPrompts(6)
	s.send("exit\r")
	s.close()
	hist, err := os.ReadFile(filepath.Join(dir, "history"))
	if err != nil {
		t.Fatalf("bash history: %v", err)
	}
	want := strings.Split(strings.TrimSpace(string(hist)), "\n")
	if want[len(want)-1] != "exit" {
		want = append(want, "exit")
	}
	var got []string
	for _, c := range s.commands() {
		got = append(got, c.Text)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("extracted commands differ from bash history\n got: %q\nwant: %q", got, want)
	}
	for _, c := range s.commands() {
		if c.Text == "echo typed-ahead" && c.Output != "typed-ahead" {
			t.Errorf("typed-ahead output = %q", c.Output)
		}
	}
}
