package terminal

import "unicode/utf8"

// scrolledOff finds the head of p that cannot show on the screen once p is
// processed: plain text (printable UTF-8, tabs, backspaces, CR, LF, bells
// and SGR colour sequences) followed, still within the plain text, by at
// least keep = len(ends)-1 CR LF line ends. Every such line reaches the bottom of a screen
// keep/2 rows tall and scrolls off before anything else happens, so feeding
// only the rest leaves the emulator's screen, cursor and parser exactly as
// feeding everything would (except cell colours, which are never read).
//
// It returns the length of that head, cut just after a CR LF, or 0; ends is
// scratch space of keep+1 entries. The
// emulator moves every cell of the screen for each scrolled line, so without
// this a long `cat` in a shell would run at a few MB/s; with it the cost
// follows the screen size, not the output size.
func scrolledOff(p []byte, ends []int) int {
	// ends holds the positions after the last keep+1 CR LFs, as a ring.
	n := 0
	for i := 0; i < len(p); {
		b := p[i]
		switch {
		case b >= 0x20 && b < 0x7f, b == '\t', b == '\b', b == '\r', b == 0x07:
			i++
		case b == '\n':
			i++
			if i >= 2 && p[i-2] == '\r' {
				ends[n%len(ends)] = i
				n++
			}
		case b == 0x1b:
			l := sgrLen(p[i:])
			if l == 0 {
				return cutAt(ends, n)
			}
			i += l
		case b >= 0x80:
			r, size := utf8.DecodeRune(p[i:])
			if r == utf8.RuneError && size <= 1 {
				// Invalid or cut UTF-8; bytes 0x80-0x9f alone are C1
				// controls to a terminal.
				return cutAt(ends, n)
			}
			i += size
		default:
			return cutAt(ends, n)
		}
	}
	return cutAt(ends, n)
}

// cutAt returns the end of the line keep lines before the last of n line
// ends recorded in the ring, or 0 when there were not more than keep.
func cutAt(ends []int, n int) int {
	keep := len(ends) - 1
	if n <= keep {
		return 0
	}
	return ends[(n-keep-1)%len(ends)]
}

// sgrLen returns the length of the SGR sequence (ESC [ digits ; : m) at the
// start of p, or 0 if p does not start with a complete one.
func sgrLen(p []byte) int {
	if len(p) < 3 || p[1] != '[' {
		return 0
	}
	for i := 2; i < len(p) && i < 64; i++ {
		switch c := p[i]; {
		case c >= '0' && c <= '9', c == ';', c == ':':
		case c == 'm':
			return i + 1
		default:
			return 0
		}
	}
	return 0
}
