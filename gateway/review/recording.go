package review

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// A terminal recording is the session's raw pty stream (pam.ssh.output
// events): output chunks and size changes, each at its offset from the
// moment the terminal opened. It is what asciicast export and `sessions
// play` read.

// Frame kinds, as asciicast v2 names its events.
const (
	FrameOutput = "o"
	FrameResize = "r"
)

// streamResize is the pam.ssh.stream of a terminal size change.
const streamResize = "resize"

// ErrNoTerminal is returned for a session that recorded no terminal.
var ErrNoTerminal = errors.New("no terminal recorded")

// Frame is one event of a terminal recording.
type Frame struct {
	At   time.Duration // since the terminal opened
	Kind string        // FrameOutput or FrameResize
	Data string        // output, or "COLSxROWS"
	Seq  int64
}

// Size is a terminal size.
type Size struct{ Cols, Rows int }

// ParseSize reads "COLSxROWS".
func ParseSize(s string) (Size, error) {
	c, r, ok := strings.Cut(s, "x")
	cols, err1 := strconv.Atoi(c)
	rows, err2 := strconv.Atoi(r)
	if !ok || err1 != nil || err2 != nil || cols <= 0 || rows <= 0 || cols > 10000 || rows > 10000 {
		return Size{}, fmt.Errorf("terminal size %q is not COLSxROWS", s)
	}
	return Size{cols, rows}, nil
}

// FrameBuilder turns output events into frames, in the order it is given
// them (seq order), across calls: a live session's events arrive in
// batches. Offsets are measured from the terminal's opening (the first
// event's time less its pam.ssh.elapsed_ms), so a second terminal of the
// same session continues on one time line, and never go backwards.
type FrameBuilder struct {
	opened time.Time
	last   time.Duration
	// Start is when the terminal opened; Size the size it opened with
	// (the first resize), zero until known.
	Start time.Time
	Size  Size
}

// Add returns the frames of events that are terminal output; other events
// are skipped. A resize with a malformed size is skipped too.
func (b *FrameBuilder) Add(events []Event) []Frame {
	var out []Frame
	for _, e := range events {
		if e.EventName != schema.EventSSHOutput {
			continue
		}
		if b.opened.IsZero() {
			b.opened = e.Timestamp
			if ms, ok := e.Attributes[schema.AttrSSHElapsedMs].(float64); ok && ms > 0 {
				b.opened = e.Timestamp.Add(-time.Duration(ms * float64(time.Millisecond)))
			}
			b.Start = b.opened
		}
		at := max(b.last, e.Timestamp.Sub(b.opened))
		b.last = at
		f := Frame{At: at, Kind: FrameOutput, Data: e.Body, Seq: e.Int(schema.AttrSeq)}
		if e.Str(schema.AttrSSHStream) == streamResize {
			size, err := ParseSize(e.Body)
			if err != nil {
				continue
			}
			if b.Size == (Size{}) {
				b.Size = size
			}
			f.Kind = FrameResize
		}
		out = append(out, f)
	}
	return out
}

// terminalCheck explains why a session has no recording to replay.
func terminalCheck(s Session, frames []Frame) error {
	if s.ResourceType != "" && s.ResourceType != schema.ResourceSSH {
		return fmt.Errorf("%w: session %s is a %s session; a terminal recording exists only for interactive SSH sessions",
			ErrNoTerminal, s.ID, s.ResourceType)
	}
	if len(frames) == 0 {
		return fmt.Errorf("%w: session %s opened no terminal (exec, scp or sftp only)", ErrNoTerminal, s.ID)
	}
	return nil
}
