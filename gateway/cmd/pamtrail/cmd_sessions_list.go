package main

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

func runSessionsList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newSessionsCommand("list", stdout, stderr)
	var f review.SessionFilter
	var since string
	c.fs.StringVar(&f.Status, "status", "", "only sessions in this status: active, ended, failed or lost")
	c.fs.StringVar(&f.User, "user", "", "only sessions of this gateway user")
	c.fs.StringVar(&f.Account, "account", "", "only sessions on this account")
	c.fs.StringVar(&f.MinRisk, "risk", "", "only sessions of this risk level or higher: "+strings.Join(schema.RiskLevels, ", "))
	c.fs.StringVar(&since, "since", "", "only sessions active in this window (1h, 7d) or since this RFC 3339 time")
	c.fs.IntVar(&f.Limit, "limit", 50, "at most this many sessions")
	if _, code := c.parse(args, 0, ""); code >= 0 {
		return code
	}
	var err error
	if f.Since, err = parseSince(since, time.Now()); err != nil {
		return c.usageError("%v", err)
	}
	if err := f.Validate(); err != nil {
		return c.usageError("%v", err)
	}
	var sessions []review.Session
	var total int
	return c.fetchAndWrite(ctx, func(rctx context.Context, cl *review.Client) (any, error) {
		var err error
		sessions, total, err = cl.Sessions(rctx, f)
		return map[string]any{"total": total, "sessions": sessions}, err
	}, func() error { return review.WriteSessionTable(stdout, sessions, total) })
}
