package review

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// asciicast v2 (the asciinema file format): a JSON header line, then one
// JSON array per event: [seconds, "o" | "r", data].

// defaultSize is the asciicast size when the recording holds none.
var defaultSize = Size{80, 24}

// WriteAsciicast writes a session's terminal recording as asciicast v2.
// events are the session's output events in seq order. A session that
// recorded no terminal (PostgreSQL, exec, sftp) is ErrNoTerminal.
func WriteAsciicast(w io.Writer, s Session, events []Event) error {
	var b FrameBuilder
	frames := b.Add(events)
	if err := terminalCheck(s, frames); err != nil {
		return err
	}
	size := b.Size
	if size == (Size{}) {
		size = defaultSize
	}
	header := map[string]any{
		"version":   2,
		"width":     size.Cols,
		"height":    size.Rows,
		"timestamp": b.Start.Unix(),
		"title":     fmt.Sprintf("pamtrail session %s: %s on %s", s.ID, s.User, s.Account),
		"env":       map[string]string{"TERM": "xterm-256color"},
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(header); err != nil {
		return err
	}
	first := true
	for _, f := range frames {
		if first && f.Kind == FrameResize {
			first = false
			continue // the header's size
		}
		first = false
		if err := enc.Encode([]any{json.Number(seconds(f.At)), f.Kind, f.Data}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// seconds renders a frame offset as asciicast does: seconds with
// microsecond precision.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 6, 64)
}

// IsTerminalSession reports whether a session can have a terminal
// recording (the CLI asks before reading its events).
func IsTerminalSession(s Session) bool {
	return s.ResourceType == "" || s.ResourceType == schema.ResourceSSH
}
