package terminal

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/vt"
)

func TestScrolledOff(t *testing.T) {
	lines := func(n int, s string) string { return strings.Repeat(s+"\r\n", n) }
	tests := []struct {
		name string
		in   string
		keep int
		want int
	}{
		{"too few lines", lines(4, "x"), 4, 0},
		{"one line more than kept", lines(5, "x"), 4, 3},
		{"colours and UTF-8 are plain", lines(10, "\x1b[1;31mrot\x1b[0m 日本\tz"), 4, 6 * len("\x1b[1;31mrot\x1b[0m 日本\tz\r\n")},
		{"bare LF does not end a line", strings.Repeat("x\n", 10), 4, 0},
		{"cursor movement stops the plain text", lines(10, "x") + "\x1b[A" + lines(10, "y"), 4, 6 * 3},
		{"alternate screen stops it", lines(3, "x") + "\x1b[?1049h" + lines(20, "y"), 4, 0},
		{"C1 byte stops it", lines(10, "x") + "\x9b2J", 4, 6 * 3},
		{"cut UTF-8 at the end", lines(10, "x") + "\xe6\x97", 4, 6 * 3},
		{"unterminated SGR", lines(10, "x") + "\x1b[1", 4, 6 * 3},
	}
	for _, tt := range tests {
		if got := scrolledOff([]byte(tt.in), make([]int, tt.keep+1)); got != tt.want {
			t.Errorf("%s: cut %d, want %d", tt.name, got, tt.want)
		}
	}
}

// screenOf renders what an emulator shows, and where its cursor is.
func screenOf(e *vt.Emulator) string {
	var b strings.Builder
	s := screen{emu: e}
	for y := range e.Height() {
		b.WriteString(strings.Join(s.row(y), ""))
		b.WriteByte('\n')
	}
	pos := e.CursorPosition()
	b.WriteString(strings.Repeat("-", pos.X) + "^" + strings.Repeat(" ", pos.Y))
	return b.String()
}

// FuzzScrolledOff checks the property the shortcut rests on: after any
// prior state, feeding the emulator only what follows the cut leaves the
// same screen and cursor as feeding everything.
func FuzzScrolledOff(f *testing.F) {
	f.Add([]byte("$ ls\r\n"), []byte(strings.Repeat("file \x1b[34mdir\x1b[0m 日本語\r\n", 30)+"$ "))
	f.Add([]byte("\x1b[5;10H\x1b[?7l"), []byte(strings.Repeat(strings.Repeat("w", 50)+"\r\n", 25)))
	f.Add([]byte("partial line"), []byte(strings.Repeat("\tx\by\a\r\n", 40)+"\x1b[2J"))
	f.Fuzz(func(t *testing.T, before, data []byte) {
		const w, h = 20, 6
		// Trackers own emulators whose answers to queries are drained.
		full, short := New(Options{Width: w, Height: h}), New(Options{Width: w, Height: h})
		defer full.Close()
		defer short.Close()
		_, _ = full.emu.Write(before)
		_, _ = short.emu.Write(before)
		cut := scrolledOff(data, make([]int, 2*h+1))
		if cut == 0 || !groundAfter(before) {
			// The Tracker only cuts between sequences.
			return
		}
		_, _ = full.emu.Write(data)
		_, _ = short.emu.Write(data[cut:])
		if a, b := screenOf(full.emu), screenOf(short.emu); a != b {
			t.Fatalf("screens differ after skipping %d bytes:\nfull:\n%s\nshort:\n%s", cut, a, b)
		}
	})
}

// groundAfter reports whether a parser is between sequences after p, as the
// Tracker requires before it skips anything.
func groundAfter(p []byte) bool {
	o := newOutputText(16)
	o.write(p)
	return o.parser.State() == 0
}
