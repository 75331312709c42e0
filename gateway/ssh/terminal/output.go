package terminal

import (
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/ansi/parser"
)

// outputText turns a command's terminal output into plain text for the
// command event: escape sequences are dropped, a carriage return starts the
// line over (so a progress bar leaves its last state, not every frame), and
// whatever a full-screen program draws on the alternate screen is left out.
// It keeps the head of the output, up to max bytes.
//
// It runs its own escape-sequence parser rather than asking the emulator,
// because the emulator exposes a screen, not the stream of printed text.
type outputText struct {
	parser    *ansi.Parser
	buf       []byte
	max       int
	truncated bool
	alt       bool // the alternate screen is active
	lineStart int  // offset in buf where the current line starts
	cr        bool // a carriage return is waiting: the next print rewrites the line
}

func newOutputText(max int) *outputText {
	o := &outputText{max: max}
	o.parser = ansi.NewParser()
	// OSC/DCS payloads (titles, hyperlinks) are never kept; a small buffer
	// bounds the memory a hostile stream can make the parser hold.
	o.parser.SetDataSize(256)
	o.parser.SetHandler(ansi.Handler{
		Print:     o.print,
		Execute:   o.execute,
		HandleCsi: o.csi,
	})
	return o
}

// reset starts the text of a new command. Parser state is kept: an escape
// sequence may straddle two commands' output.
func (o *outputText) reset() {
	o.buf = o.buf[:0]
	o.truncated = false
	o.lineStart = 0
	o.cr = false
}

func (o *outputText) write(p []byte) {
	for _, b := range p {
		o.parser.Advance(b)
	}
}

// writePlain takes plain text (see scrolledOff) that ends at a line end. It
// stops early once the text is full and the parser is between sequences:
// the rest could not change the parser's state.
func (o *outputText) writePlain(p []byte) {
	for _, b := range p {
		o.parser.Advance(b)
		if o.truncated && o.parser.State() == parser.GroundState {
			return
		}
	}
}

func (o *outputText) print(r rune) {
	if o.alt {
		return
	}
	if o.cr {
		o.buf = o.buf[:o.lineStart]
		o.cr = false
	}
	var enc [utf8.UTFMax]byte
	n := utf8.EncodeRune(enc[:], r)
	o.append(enc[:n]...)
}

func (o *outputText) execute(b byte) {
	if o.alt {
		return
	}
	switch b {
	case '\n':
		o.cr = false
		o.append('\n')
		o.lineStart = len(o.buf)
	case '\r':
		o.cr = true
	case '\t':
		o.append('\t')
	case '\b':
		if len(o.buf) > o.lineStart {
			_, size := utf8.DecodeLastRune(o.buf[o.lineStart:])
			o.buf = o.buf[:len(o.buf)-size]
		}
	}
}

// csi follows the switches to and from the alternate screen (modes 47,
// 1047 and 1049).
func (o *outputText) csi(cmd ansi.Cmd, params ansi.Params) {
	if cmd.Prefix() != '?' || (cmd.Final() != 'h' && cmd.Final() != 'l') {
		return
	}
	params.ForEach(0, func(_, p int, _ bool) {
		if p == 47 || p == 1047 || p == 1049 {
			o.alt = cmd.Final() == 'h'
		}
	})
}

func (o *outputText) append(b ...byte) {
	if o.truncated {
		return
	}
	if len(o.buf)+len(b) > o.max {
		o.truncated = true
		return
	}
	o.buf = append(o.buf, b...)
}

// text returns the collected output without the shell's next prompt: a
// last line that starts with that prompt is the shell waiting (and, when the
// user typed ahead, the echo of the next line), not output.
func (o *outputText) text(nextPrompt string) (string, bool) {
	s := string(o.buf)
	last := s[strings.LastIndexByte(s, '\n')+1:]
	if p := strings.TrimSpace(nextPrompt); p != "" && strings.HasPrefix(strings.TrimSpace(last), p) {
		s = s[:len(s)-len(last)]
	}
	s = strings.TrimLeft(s, "\n")
	s = strings.TrimRight(s, " \t\n")
	return s, o.truncated
}
