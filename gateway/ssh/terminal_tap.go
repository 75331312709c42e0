package ssh

import (
	"time"

	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/ssh/terminal"
)

// terminalQueue bounds the chunks waiting for the terminal emulator. When
// it is full the relay waits: the recording keeps up with the session rather
// than dropping what it has not seen.
const terminalQueue = 64

// terminalTap records an interactive shell on a pty: one command event per
// line the shell accepted (read off a terminal emulator), and the raw
// output as replay records. The emulator runs on its own goroutine, fed in
// the order the bytes crossed the gateway.
type terminalTap struct {
	s      *session
	replay *outputRecorder
	events chan terminalEvent
	done   chan struct{}
}

type terminalEvent struct {
	input      bool
	data       []byte
	cols, rows int         // a resize when data is nil
	line       chan string // a question: the command line on screen now
}

func (c *sessionChannel) shellTap() channelTap {
	s := c.s
	if !s.e.Config.Recording.RecordingEnabled() {
		return nil
	}
	if c.pty == nil {
		return newScriptTap(s)
	}
	t := &terminalTap{
		s:      s,
		replay: newOutputRecorder(s, c.opened, "pty"),
		events: make(chan terminalEvent, terminalQueue),
		done:   make(chan struct{}),
	}
	t.replay.resize(int(c.pty.Cols), int(c.pty.Rows))
	tracker := terminal.New(terminal.Options{
		Width:           int(c.pty.Cols),
		Height:          int(c.pty.Rows),
		MaxOutputBytes:  s.previewBytes(),
		MaxCommandBytes: s.maxTextBytes(),
	})
	go t.run(tracker)
	return t
}

// maxCoalesce bounds the output handed to the tracker at once.
const maxCoalesce = 4 << 20

func (t *terminalTap) run(tracker *terminal.Tracker) {
	defer close(t.done)
	defer func() { t.record(tracker.Close()) }()
	var (
		out  []byte
		held *terminalEvent // taken from the queue while coalescing output
	)
	for {
		var ev terminalEvent
		if held != nil {
			ev, held = *held, nil
		} else {
			var ok bool
			if ev, ok = <-t.events; !ok {
				return
			}
		}
		switch {
		case ev.line != nil:
			line, _ := tracker.Line()
			ev.line <- line
		case ev.data == nil:
			tracker.Resize(ev.cols, ev.rows)
		case ev.input:
			t.record(tracker.Input(ev.data))
		default:
			// Output that queued up while the tracker was busy goes in
			// one call: the tracker skips what scrolls off unseen, so a
			// burst costs little more than one screenful.
			out = append(out[:0], ev.data...)
			closed := false
		gather:
			for len(out) < maxCoalesce {
				select {
				case next, ok := <-t.events:
					switch {
					case !ok:
						closed = true
						break gather
					case next.data != nil && !next.input:
						out = append(out, next.data...)
					default:
						held = &next
						break gather
					}
				default:
					break gather
				}
			}
			t.record(tracker.Output(out))
			if closed {
				return
			}
		}
	}
}

func (t *terminalTap) record(cmds []terminal.Command) {
	set := t.s.policy()
	for _, c := range cmds {
		t.s.record(t.s.rec.Command(recorder.Command{
			Start:         c.Start,
			Duration:      c.End.Sub(c.Start),
			Channel:       channelTerminal,
			Text:          c.Text,
			TextTruncated: c.TextTruncated,
			Output:        c.Output,
			OutputTrunc:   c.OutputTruncated,
			Policy:        set.Command(c.Text), // audit mode: flagged, not stopped
		}))
	}
}

// screenLine asks the emulator, after everything queued before, for the
// command line on screen.
func (t *terminalTap) screenLine() string {
	q := make(chan string, 1)
	t.events <- terminalEvent{line: q}
	return <-q
}

func (t *terminalTap) clientData(p []byte) {
	t.events <- terminalEvent{input: true, data: append([]byte(nil), p...)}
}

func (t *terminalTap) serverData(p []byte) {
	t.replay.write(p)
	t.events <- terminalEvent{data: append([]byte(nil), p...)}
}

// serverStderr: a pty merges stderr into its output; a server may still
// send extended data, which the user's terminal shows all the same.
func (t *terminalTap) serverStderr(p []byte) { t.serverData(p) }

func (t *terminalTap) exit(*int, string) {}

func (t *terminalTap) resize(cols, rows int) {
	t.replay.resize(cols, rows)
	t.events <- terminalEvent{cols: cols, rows: rows}
}

func (t *terminalTap) close(time.Time) {
	close(t.events)
	<-t.done
	t.replay.close()
}
