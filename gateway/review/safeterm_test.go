package review

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafeTerminal(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"text and layout", []string{"a\tb\r\nc\x08d\x07"}, "a\tb\r\nc\x08d\x07"},
		{"colours and cursor", []string{"\x1b[01;32mok\x1b[0m\x1b[2J\x1b[H\x1b[5;10r\x1b[3A"}, "\x1b[01;32mok\x1b[0m\x1b[2J\x1b[H\x1b[5;10r\x1b[3A"},
		{"alternate screen and cursor visibility", []string{"\x1b[?1049h\x1b[?25l\x1b[?1049l\x1b[?25h"}, "\x1b[?1049h\x1b[?25l\x1b[?1049l\x1b[?25h"},
		{"title and clipboard dropped", []string{"a\x1b]0;owned\x07b\x1b]52;c;ZXZpbA==\x1b\\c"}, "abc"},
		{"sequence split across chunks", []string{"x\x1b[3", "1mred\x1b]0;ti", "tle\x07y"}, "x\x1b[31mredy"},
		{"reports dropped", []string{"\x1b[6n\x1b[c\x1b[>c\x1b[21t\x1b[8;50;200t\x1b[?2$p\x1bZ"}, ""},
		{"mouse and paste modes dropped", []string{"\x1b[?1000h\x1b[?1006h\x1b[?2004h\x1b[?1004h\x1b[?3h"}, ""},
		{"mixed modes dropped whole", []string{"\x1b[?25;1000h"}, ""},
		{"DCS and APC dropped", []string{"\x1bP+q544e\x1b\\\x1b_Gpayload\x1b\\ok"}, "ok"},
		{"C1 and ENQ dropped", []string{"a\u009b6nb\x05c\u009d0;t\u009c"}, "a6nbc0;t"},
		{"charset and keypad", []string{"\x1b(B\x1b)0\x1b=\x1b>\x1b7\x1b8\x1bM"}, "\x1b(B\x1b)0\x1b=\x1b>\x1b7\x1b8\x1bM"},
		{"utf-8 split across chunks", []string{"caf\xc3", "\xa9 \xe2\x94", "\x80"}, "café ─"},
		{"oversized CSI dropped", []string{"\x1b[" + strings.Repeat("1;", 100) + "mX"}, "X"},
		{"cursor style", []string{"\x1b[2 q"}, "\x1b[2 q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st SafeTerminal
			var got []byte
			for _, c := range tt.chunks {
				got = append(got, st.Filter([]byte(c))...)
			}
			if string(got) != tt.want {
				t.Errorf("Filter = %q, want %q", got, tt.want)
			}
		})
	}
}

// unsafeOutput names what SafeTerminal must never let through.
func unsafeOutput(out []byte) string {
	for i := 0; i < len(out); i++ {
		b := out[i]
		if b == 0x05 {
			return "ENQ"
		}
		if b != 0x1b {
			continue
		}
		if i+1 >= len(out) {
			return "a trailing ESC"
		}
		switch out[i+1] {
		case ']', 'P', '_', '^', 'X':
			return "a string sequence"
		case 'Z':
			return "DECID"
		case '[':
			j := i + 2
			for j < len(out) && (out[j] < 0x40 || out[j] > 0x7e) {
				j++
			}
			if j >= len(out) {
				return "an unterminated CSI"
			}
			if !safeCSI(out[i : j+1]) {
				return "an unsafe CSI " + string(out[i:j+1])
			}
		}
	}
	for _, r := range string(out) {
		if r >= 0x80 && r < 0xa0 {
			return "a C1 control"
		}
	}
	return ""
}

// FuzzSafeTerminal: whatever a session recorded, however it is cut into
// chunks, replay writes no string sequence, report request, C1 control or
// invalid UTF-8.
func FuzzSafeTerminal(f *testing.F) {
	for _, seed := range []string{"", "\x1b[31mx", "\x1b]0;t\x07", "\x1b[6n", "\x1bP\x1b\\", "\u009b6n", "\x1b[?1000h", "\xe2\x94"} {
		f.Add([]byte(seed), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		var st SafeTerminal
		var out []byte
		step := int(cut%16) + 1
		for i := 0; i < len(in); i += step {
			out = append(out, st.Filter(in[i:min(len(in), i+step)])...)
		}
		if why := unsafeOutput(bytes.Clone(out)); why != "" {
			t.Fatalf("Filter(%q) = %q lets through %s", in, out, why)
		}
		if !utf8.Valid(out) {
			t.Fatalf("Filter(%q) = %q: invalid UTF-8", in, out)
		}
	})
}
