package review

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		keepNewlines bool
		want         string
	}{
		{"plain", "SELECT * FROM t WHERE a = 'é'", false, "SELECT * FROM t WHERE a = 'é'"},
		{"tab kept", "a\tb", false, "a\tb"},
		{"newline escaped", "ls\n-la", false, `ls\n-la`},
		{"newline kept", "line1\nline2", true, "line1\nline2"},
		{"carriage return", "ok\rEVIL", true, `ok\x0dEVIL`},
		{"csi clear screen", "\x1b[2J\x1b[Hrm -rf /", false, `\x1b[2J\x1b[Hrm -rf /`},
		{"osc title", "\x1b]0;owned\x07", false, `\x1b]0;owned\x07`},
		{"c1 csi", "a\u009b31mb", false, `a\x9b31mb`},
		{"del", "a\x7fb", false, `a\x7fb`},
		{"bidi override", "cat \u202egnp.sh", false, `cat \u202egnp.sh`},
		{"invalid utf8", "a\xffb", false, `a\xffb`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sanitize(tt.in, tt.keepNewlines); got != tt.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzSanitize: whatever a recorded session contains, the output is valid
// UTF-8 with no control character but tab (and newline when kept).
func FuzzSanitize(f *testing.F) {
	for _, seed := range []string{"", "select 1", "\x1b[31mred\x1b[0m", "\u202e", "a\xffb\n\r", "\u009b"} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, in string, keepNewlines bool) {
		out := Sanitize(in, keepNewlines)
		if !utf8.ValidString(out) {
			t.Fatalf("Sanitize(%q) = %q: invalid UTF-8", in, out)
		}
		for _, r := range out {
			if r == '\t' || (r == '\n' && keepNewlines) {
				continue
			}
			if unicode.IsControl(r) || needsEscape(r, keepNewlines) {
				t.Fatalf("Sanitize(%q) = %q keeps control %U", in, out, r)
			}
		}
		if !strings.ContainsAny(in, "\\") && Sanitize(out, keepNewlines) != out {
			t.Fatalf("Sanitize is not idempotent on %q", out)
		}
	})
}

func TestPlainText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain\nlines", "plain\nlines"},
		{"\x1b[01;34mdir\x1b[0m  file.txt\r\n", "dir  file.txt\n"},
		{"10%\r50%\r100%\r\ndone", "100%\ndone"},
		{"title\x1b]0;owned\x07 kept", "title kept"},
		{"clip\x1b]52;c;ZXZpbA==\x07board", "clipboard"},
		{"unterminated \x1b]0;title", "unterminated "},
		{"bell\x07 and c1 \u009b31m", `bell\x07 and c1 \x9b31m`},
	}
	for _, tt := range tests {
		if got := PlainText(tt.in); got != tt.want {
			t.Errorf("PlainText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzPlainText: no recorded output can put an ESC (or any control but tab
// and newline) into what show prints.
func FuzzPlainText(f *testing.F) {
	for _, seed := range []string{"", "ls\r\n", "\x1b[31mred\x1b[0m", "\x1b]0;t\x07", "\x1bP+q\x1b\\", "a\rb\r\nc", "\u009b2J"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := PlainText(in)
		if !utf8.ValidString(out) {
			t.Fatalf("PlainText(%q) = %q: invalid UTF-8", in, out)
		}
		for _, r := range out {
			if r != '\t' && r != '\n' && (unicode.IsControl(r) || needsEscape(r, true)) {
				t.Fatalf("PlainText(%q) = %q keeps control %U", in, out, r)
			}
		}
	})
}
