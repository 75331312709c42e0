package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pamtrail/pamtrail/gateway/review"
)

// runSessionsShow prints a session's detail and its transcript; with
// --follow (or as "live") it keeps printing new events while the session is
// active.
func runSessionsShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return showSession(ctx, args, false, stdout, stderr)
}

// runSessionsLive is show --follow.
func runSessionsLive(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return showSession(ctx, args, true, stdout, stderr)
}

// showOptions are the flags of show and live.
type showOptions struct {
	id       string
	grep     string
	raw      bool
	interval time.Duration
}

func (o showOptions) selection() review.Selection { return review.TranscriptSelection(o.grep, o.raw) }

func showSession(ctx context.Context, args []string, follow bool, stdout, stderr io.Writer) int {
	name := "show"
	if follow {
		name = "live"
	}
	c := newSessionsCommand(name, stdout, stderr)
	opts := showOptions{interval: defaultFollowInterval}
	c.fs.StringVar(&opts.grep, "grep", "", "only events whose statement, command or response contains this text")
	c.fs.BoolVar(&opts.raw, "raw", false, "also print the raw terminal chunks kept for replay (escape sequences shown, never sent)")
	c.fs.BoolVar(&follow, "follow", follow, "keep printing new events while the session is active (Ctrl-C stops)")
	c.fs.DurationVar(&opts.interval, "interval", opts.interval, "how often --follow polls")
	trustedFiles := registerKeysFlag(c.fs)
	pos, code := c.parse(args, 1, "session id")
	if code >= 0 {
		return code
	}
	if opts.interval <= 0 {
		return c.usageError("interval: %s is not positive", opts.interval)
	}
	opts.id = pos[0]
	cl, code := c.client()
	if code >= 0 {
		return code
	}
	if follow {
		return c.follow(ctx, cl, opts)
	}
	rctx, cancel := requestContext(ctx)
	defer cancel()
	sess, err := cl.Session(rctx, opts.id)
	if err != nil {
		return c.fail(err)
	}
	events, err := cl.SessionEvents(rctx, opts.id, opts.selection(), 0)
	if err != nil {
		return c.fail(err)
	}
	conn := review.ConnectionOf(sess, events, time.Now())
	integrity, integrityLine := showIntegrity(rctx, cl.ES, opts.id, *trustedFiles)
	if c.jsonOut {
		out := map[string]any{"session": sess, "connection": conn, "events": events}
		if integrity != nil {
			out["integrity"] = integrity
		}
		return c.writeJSON(out)
	}
	return c.done(writeShow(stdout, sess, conn, events, opts.grep, integrityLine))
}

func writeShow(w io.Writer, sess review.Session, conn review.Connection, events []review.Event, grep, integrity string) error {
	if err := review.WriteSessionDetail(w, sess, conn); err != nil {
		return err
	}
	if integrity != "" {
		fmt.Fprintln(w, integrity)
	}
	header := fmt.Sprintf("\nTranscript (%d events)", len(events))
	if grep != "" {
		header = fmt.Sprintf("\nEvents containing %q (%d)", review.Sanitize(grep, false), len(events))
	}
	fmt.Fprintln(w, header)
	return review.WriteTranscript(w, events)
}

// follow prints the session, then its events as they arrive. With --json it
// prints one event per line (NDJSON) and the final session document last.
func (c *sessionsCommand) follow(ctx context.Context, cl *review.Client, opts showOptions) int {
	first := true
	rctx, cancel := requestContext(ctx)
	sess, err := cl.Session(rctx, opts.id)
	cancel()
	if err != nil {
		return c.fail(err)
	}
	if !c.jsonOut {
		if err := review.WriteSessionDetail(c.stdout, sess, review.ConnectionOf(sess, nil, time.Now())); err != nil {
			return c.done(err)
		}
	}
	final, err := cl.Follow(ctx, opts.id, review.FollowOptions{
		Selection: opts.selection(),
		Interval:  opts.interval,
		OnEvents: func(evs []review.Event) error {
			if c.jsonOut {
				for _, e := range evs {
					if code := c.writeJSON(e); code != 0 {
						return errors.New("writing output failed")
					}
				}
				return nil
			}
			if first {
				fmt.Fprintln(c.stdout, "\nTranscript")
				first = false
			}
			return review.WriteTranscript(c.stdout, evs)
		},
		OnPollError: func(err error) {
			fmt.Fprintf(c.stderr, "%s: Elasticsearch at %s: %v (retrying every %s)\n", c.name, c.es.url, err, opts.interval)
		},
	})
	switch {
	case errors.Is(err, context.Canceled):
		return 0 // Ctrl-C: the reviewer is done watching
	case err != nil:
		return c.fail(err)
	}
	if c.jsonOut {
		return c.writeJSON(map[string]any{"session": final})
	}
	fmt.Fprintf(c.stdout, "\nSession %s is %s; no longer following.\n", review.Sanitize(opts.id, false), review.Sanitize(final.Status, false))
	return 0
}
