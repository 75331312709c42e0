package main

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

func runSessionsSearch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newSessionsCommand("search", stdout, stderr)
	var since string
	f := review.Filter{NewestFirst: true, ExcludeEventNames: []string{schema.EventHeartbeat}}
	c.fs.StringVar(&since, "since", "", "only events in this window (1h, 7d) or since this RFC 3339 time")
	c.fs.StringVar(&f.User, "user", "", "only events of this gateway user")
	c.fs.IntVar(&f.Size, "limit", 100, "at most this many events, newest first")
	pos, code := c.parse(args, 1, "search text")
	if code >= 0 {
		return code
	}
	if f.Text = strings.TrimSpace(pos[0]); f.Text == "" {
		return c.usageError("search text: empty")
	}
	if f.Size <= 0 {
		return c.usageError("limit: %d is not positive", f.Size)
	}
	var err error
	if f.Since, err = parseSince(since, time.Now()); err != nil {
		return c.usageError("%v", err)
	}
	var events []review.Event
	var total int
	return c.fetchAndWrite(ctx, func(rctx context.Context, cl *review.Client) (any, error) {
		var err error
		events, total, err = cl.Events(rctx, f)
		return map[string]any{"total": total, "events": events}, err
	}, func() error { return review.WriteSearchHits(stdout, events, total, f.Text) })
}
