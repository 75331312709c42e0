package review

import (
	"context"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// FollowOptions tunes Follow.
type FollowOptions struct {
	// Selection says which events to deliver (as SessionEvents).
	Selection Selection
	// Interval between polls; the CLI uses 2 s.
	Interval time.Duration
	// OnEvents receives each batch of events not delivered before, in seq
	// order. An error stops Follow.
	OnEvents func([]Event) error
	// OnPollError is told about a failed poll; Follow keeps polling, since
	// a live view should ride out an Elasticsearch restart. Nil: ignored.
	OnPollError func(error)
}

// Follow delivers a session's events as they become searchable, for as long
// as the session is active, then returns the session's final document. It
// never forces an index refresh: polling readers must not add load to the
// cluster the collector writes to. Each poll asks only for events past the
// highest seq delivered so far, so every event is delivered once.
//
// Follow returns ctx's error when ctx ends first (Ctrl-C), and ErrNoSession
// for an unknown session.
func (c *Client) Follow(ctx context.Context, sessionID string, opts FollowOptions) (Session, error) {
	sess, err := c.Session(ctx, sessionID)
	if err != nil {
		return Session{}, err
	}
	next := int64(0)
	var outputErr error // from OnEvents: stops Follow, unlike a failed poll
	deliver := func() error {
		evs, err := c.SessionEvents(ctx, sessionID, opts.Selection, next)
		if err != nil || len(evs) == 0 {
			return err
		}
		for _, e := range evs {
			next = max(next, e.Int(schema.AttrSeq)+1)
		}
		outputErr = opts.OnEvents(evs)
		return nil
	}
	if err := deliver(); err != nil {
		return sess, err
	}
	if outputErr != nil {
		return sess, outputErr
	}
	// One more poll after the session stops being active: the collector
	// may update the session document before the last events of the
	// session become searchable.
	finalPolls := 1
	timer := time.NewTimer(opts.Interval)
	defer timer.Stop()
	for sess.Status == schema.StatusActive || finalPolls > 0 {
		if sess.Status != schema.StatusActive {
			finalPolls--
		}
		select {
		case <-ctx.Done():
			return sess, ctx.Err()
		case <-timer.C:
		}
		timer.Reset(opts.Interval)
		latest, err := c.Session(ctx, sessionID)
		if err == nil {
			sess = latest
			err = deliver()
		}
		if err != nil {
			if ctx.Err() != nil {
				return sess, ctx.Err()
			}
			if opts.OnPollError != nil {
				opts.OnPollError(err)
			}
		}
		if outputErr != nil {
			return sess, outputErr
		}
	}
	return sess, nil
}
