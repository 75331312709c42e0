package review

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// Sanitize makes untrusted recorded text (user-typed SQL and commands,
// server output, model-written summaries) safe to print on a terminal.
// Control characters would otherwise let a recorded session drive the
// reviewer's terminal: move the cursor, hide lines, set the window title,
// or reorder text with bidirectional overrides. Each one is shown as a
// visible escape (\x1b, \u202e) instead, so the reviewer still sees that it
// was there. Tabs and, when keepNewlines is set, newlines are kept;
// otherwise newlines are shown as \n so one event stays on one line.
// Invalid UTF-8 bytes are shown as \xNN.
func Sanitize(s string, keepNewlines bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || needsEscape(r, keepNewlines) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' && !keepNewlines:
			b.WriteString(`\n`)
		case r == '\r' && !keepNewlines:
			b.WriteString(`\r`)
		case needsEscape(r, keepNewlines):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(r rune, keepNewlines bool) bool {
	switch {
	case r == '\t':
		return false
	case r == '\n':
		return !keepNewlines
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0: // C0, DEL, C1 (CSI, OSC, ...)
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c: // bidi controls
		return true
	}
	return false
}

// PlainText renders recorded terminal output as text: escape sequences
// (colours, cursor moves, titles) are dropped, CRLF line ends become LF, a
// lone carriage return starts its line over (a progress bar leaves its last
// state), and whatever control character is left is made visible by
// Sanitize. The result never holds an ESC byte.
func PlainText(s string) string {
	if strings.ContainsRune(s, 0x1b) || strings.ContainsAny(s, "\u009b\u009d\u0090") {
		s = ansi.Strip(s)
	}
	if strings.ContainsRune(s, '\r') {
		lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
		for i, line := range lines {
			if j := strings.LastIndexByte(strings.TrimRight(line, "\r"), '\r'); j >= 0 {
				line = line[j+1:]
			}
			lines[i] = strings.TrimRight(line, "\r")
		}
		s = strings.Join(lines, "\n")
	}
	return Sanitize(s, true)
}
