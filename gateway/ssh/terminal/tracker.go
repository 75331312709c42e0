// Package terminal finds the commands a user runs in an interactive shell.
//
// A line buffer of keystrokes is not enough: tab completion, history recall
// and line editing make it differ from what the shell runs. The Tracker
// instead feeds the session's output into a VT emulator and, when the shell
// accepts a line (the user pressed Enter and the shell echoed the newline),
// reads the line off the emulated screen, minus the prompt. That is the line
// the user saw when pressing Enter.
//
// A prompt is learned as the text left of the cursor when the user starts
// typing a line at a settled screen. A newline the shell echoes counts as
// accepting a typed line only when the cursor's line starts with a learned
// prompt below the previous accepted line, so the output of a command the
// user typed ahead of is never mistaken for the next command. While a
// full-screen program has the alternate screen, keystrokes are not commands
// and nothing is extracted.
package terminal

import (
	"bytes"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi/parser"
	"github.com/charmbracelet/x/vt"
)

// Command is one line the shell accepted, with the output that followed it.
type Command struct {
	Text string
	// Start is when the shell accepted the line; End is the last output
	// before the user started the next line (or Start, without output).
	Start, End      time.Time
	Output          string // plain text, head-bounded
	OutputTruncated bool
	TextTruncated   bool
}

// Options sizes a Tracker. Zero values take defaults.
type Options struct {
	Width, Height   int // the pty size from pty-req; default 80x24
	MaxOutputBytes  int // default 4 KiB
	MaxCommandBytes int // default 64 KiB
	Now             func() time.Time
}

const (
	defaultWidth, defaultHeight = 80, 24
	// The emulator allocates width*height cells: a client asking for a
	// giant pty must not make the gateway allocate gigabytes.
	maxWidth, maxHeight = 1000, 500
	// maxPending bounds Enters typed ahead of the shell's echo.
	maxPending = 64
	// maxPrompts bounds the prompts remembered (the shell's, and those of
	// programs like read -p or a database client).
	maxPrompts = 8
	// pendingTTL: a shell echoes an accepted line at once, and so does the
	// terminal for keys typed ahead of a busy shell; an Enter not echoed
	// within this time went to a program that reads keys silently.
	pendingTTL = 5 * time.Second
)

// pendingLine is an Enter waiting for the newline its line's echo ends with.
type pendingLine struct {
	typed string // the keys typed, if they were plain text; else ""
	at    time.Time
}

// Tracker extracts commands from one terminal session. It is not safe for
// concurrent use: feed Input and Output from one goroutine, in the order the
// bytes crossed the gateway. Close must be called to release it.
type Tracker struct {
	opts   Options
	emu    *vt.Emulator
	screen screen
	stop   chan struct{}
	done   chan struct{}
	keys   inputScanner
	out    *outputText

	typing  bool          // keys were pressed since the last accepted line
	prompt  string        // text left of the cursor when this line was started
	prompts []string      // learned prompts, most recent first
	pending []pendingLine // Enters not yet matched to an accepted line
	typed   []byte        // what was typed on this line, while plain
	// typedPlain: the line was typed without editing keys, so typed is
	// what the terminal will echo.
	typedPlain bool
	// acceptRow is the cursor row of the last accepted line. The
	// emulator's scrollback is emptied at each accept and sized to the
	// screen, so its length says how far that row has scrolled up since.
	acceptRow int
	crCol     int      // cursor column before a CR that ended the last chunk, or -1
	scratch   []int    // for scrolledOff
	current   *Command // accepted line, collecting its output
	finished  []Command
	closed    bool
}

