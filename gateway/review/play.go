package review

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// PlayOptions tunes Replay.
type PlayOptions struct {
	// Speed divides the recorded pauses (2: twice as fast); 0 means 1.
	Speed float64
	// IdleLimit caps every pause, before Speed applies (0: no cap).
	IdleLimit time.Duration
	// From starts the timed replay this far into the recording, or at
	// FromTime when set; what came before is drawn at once, so the screen
	// is as it was at that moment.
	From     time.Duration
	FromTime time.Time
	// OnResize is told every terminal size of the recording, the first one
	// included, before the output drawn at that size.
	OnResize func(Size)
	// Interval is how often a live session is polled (Follow).
	Interval time.Duration
	// OnPollError is told about a failed poll of a live session.
	OnPollError func(error)
	// Now and Sleep are the clock; nil means the real one.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// player writes frames at their recorded pace through a SafeTerminal.
type player struct {
	w    io.Writer
	opts PlayOptions
	safe SafeTerminal
	// prevAt is the offset of the frame written last and prevWall when it
	// was written: the next frame is due prevWall plus the paced gap, so
	// time spent waiting for a live session's next batch counts.
	prevAt   time.Duration
	prevWall time.Time
	started  bool
}

func newPlayer(w io.Writer, opts PlayOptions) *player {
	if opts.Speed <= 0 {
		opts.Speed = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepContext
	}
	return &player{w: w, opts: opts}
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (p *player) play(ctx context.Context, frames []Frame) error {
	for _, f := range frames {
		if f.At >= p.opts.From {
			if err := p.wait(ctx, f.At); err != nil {
				return err
			}
		}
		if f.Kind == FrameResize {
			if size, err := ParseSize(f.Data); err == nil && p.opts.OnResize != nil {
				p.opts.OnResize(size)
			}
			continue
		}
		if _, err := p.w.Write(p.safe.Filter([]byte(f.Data))); err != nil {
			return err
		}
	}
	return nil
}

// wait sleeps until the frame at offset at is due.
func (p *player) wait(ctx context.Context, at time.Duration) error {
	now := p.opts.Now()
	if !p.started {
		p.started = true
		p.prevAt, p.prevWall = at, now
		return nil
	}
	gap := max(0, at-p.prevAt)
	if p.opts.IdleLimit > 0 {
		gap = min(gap, p.opts.IdleLimit)
	}
	due := p.prevWall.Add(time.Duration(float64(gap) / p.opts.Speed))
	p.prevAt, p.prevWall = at, due
	if d := due.Sub(now); d > 0 {
		return p.opts.Sleep(ctx, d)
	}
	p.prevWall = now // behind (a live session's next batch): go on from now
	return nil
}

// Replay plays a session's terminal recording to w at its recorded pace,
// through SafeTerminal. A live session is followed: new output is played as
// it becomes searchable, until the session ends. It returns ErrNoTerminal
// (wrapped) for a session without a terminal, ctx's error when ctx ends.
func (c *Client) Replay(ctx context.Context, sessionID string, w io.Writer, opts PlayOptions) error {
	sess, err := c.Session(ctx, sessionID)
	if err != nil {
		return err
	}
	if !IsTerminalSession(sess) {
		return terminalCheck(sess, nil)
	}
	var b FrameBuilder
	p := newPlayer(w, opts)
	played := 0
	playEvents := func(evs []Event) error {
		frames := b.Add(evs)
		if len(frames) == 0 {
			return nil
		}
		if played == 0 && !opts.FromTime.IsZero() {
			p.opts.From = opts.FromTime.Sub(b.Start)
		}
		played += len(frames)
		return p.play(ctx, frames)
	}
	if sess.Status == schema.StatusActive {
		interval := opts.Interval
		if interval <= 0 {
			interval = 2 * time.Second
		}
		_, err = c.Follow(ctx, sessionID, FollowOptions{Selection: TerminalSelection(), Interval: interval,
			OnEvents: playEvents, OnPollError: opts.OnPollError})
	} else {
		var evs []Event
		if evs, err = c.SessionEvents(ctx, sessionID, TerminalSelection(), 0); err == nil {
			err = playEvents(evs)
		}
	}
	if err != nil {
		return err
	}
	if played == 0 {
		return terminalCheck(sess, nil)
	}
	if p.opts.From > b.last {
		return fmt.Errorf("from: the recording is %s long; %s is past its end", FormatDuration(b.last), FormatDuration(p.opts.From))
	}
	return nil
}
