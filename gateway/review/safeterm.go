package review

import "unicode/utf8"

// SafeTerminal filters a recorded terminal stream for replay in the
// reviewer's own terminal. What draws the screen passes: text, the C0
// controls of layout (BS, HT, LF, CR, ...), and the escape sequences that
// move the cursor, erase, scroll, set colours, switch the alternate screen
// and set layout modes. What could act on the reviewer's terminal or
// machine beyond the screen is dropped: every string sequence (OSC titles,
// clipboard writes and hyperlinks, DCS, APC, PM, SOS), every request that
// makes the terminal answer (device status, attributes, window reports:
// the answer would be typed into the reviewer's shell), window moves and
// resizes, mouse and paste modes, ENQ and the C1 controls.
//
// Its state carries across writes, so a sequence split between two recorded
// chunks is filtered whole. It is not safe for concurrent use.
type SafeTerminal struct {
	state   termState
	seq     []byte // the escape or CSI sequence being collected
	partial []byte // an incomplete UTF-8 character held for the next chunk
}

type termState uint8

const (
	termGround       termState = iota
	termEscape                 // after ESC
	termCSI                    // after ESC [
	termCSIIgnore              // an oversized CSI sequence: dropped up to its final byte
	termString                 // inside OSC, DCS, APC, PM or SOS: dropped
	termStringEscape           // ESC inside a string: ST ends it
)

// maxSequence bounds a CSI sequence; a longer one is dropped whole.
const maxSequence = 64

// Filter returns the part of p that is safe to write to a terminal.
func (t *SafeTerminal) Filter(p []byte) []byte {
	if len(t.partial) > 0 {
		p = append(t.partial, p...)
		t.partial = nil
	}
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); {
		b := p[i]
		switch t.state {
		case termGround:
			if b >= 0x80 {
				r, size := utf8.DecodeRune(p[i:])
				if r == utf8.RuneError && size <= 1 {
					if !utf8.FullRune(p[i:]) {
						t.partial = append(t.partial, p[i:]...)
						return out
					}
					i++ // a stray byte: invalid UTF-8 is not forwarded
					continue
				}
				if r >= 0x80 && r < 0xa0 { // C1 controls, such as CSI as one character
					i += size
					continue
				}
				out = append(out, p[i:i+size]...)
				i += size
				continue
			}
			switch {
			case b == 0x1b:
				t.state = termEscape
				t.seq = append(t.seq[:0], b)
			case b == 0x05: // ENQ: makes some terminals send an answerback
			default:
				out = append(out, b)
			}
		case termEscape:
			switch {
			case b == '[':
				t.state = termCSI
				t.seq = append(t.seq, b)
			case b == ']' || b == 'P' || b == '_' || b == '^' || b == 'X':
				t.state = termString
			case b == 0x1b:
				t.seq = append(t.seq[:0], b)
			case b >= 0x20 && b <= 0x2f: // intermediate: charset designation and the like
				t.seq = append(t.seq, b)
				if len(t.seq) > maxSequence {
					t.state = termGround
				}
			case b >= 0x30 && b <= 0x7e:
				t.seq = append(t.seq, b)
				if safeEscape(t.seq) {
					out = append(out, t.seq...)
				}
				t.state = termGround
			default: // a control inside the sequence cancels it
				t.state = termGround
				continue
			}
		case termCSI:
			switch {
			case b >= 0x20 && b <= 0x3f:
				t.seq = append(t.seq, b)
				if len(t.seq) > maxSequence {
					t.state = termCSIIgnore
				}
			case b >= 0x40 && b <= 0x7e:
				t.seq = append(t.seq, b)
				if safeCSI(t.seq) {
					out = append(out, t.seq...)
				}
				t.state = termGround
			case b == 0x1b:
				t.state = termEscape
				t.seq = append(t.seq[:0], b)
			default: // CAN, SUB or another control cancels the sequence
				t.state = termGround
				continue
			}
		case termCSIIgnore:
			if b >= 0x40 && b <= 0x7e || b < 0x20 {
				t.state = termGround
			}
		case termString:
			switch b {
			case 0x07: // BEL ends an OSC
				t.state = termGround
			case 0x1b:
				t.state = termStringEscape
			case 0x18, 0x1a: // CAN, SUB
				t.state = termGround
			}
		case termStringEscape:
			if b == '\\' {
				t.state = termGround
			} else {
				t.state = termEscape
				t.seq = append(t.seq[:0], 0x1b)
				continue
			}
		}
		i++
	}
	return out
}

// safeEscape allows the two- and three-byte escapes that only change the
// screen: save/restore cursor, index, next line, reverse index, tab set,
// keypad modes, charset designations, and full reset. DECID (ESC Z) asks for
// an answer and is dropped.
func safeEscape(seq []byte) bool {
	final := seq[len(seq)-1]
	if len(seq) > 2 { // ESC ( B and the like: charset designations, DECALN
		return seq[1] == '(' || seq[1] == ')' || seq[1] == '*' || seq[1] == '+' || seq[1] == '#' || seq[1] == '%'
	}
	switch final {
	case '7', '8', 'D', 'E', 'H', 'M', '=', '>', 'c', 'N', 'O':
		return true
	}
	return false
}

// safeCSI allows the CSI sequences that draw: cursor moves, erases,
// insert/delete, scrolling, SGR, scroll regions, cursor save/restore and
// style, and the screen modes of safeModes. Everything that reports
// (DSR n, DA c, DECRQM $p, window ops t, DECREQTPARM x) is dropped.
func safeCSI(seq []byte) bool {
	final := seq[len(seq)-1]
	params := seq[2 : len(seq)-1]
	var private, intermediate byte
	if len(params) > 0 && params[0] >= 0x3c && params[0] <= 0x3f {
		private = params[0]
		params = params[1:]
	}
	if n := len(params); n > 0 && params[n-1] >= 0x20 && params[n-1] <= 0x2f {
		intermediate = params[n-1]
		params = params[:n-1]
	}
	switch {
	case final == 'q' && intermediate == ' ' && private == 0: // cursor style
		return true
	case intermediate != 0:
		return false
	case final == 'h' || final == 'l':
		return safeModes(private, params)
	case private != 0:
		return false
	}
	switch final {
	case '@', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'P', 'S', 'T', 'X', 'Z',
		'`', 'a', 'b', 'd', 'e', 'f', 'g', 'm', 'r', 's', 'u':
		return true
	}
	return false
}

var (
	safeANSIModes = map[string]bool{"4": true, "20": true}
	safeDECModes  = map[string]bool{"1": true, "6": true, "7": true, "12": true, "25": true,
		"47": true, "1047": true, "1048": true, "1049": true, "2026": true}
)

// safeModes allows mode changes that affect drawing only: insert mode and
// newline mode; with "?": cursor keys, origin, autowrap, cursor blink and
// visibility, the alternate screen, and synchronized output. Mouse, focus
// and bracketed-paste reporting would make the reviewer's terminal send
// input after the replay, and column mode resizes the window.
func safeModes(private byte, params []byte) bool {
	allowed := safeANSIModes
	if private == '?' {
		allowed = safeDECModes
	} else if private != 0 {
		return false
	}
	start := 0
	for i := 0; i <= len(params); i++ {
		if i == len(params) || params[i] == ';' {
			if !allowed[string(params[start:i])] {
				return false
			}
			start = i + 1
		}
	}
	return true
}