// New starts a Tracker.
func New(opts Options) *Tracker {
	if opts.Width <= 0 || opts.Height <= 0 {
		opts.Width, opts.Height = defaultWidth, defaultHeight
	}
	opts.Width, opts.Height = min(opts.Width, maxWidth), min(opts.Height, maxHeight)
	if opts.MaxOutputBytes <= 0 {
		opts.MaxOutputBytes = 4 << 10
	}
	if opts.MaxCommandBytes <= 0 {
		opts.MaxCommandBytes = 64 << 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	emu := vt.NewEmulator(opts.Width, opts.Height)
	emu.SetScrollbackSize(opts.Height)
	shrinkParserBuffer(emu)
	t := &Tracker{
		opts:      opts,
		emu:       emu,
		screen:    screen{emu: emu},
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		out:       newOutputText(opts.MaxOutputBytes),
		acceptRow: -1,
		crCol:     -1,
	}
	go t.drainReplies()
	return t
}

// drainReplies discards what the emulator answers to terminal queries
// (device attributes, cursor reports): the real terminal at the client
// answers those. The emulator writes answers into an unbuffered pipe, so
// without a reader the first query would block the Tracker forever.
//
// The emulator's own Close is not used to stop this reader: it writes a
// field that Read reads unsynchronised. Close instead closes stop and then
// writes wakeByte, which this loop is sure to read because it never exits
// otherwise; the emulator's answers are escape sequences, never one NUL.
func (t *Tracker) drainReplies() {
	defer close(t.done)
	buf := make([]byte, 256)
	for {
		n, err := t.emu.Read(buf)
		if err != nil {
			return
		}
		if n == 1 && buf[0] == wakeByte {
			select {
			case <-t.stop:
				return
			default:
			}
		}
	}
}

const wakeByte = 0

// Input takes bytes the user's terminal sent and returns the commands that
// became complete: a command's output ends when the user starts the next line.
func (t *Tracker) Input(p []byte) []Command {
	if t.closed {
		return nil
	}
	for _, b := range p {
		enter := t.keys.step(b)
		if t.emu.IsAltScreen() {
			continue // keys for a full-screen program
		}
		if !t.typing {
			t.startLine()
		}
		switch {
		case enter:
			if len(t.pending) < maxPending {
				pl := pendingLine{at: t.opts.Now()}
				if t.typedPlain {
					pl.typed = string(t.typed)
				}
				t.pending = append(t.pending, pl)
			}
			t.typing = false
		case b == ctrlC && !t.keys.paste:
			// An interrupt flushes the terminal's input queue and the
			// shell discards its line: nothing typed so far will run.
			t.pending = t.pending[:0]
			t.typing = false
		case t.typedPlain && t.keys.state == scanGround && (b >= 0x20 && b != 0x7f) && len(t.typed) < t.opts.MaxCommandBytes:
			t.typed = append(t.typed, b)
		default:
			t.typedPlain = false // an editing key, an escape sequence, Tab...
		}
	}
	return t.takeFinished()
}

const ctrlC = 0x03

// startLine runs at the first key of a line. At a settled screen (no Enter
// unmatched, the cursor after some text) the text left of the cursor is the
// prompt and the previous command's output is over. Keys typed ahead of the
// shell, or at the start of an empty row, say neither: the output keeps
// being collected until the next accepted line.
func (t *Tracker) startLine() {
	t.typing = true
	t.typed, t.typedPlain = t.typed[:0], true
	t.prompt = t.screen.beforeCursor()
	if len(t.pending) == 0 && strings.TrimSpace(t.prompt) != "" {
		t.learnPrompt(t.prompt)
		t.finishCurrent(t.prompt)
	}
}

func (t *Tracker) learnPrompt(p string) {
	for i, q := range t.prompts {
		if q == p {
			copy(t.prompts[1:i+1], t.prompts[:i])
			t.prompts[0] = p
			return
		}
	}
	if len(t.prompts) < maxPrompts {
		t.prompts = append(t.prompts, "")
	}
	copy(t.prompts[1:], t.prompts)
	t.prompts[0] = p
}

// Output takes bytes the shell sent to the user's terminal.
func (t *Tracker) Output(p []byte) []Command {
	if t.closed {
		return nil
	}
	t.expirePending()
	for len(p) > 0 {
		if len(t.pending) == 0 || t.emu.IsAltScreen() {
			t.crCol = -1
			t.feed(p)
			break
		}
		// The shell echoes CR LF when it accepts a line: read the screen
		// before the CR moves the cursor off the end of the line.
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.feedHoldingCR(p)
			break
		}
		cut := i
		if i > 0 && p[i-1] == '\r' {
			cut = i - 1
		}
		t.feed(p[:cut])
		endX := t.emu.CursorPosition().X
		if i == 0 && t.crCol >= 0 {
			endX = t.crCol // the CR came at the end of the previous chunk
		}
		t.crCol = -1
		if !t.emu.IsAltScreen() {
			t.tryAccept(endX)
		}
		t.feed(p[cut : i+1])
		p = p[i+1:]
	}
	return t.takeFinished()
}

// feedHoldingCR feeds a chunk without a newline; if it ends in CR, the
// cursor column before that CR is kept in case the next chunk starts with
// the LF of an accepted line.
func (t *Tracker) feedHoldingCR(p []byte) {
	t.crCol = -1
	if p[len(p)-1] != '\r' {
		t.feed(p)
		return
	}
	t.feed(p[:len(p)-1])
	t.crCol = t.emu.CursorPosition().X
	t.feed(p[len(p)-1:])
}

