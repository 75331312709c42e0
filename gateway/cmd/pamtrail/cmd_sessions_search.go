package main

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/review"
)

func runSessionsSearch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newSessionsCommand("search", stdout, stderr)
	var since, user string
	var raw bool
	limit := 100
	c.fs.StringVar(&since, "since", "", "only events in this window (1h, 7d) or since this RFC 3339 time")
	c.fs.StringVar(&user, "user", "", "only events of this gateway user")
	c.fs.IntVar(&limit, "limit", limit, "at most this many hits, newest first")
	c.fs.BoolVar(&raw, "raw", false, "also search the raw terminal chunks kept for replay")
	pos, code := c.parse(args, 1, "search text")
	if code >= 0 {
		return code
	}
	text := strings.TrimSpace(pos[0])
	if text == "" {
		return c.usageError("search text: empty")
	}
	f := review.SearchFilter(text, raw)
	f.User, f.Size = user, limit
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
