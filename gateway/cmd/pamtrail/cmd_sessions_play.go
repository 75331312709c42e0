package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pamtrail/pamtrail/gateway/review"
)

// resetTerminal leaves the reviewer's terminal as the replay found it,
// whatever state the recording ended in: attributes, cursor, main screen.
const resetTerminal = "\x1b[0m\x1b[?25h\x1b[?1049l\r\n"

// runSessionsPlay replays a session's terminal in the reviewer's terminal,
// at its recorded pace, following a live session.
func runSessionsPlay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newSessionsCommand("play", stdout, stderr)
	opts := review.PlayOptions{Speed: 1, Interval: defaultFollowInterval}
	var from string
	c.fs.Float64Var(&opts.Speed, "speed", opts.Speed, "play this many times faster than recorded")
	c.fs.DurationVar(&opts.IdleLimit, "idle-limit", 0, "shorten every pause to at most this (0: as recorded)")
	c.fs.StringVar(&from, "from", "", "start at this offset into the recording (1m30s) or this RFC 3339 time; what came before is drawn at once")
	pos, code := c.parse(args, 1, "session id")
	if code >= 0 {
		return code
	}
	if opts.Speed <= 0 {
		return c.usageError("speed: %g is not positive", opts.Speed)
	}
	if opts.IdleLimit < 0 {
		return c.usageError("idle-limit: %s is negative", opts.IdleLimit)
	}
	if from != "" {
		var err error
		if opts.From, opts.FromTime, err = parseFrom(from); err != nil {
			return c.usageError("%v", err)
		}
	}
	cl, code := c.client()
	if code >= 0 {
		return code
	}
	opts.OnResize = func(size review.Size) { c.warnSize(stdout, size) }
	opts.OnPollError = func(err error) {
		fmt.Fprintf(stderr, "%s: Elasticsearch at %s: %v (retrying)\n", c.name, c.es.url, err)
	}
	err := cl.Replay(ctx, pos[0], stdout, opts)
	if f, ok := stdout.(*os.File); ok && isTerminal(f) {
		_, _ = io.WriteString(stdout, resetTerminal)
	}
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return 0
	case errors.Is(err, review.ErrNoTerminal):
		return c.noTerminal(err)
	}
	return c.fail(err)
}

// parseFrom reads --from: an offset into the recording or a point in time.
func parseFrom(s string) (time.Duration, time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return 0, t, nil
	}
	return 0, time.Time{}, fmt.Errorf("from: %q is neither an offset (1m30s) nor an RFC 3339 time", s)
}

// warnSize tells the reviewer when their terminal is smaller than the
// recording: the replay would wrap and scroll where the original did not.
func (c *sessionsCommand) warnSize(stdout io.Writer, want review.Size) {
	f, ok := stdout.(*os.File)
	if !ok || !isTerminal(f) {
		return
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || (int(ws.Col) >= want.Cols && int(ws.Row) >= want.Rows) {
		return
	}
	fmt.Fprintf(c.stderr, "%s: the recording is %dx%d, this terminal %dx%d: enlarge it for a faithful replay\n",
		c.name, want.Cols, want.Rows, ws.Col, ws.Row)
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