func (t *Tracker) feed(p []byte) {
	if len(p) == 0 {
		return
	}
	// Plain text that scrolls off before the screen settles need not go
	// through the emulator (see scrolledOff). Both parsers must be between
	// sequences for the cut to be clean; the text parser tells for both,
	// since they see the same bytes.
	if t.out.parser.State() == parser.GroundState {
		if len(t.scratch) != 2*t.emu.Height()+1 {
			t.scratch = make([]int, 2*t.emu.Height()+1)
		}
		if cut := scrolledOff(p, t.scratch); cut > 0 {
			if t.current != nil {
				t.out.writePlain(p[:cut])
				t.current.End = t.opts.Now()
			}
			p = p[cut:]
		}
	}
	_, _ = t.emu.Write(p)
	if t.current != nil {
		t.out.write(p)
		t.current.End = t.opts.Now()
	} else {
		// Keep the text parser in step with the stream (alternate screen,
		// split escape sequences) even when no command is collecting.
		t.out.write(p)
		t.out.reset()
	}
}

// expirePending drops Enters never echoed (see pendingTTL).
func (t *Tracker) expirePending() {
	now := t.opts.Now()
	n := 0
	for n < len(t.pending) && now.Sub(t.pending[n].at) > pendingTTL {
		n++
	}
	t.pending = t.pending[n:]
}

// tryAccept runs before a newline reaches the emulator while Enters are
// pending. The newline accepts a typed line if the cursor's line starts with
// a learned prompt somewhere below the previous accepted line; otherwise it
// is output (of the command the user typed ahead of, say). Before any
// prompt is known (keys sent before the shell first prompted), a line typed
// without editing keys is recognised by its echo, and what precedes the
// echo is learned as the prompt. Once a prompt is known that fallback is
// off: the terminal echoes keys typed ahead of a busy shell at once, long
// before the shell runs them, and the output would go to the wrong line.
func (t *Tracker) tryAccept(endX int) {
	floor := 0
	if t.acceptRow >= 0 {
		floor = t.acceptRow + 1 - t.emu.ScrollbackLen()
	}
	var text, prompt string
	if top, p, ok := t.screen.promptRow(t.prompts, floor); ok {
		text, prompt = strings.TrimPrefix(t.screen.lineFrom(top, endX), p), p
	} else if typed := t.pending[0].typed; typed != "" && len(t.prompts) == 0 {
		line := t.screen.lineFrom(t.screen.wrapTop(), endX)
		if !strings.HasSuffix(line, typed) {
			return
		}
		text, prompt = typed, line[:len(line)-len(typed)]
		if strings.TrimSpace(prompt) != "" && !strings.Contains(prompt, "\n") {
			t.learnPrompt(prompt)
		}
	} else {
		return
	}
	t.pending = t.pending[1:]
	t.acceptRow = t.emu.CursorPosition().Y
	t.emu.ClearScrollback()
	t.finishCurrent(prompt)
	if strings.TrimSpace(text) == "" {
		return // an empty line, or input the terminal did not echo (a password)
	}
	now := t.opts.Now()
	cmd := &Command{Start: now, End: now}
	cmd.Text, cmd.TextTruncated = truncate(text, t.opts.MaxCommandBytes)
	t.current = cmd
	t.out.reset()
}

func (t *Tracker) finishCurrent(nextPrompt string) {
	if t.current == nil {
		return
	}
	c := *t.current
	c.Output, c.OutputTruncated = t.out.text(nextPrompt)
	t.finished = append(t.finished, c)
	t.current = nil
	t.out.reset()
}

func (t *Tracker) takeFinished() []Command {
	f := t.finished
	t.finished = nil
	return f
}

// Line returns the command line the user is editing, as the screen shows
// it now (the text after the prompt, with completion and history applied),
// for a check before Enter reaches the shell. ok is false while a
// full-screen program has the alternate screen.
func (t *Tracker) Line() (line string, ok bool) {
	if t.closed || t.emu.IsAltScreen() {
		return "", false
	}
	floor := 0
	if t.acceptRow >= 0 {
		floor = t.acceptRow + 1 - t.emu.ScrollbackLen()
	}
	endX := t.emu.CursorPosition().X
	if top, p, found := t.screen.promptRow(t.prompts, floor); found {
		return strings.TrimPrefix(t.screen.lineFrom(top, endX), p), true
	}
	return strings.TrimPrefix(t.screen.lineFrom(t.screen.wrapTop(), endX), t.prompt), true
}

// Resize follows a window-change so wrapping matches the user's terminal.
func (t *Tracker) Resize(width, height int) {
	if t.closed || width <= 0 || height <= 0 {
		return
	}
	t.emu.Resize(min(width, maxWidth), min(height, maxHeight))
	t.emu.SetScrollbackSize(min(height, maxHeight))
}

// Close returns the last command, if its output was still being collected,
// and stops the Tracker. Enters the shell never echoed are not commands.
func (t *Tracker) Close() []Command {
	if t.closed {
		return nil
	}
	if len(t.prompts) > 0 {
		t.finishCurrent(t.prompts[0])
	} else {
		t.finishCurrent("")
	}
	t.closed = true
	close(t.stop)
	_, _ = t.emu.InputPipe().Write([]byte{wakeByte})
	<-t.done
	return t.takeFinished()
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}
