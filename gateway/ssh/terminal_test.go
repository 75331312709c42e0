package ssh_test

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// ptyClient is the OpenSSH client on a local pty: a user at a terminal.
type ptyClient struct {
	t       testing.TB
	cmd     *exec.Cmd
	pty     *os.File
	mu      sync.Mutex
	out     bytes.Buffer
	changed chan struct{}
	done    chan struct{}
}

func (g *gateway) startTerminal(account string, cols, rows int) *ptyClient {
	g.t.Helper()
	args := append(g.sshArgs(g.aliceKey), "-tt", "-p", strconv.Itoa(g.port), account+"@127.0.0.1")
	cmd := exec.Command("ssh", args...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color", "LANG=C.UTF-8")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	if err != nil {
		g.t.Fatalf("start ssh on a pty: %v", err)
	}
	c := &ptyClient{t: g.t, cmd: cmd, pty: f, changed: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	g.t.Cleanup(c.close)
	return c
}

func (c *ptyClient) read() {
	defer close(c.done)
	buf := make([]byte, 4096)
	for {
		n, err := c.pty.Read(buf)
		c.mu.Lock()
		c.out.Write(buf[:n])
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (c *ptyClient) send(keys string) {
	c.t.Helper()
	if _, err := c.pty.Write([]byte(keys)); err != nil {
		c.t.Fatalf("type %q: %v", keys, err)
	}
}

// wait polls the terminal output until cond holds.
func (c *ptyClient) wait(what string, cond func(out string) bool) {
	c.t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		out, ch := c.out.String(), c.changed
		c.mu.Unlock()
		if cond(out) {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			c.t.Fatalf("timed out waiting for %s; terminal so far:\n%q", what, out)
		}
	}
}

// close waits for the client to exit (or kills it).
func (c *ptyClient) close() {
	exited := make(chan struct{})
	go func() {
		_ = c.cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-exited
	}
	<-c.done
	_ = c.pty.Close()
}

const readyTitle = "\x1b]2;ready\x07" // an invisible marker printed before each prompt

// TestInteractiveShell drives bash through the gateway from a real OpenSSH
// client on a pty, with line editing of every kind, and checks each
// recorded command against bash's own history file.
func TestInteractiveShell(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	remote := g.remoteTempDir()
	if _, stderr, code := g.ssh(g.aliceKey, accountKey, "printf 'line one\\nline two\\n' > "+remote+"/unique-target-file.txt"); code != 0 {
		t.Fatalf("prepare the remote file: %s", stderr)
	}
	g.settle()
	before := len(ofKind(g.rec.Events(), "end"))
	hist := remote + "/history"

	c := g.startTerminal(accountKey, 100, 30)
	c.wait("the first prompt", func(out string) bool { return strings.HasSuffix(strings.TrimRight(out, " "), "$") })
	// The user's own setup: a history file to compare with, nothing left
	// out of it, and a marker so the test types only at a prompt, like a
	// person does.
	c.send("export HISTFILE=" + hist + " HISTCONTROL= PROMPT_COMMAND='history -a; printf \"\\033]2;ready\\007\"'\r")
	prompts := 1
	waitPrompt := func() {
		c.wait("prompt", func(out string) bool {
			i := strings.LastIndex(out, readyTitle)
			return strings.Count(out, readyTitle) >= prompts && strings.Contains(out[i:], "$ ")
		})
	}
	waitPrompt()
	long := "echo " + strings.Repeat("wide", 28) // 117 columns: wraps at 100, not at 120
	// A person types after the window has changed; bash learns of it by
	// SIGWINCH only after the gateway relays it, and what is typed during
	// its redraw is drawn for the old width. The test waits for bash to
	// report the new width first.
	const widthCheck = "echo cols=$COLUMNS\r"
	steps := []string{
		"echo hello\r",
		"cd " + remote + "\r",
		"cat uniq\t\r",                 // tab completion
		"\x1b[A\r",                     // history recall
		"echo garbage\x15echo fixed\r", // Ctrl-U
		"echo typx\x7fo\r",             // backspace
		"seq 1 5\r",                    // multi-line output
		"resize",                       // the window grows to 120 columns
		widthCheck,                     // typed once bash has redrawn for the new width
		long + "\r",
		"less unique-target-file.txt\r",
		"echo after-less\r",
	}
	for _, keys := range steps {
		if keys == "resize" {
			if err := pty.Setsize(c.pty, &pty.Winsize{Cols: 120, Rows: 30}); err != nil {
				t.Fatal(err)
			}
			g.waitEvents("the window change", func(evs []recordertest.Event) bool {
				for _, e := range ofKind(evs, "output") {
					if e.Output.Stream == "resize" && e.Output.Data == "120x30" {
						return true
					}
				}
				return false
			})
			continue
		}
		c.send(keys)
		if keys == widthCheck {
			c.wait("bash at the new width", func(out string) bool { return strings.Contains(out, "cols=120") })
		}
		if strings.HasPrefix(keys, "less") {
			c.wait("less on the alternate screen", func(out string) bool { return strings.Count(out, "\x1b[?1049h") >= 1 })
			c.send("q")
		}
		prompts++
		waitPrompt()
	}
	c.send("exit\r")
	c.close()

	evs := g.waitSessionEnds(before + 1)
	end := ofKind(evs, "end")[before]
	if end.End.Reason != schema.EndClientQuit {
		t.Errorf("session ended %+v, want %s", end.End, schema.EndClientQuit)
	}
	session := end.Session
	var got []string
	var outputs []recordertest.Event
	for _, e := range evs {
		if e.Session != session {
			continue
		}
		switch e.Kind {
		case "command":
			got = append(got, e.Command.Text)
			if e.Command.Channel != "terminal" {
				t.Errorf("command %q on channel %q", e.Command.Text, e.Command.Channel)
			}
			switch e.Command.Text {
			case "seq 1 5":
				if e.Command.Output != "1\n2\n3\n4\n5" {
					t.Errorf("seq output = %q", e.Command.Output)
				}
			case "less unique-target-file.txt":
				if strings.Contains(e.Command.Output, "line one") {
					t.Errorf("the full-screen program's screen leaked into the output: %q", e.Command.Output)
				}
			}
		case "output":
			outputs = append(outputs, e)
		}
	}

	historyFile, stderr, code := g.ssh(g.aliceKey, accountKey, "cat "+hist)
	if code != 0 {
		t.Fatalf("read the history file: %s", stderr)
	}
	want := strings.Split(strings.TrimRight(historyFile, "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("recorded commands differ from bash's history\n got %q\nwant %q", got, want)
	}

	// The raw output is recorded too, in order, for replay, starting with
	// the terminal's size.
	if len(outputs) == 0 || outputs[0].Output.Stream != "resize" || outputs[0].Output.Data != "100x30" {
		t.Fatalf("the first output record is not the pty size: %+v", outputs[0].Output)
	}
	var replay strings.Builder
	var last time.Duration
	for _, o := range outputs {
		if o.Output.Elapsed < last {
			t.Errorf("output records out of order")
		}
		last = o.Output.Elapsed
		if o.Output.Stream == "pty" {
			replay.WriteString(o.Output.Data)
		}
	}
	for _, s := range []string{"hello", "after-less", "line two", "logout"} {
		if !strings.Contains(replay.String(), s) {
			t.Errorf("replay records lack %q", s)
		}
	}
}
