package terminal

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// step is one chunk crossing the gateway: keys from the user (in) or
// output from the shell (out).
type step struct{ in, out string }

func in(s string) step  { return step{in: s} }
func out(s string) step { return step{out: s} }

func run(opts Options, steps ...step) []Command {
	t := New(opts)
	var cmds []Command
	for _, s := range steps {
		if s.in != "" {
			cmds = append(cmds, t.Input([]byte(s.in))...)
		}
		if s.out != "" {
			cmds = append(cmds, t.Output([]byte(s.out))...)
		}
	}
	return append(cmds, t.Close()...)
}

func TestTrackerScripted(t *testing.T) {
	type want struct{ text, output string }
	tests := []struct {
		name  string
		opts  Options
		steps []step
		want  []want
	}{
		{
			name:  "command and output",
			steps: []step{out("$ "), in("ls\r"), out("ls\r\nfile\r\n$ "), in("x")},
			want:  []want{{"ls", "file"}},
		},
		{
			name: "echo and newline in separate chunks",
			steps: []step{out("$ "), in("l"), out("l"), in("s"), out("s"), in("\r"),
				out("\r"), out("\n"), out("a\r\nb\r\n$ "), in("x")},
			want: []want{{"ls", "a\nb"}},
		},
		{
			name: "password typed with echo off is not a command",
			steps: []step{out("$ "), in("sudo true\r"), out("sudo true\r\n[sudo] password for u: "),
				in("hunter2\r"), out("\r\n$ "), in("x")},
			want: []want{{"sudo true", ""}},
		},
		{
			name: "keys inside a full-screen program are not commands",
			steps: []step{out("$ "), in("vi f\r"), out("vi f\r\n\x1b[?1049h\x1b[Hfile text\r\n~\r\n"),
				in(":wq\r"), out("\r\n\x1b[?1049l$ "), in("echo hi\r"), out("echo hi\r\nhi\r\n$ "), in("x")},
			want: []want{{"vi f", ""}, {"echo hi", "hi"}},
		},
		{
			name: "terminal queries do not block",
			steps: []step{out(strings.Repeat("\x1b[c\x1b[>c\x1b[6n\x1b[5n", 200) + "$ "),
				in("true\r"), out("true\r\n$ ")},
			want: []want{{"true", ""}},
		},
		{
			name: "bracketed paste keeps its newlines in the line",
			steps: []step{out("$ "), in("\x1b[200~echo a\recho b\x1b[201~"), out("echo a\r\necho b"),
				in("\r"), out("\r\na\r\nb\r\n$ "), in("x")},
			want: []want{{"echo a\necho b", "a\nb"}},
		},
		{
			name:  "interrupted line is not a command",
			steps: []step{out("$ "), in("rm -rf /\x03"), out("rm -rf /^C\r\n$ "), in("\r"), out("\r\n$ ")},
			want:  nil,
		},
		{
			name:  "wide characters",
			steps: []step{out("$ "), in("echo 日本\r"), out("echo 日本\r\n日本\r\n$ "), in("x")},
			want:  []want{{"echo 日本", "日本"}},
		},
		{
			name:  "progress bar keeps its last state",
			steps: []step{out("$ "), in("dl\r"), out("dl\r\n10%\r50%\r100%\r\ndone\r\n$ "), in("x")},
			want:  []want{{"dl", "100%\ndone"}},
		},
		{
			name:  "keypad enter",
			steps: []step{out("$ "), in("ls\x1bOM"), out("ls\r\n$ ")},
			want:  []want{{"ls", ""}},
		},
		{
			name:  "output is bounded",
			opts:  Options{MaxOutputBytes: 8},
			steps: []step{out("$ "), in("yes\r"), out("yes\r\n" + strings.Repeat("y\r\n", 100) + "$ "), in("x")},
			want:  []want{{"yes", "y\ny\ny\ny"}},
		},
		{
			name:  "command text is bounded",
			opts:  Options{MaxCommandBytes: 4},
			steps: []step{out("$ "), in("echo hello\r"), out("echo hello\r\n$ ")},
			want:  []want{{"echo", ""}},
		},
		{
			name: "output of a command typed ahead of is not the next command",
			steps: []step{out("$ "), in("sleep 1\r"), out("sleep 1\r\n"), in("ls\r"),
				out("slept\r\n$ ls\r\nfile\r\n$ "), in("x")},
			want: []want{{"sleep 1", "slept"}, {"ls", "file"}},
		},
		{
			name:  "keys sent before the first prompt are recognised by their echo",
			steps: []step{in("ls\r"), out("ls\r\n"), out("$ ls\r\nfile\r\n$ "), in("x")},
			want:  []want{{"ls", "$ ls\nfile"}},
		},
		{
			name:  "screen cleared between commands",
			steps: []step{out("$ "), in("clear\r"), out("clear\r\n\x1b[H\x1b[2J$ "), in("id\r"), out("id\r\nuid=0\r\n$ ")},
			want:  []want{{"clear", ""}, {"id", "uid=0"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds := run(tt.opts, tt.steps...)
			var got []want
			for _, c := range cmds {
				got = append(got, want{c.Text, c.Output})
			}
			if len(got) != len(tt.want) {
				t.Fatalf("commands = %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("command %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestTrackerForgetsUnechoedEnters: an Enter a program read silently is
// dropped after a while, so a later output line that happens to start like
// a prompt is not taken for a command.
func TestTrackerForgetsUnechoedEnters(t *testing.T) {
	for _, tt := range []struct {
		wait time.Duration
		want int
	}{{time.Second, 1}, {2 * pendingTTL, 0}} {
		now := time.Unix(1700000000, 0)
		tr := New(Options{Now: func() time.Time { return now }})
		tr.Output([]byte("$ "))
		tr.Input([]byte("x\x7f")) // learn the prompt at a settled screen
		tr.Input([]byte("\x15read -s\r"))
		tr.Output([]byte("read -s\r\n"))
		tr.Input([]byte("hidden\r")) // read with echo off: no echo, no newline yet
		now = now.Add(tt.wait)
		got := tr.Output([]byte("$ looks like a command\r\n"))
		got = append(got, tr.Close()...)
		n := 0
		for _, c := range got {
			if c.Text == "looks like a command" {
				n++
			}
		}
		if n != tt.want {
			t.Errorf("after %v: %d false commands, want %d (%+v)", tt.wait, n, tt.want, got)
		}
	}
}

func TestTrackerTruncationFlags(t *testing.T) {
	cmds := run(Options{MaxOutputBytes: 4, MaxCommandBytes: 4},
		out("$ "), in("echo hello\r"), out("echo hello\r\nhello\r\n$ "), in("x"))
	if len(cmds) != 1 || !cmds[0].TextTruncated || !cmds[0].OutputTruncated {
		t.Fatalf("commands = %+v, want one with both truncation flags", cmds)
	}
}

func TestTrackerResizeRewraps(t *testing.T) {
	tr := New(Options{Width: 20, Height: 5})
	defer tr.Close()
	tr.Resize(40, 5)
	long := "echo " + strings.Repeat("x", 30) // fits 40 columns, not 20
	tr.Output([]byte("$ "))
	tr.Input([]byte(long + "\r"))
	tr.Output([]byte(long + "\r\n$ "))
	cmds := tr.Input([]byte("z"))
	if len(cmds) != 1 || cmds[0].Text != long {
		t.Fatalf("commands = %+v, want %q", cmds, long)
	}
}

func TestTrackerClosedIgnoresInput(t *testing.T) {
	tr := New(Options{})
	tr.Close()
	if got := tr.Input([]byte("ls\r")); got != nil {
		t.Fatalf("Input after Close = %v", got)
	}
	if got := tr.Output([]byte("ls\r\n")); got != nil {
		t.Fatalf("Output after Close = %v", got)
	}
	if got := tr.Close(); got != nil {
		t.Fatalf("second Close = %v", got)
	}
}

func TestInputScanner(t *testing.T) {
	tests := []struct {
		keys   string
		enters int
	}{
		{"ls\r", 1},
		{"a\rb\nc\r", 3},
		{"\x1b[A\r", 1},                 // history recall then Enter
		{"\x1bOM", 1},                   // keypad Enter
		{"\x1b[200~a\rb\r\x1b[201~", 0}, // inside a paste
		{"\x1b[200~a\r\x1b[201~\r", 1},  // Enter after the paste
		{"\x1b[1;5\rD", 1},              // a control byte aborts a CSI
		{"\x1b\x1b\r", 0},               // Meta-Escape: the CR is its key
		{"\x1b[" + strings.Repeat("9", 50) + "~\r", 1},
	}
	for _, tt := range tests {
		var s inputScanner
		n := 0
		for _, b := range []byte(tt.keys) {
			if s.step(b) {
				n++
			}
		}
		if n != tt.enters {
			t.Errorf("%q: %d enters, want %d", tt.keys, n, tt.enters)
		}
	}
}
