package terminal

// inputScanner finds the Enter keys in what the user's terminal sends. It
// keeps just enough escape-sequence state to tell an Enter from bytes inside
// an escape sequence, and to ignore newlines inside a bracketed paste: the
// shell inserts those into the line instead of accepting it.
type inputScanner struct {
	state  scanState
	params []byte
	paste  bool
}

type scanState uint8

const (
	scanGround scanState = iota
	scanEscape           // after ESC
	scanCSI              // after ESC [
	scanSS3              // after ESC O: the next byte names a keypad key
)

// maxCSIParams bounds the parameter bytes kept for one CSI sequence; only
// "200" and "201" (bracketed paste) matter.
const maxCSIParams = 8

// step consumes one byte and reports whether it was an Enter key.
func (s *inputScanner) step(b byte) bool {
	switch s.state {
	case scanEscape:
		switch b {
		case '[':
			s.state = scanCSI
			s.params = s.params[:0]
		case 'O':
			s.state = scanSS3
		case 0x1b:
			// ESC ESC: Meta-Escape; stay in the escape state.
		default:
			s.state = scanGround
		}
		return false
	case scanSS3:
		s.state = scanGround
		return b == 'M' && !s.paste // keypad Enter in application mode
	case scanCSI:
		switch {
		case b >= 0x30 && b <= 0x3f: // parameter bytes
			if len(s.params) < maxCSIParams {
				s.params = append(s.params, b)
			}
		case b >= 0x20 && b <= 0x2f: // intermediate bytes
		case b >= 0x40 && b <= 0x7e: // final byte
			if b == '~' {
				switch string(s.params) {
				case "200":
					s.paste = true
				case "201":
					s.paste = false
				}
			}
			s.state = scanGround
		default:
			// A control byte aborts the sequence, as in a real terminal.
			s.state = scanGround
			return s.ground(b)
		}
		return false
	default:
		return s.ground(b)
	}
}

func (s *inputScanner) ground(b byte) bool {
	switch b {
	case 0x1b:
		s.state = scanEscape
		return false
	case '\r', '\n':
		return !s.paste
	}
	return false
}
