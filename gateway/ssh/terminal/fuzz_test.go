package terminal

import (
	"testing"
	"unicode/utf8"
)

// fuzzOps encodes steps for FuzzTracker's seed corpus: an op byte (0 keys,
// 1 output, 2 resize), a length byte, then the payload.
func fuzzOps(steps ...step) []byte {
	var b []byte
	for _, s := range steps {
		if s.in != "" {
			b = append(b, 0, byte(len(s.in)))
			b = append(b, s.in...)
		}
		if s.out != "" {
			b = append(b, 1, byte(len(s.out)))
			b = append(b, s.out...)
		}
	}
	return b
}

// FuzzTracker feeds arbitrary interleavings of keys, output and resizes.
// Whatever the bytes, the Tracker must not panic or block, and what it
// returns must respect its bounds.
func FuzzTracker(f *testing.F) {
	f.Add(fuzzOps(out("$ "), in("ls\r"), out("ls\r\nfile\r\n$ "), in("x")))
	f.Add(fuzzOps(out("$ "), in("vi f\r"), out("vi f\r\n\x1b[?1049hx\r\n"), in(":q\r"), out("\x1b[?1049l$ ")))
	f.Add(fuzzOps(out("\x1b[c\x1b[6n$ "), in("\x1b[200~a\rb\x1b[201~\r"), out("a\r\nb\r\n$ ")))
	f.Add(fuzzOps(out("$ "), in("echo 日本\r"), out("echo 日本\r\n日本\r\n$ ")))
	f.Add([]byte{2, 2, 5, 3, 1, 8, 'a', 'b', 'c', '\r', '\n', '$', ' ', 'x', 0, 3, 'l', 's', '\r', 1, 2, '\r', '\n'})
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxOut, maxCmd = 64, 32
		tr := New(Options{Width: 20, Height: 6, MaxOutputBytes: maxOut, MaxCommandBytes: maxCmd})
		var cmds []Command
		for len(data) >= 2 {
			op, n := data[0]%3, int(data[1])
			data = data[2:]
			n = min(n, len(data))
			payload := data[:n]
			data = data[n:]
			switch op {
			case 0:
				cmds = append(cmds, tr.Input(payload)...)
			case 1:
				cmds = append(cmds, tr.Output(payload)...)
			case 2:
				if len(payload) >= 2 {
					tr.Resize(int(payload[0]), int(payload[1]))
				}
			}
		}
		cmds = append(cmds, tr.Close()...)
		for _, c := range cmds {
			if len(c.Text) > maxCmd || len(c.Output) > maxOut {
				t.Fatalf("bounds exceeded: text %d bytes, output %d bytes", len(c.Text), len(c.Output))
			}
			if c.Text == "" {
				t.Fatalf("empty command returned")
			}
			if c.End.Before(c.Start) {
				t.Fatalf("end before start")
			}
			if !utf8.ValidString(c.Text) {
				t.Fatalf("command text is not UTF-8: %q", c.Text)
			}
		}
	})
}
