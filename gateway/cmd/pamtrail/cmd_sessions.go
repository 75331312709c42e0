package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/elastic/go-elasticsearch/v8"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
	"github.com/pamtrail/pamtrail/gateway/setup"
)

const (
	// sessionsRequestTimeout bounds one read; a live view makes many.
	sessionsRequestTimeout = 30 * time.Second
	// defaultFollowInterval is how often the live view polls. It reads
	// without forcing a refresh, so it costs Elasticsearch one cheap search
	// per poll and shows what the index's own refresh has made visible.
	defaultFollowInterval = 2 * time.Second
)

// runSessions reviews recorded sessions: list, search, show, live.
func runSessions(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		sessionsUsage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch args[0] {
	case "list":
		return runSessionsList(ctx, args[1:], stdout, stderr)
	case "search":
		return runSessionsSearch(ctx, args[1:], stdout, stderr)
	case "show":
		return runSessionsShow(ctx, args[1:], false, stdout, stderr)
	case "live":
		return runSessionsShow(ctx, args[1:], true, stdout, stderr)
	case "-h", "--help", "help":
		sessionsUsage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "pamtrail sessions: unknown subcommand %q\n", args[0])
		sessionsUsage(stderr)
		return 2
	}
}

func sessionsUsage(w io.Writer) {
	fmt.Fprintln(w, `usage: pamtrail sessions list [--status S] [--user U] [--account A] [--risk LEVEL] [--since 1h] [--limit N] [--json]
       pamtrail sessions search TEXT [--since 24h] [--user U] [--limit N] [--json]
       pamtrail sessions show SESSION_ID [--grep TEXT] [--follow] [--json]
       pamtrail sessions live SESSION_ID            (same as show --follow)
connection flags (every subcommand): --url URL --ca FILE --insecure-skip-verify --username USER --password-env VAR`)
}

// esFlags are the flags that say how to reach Elasticsearch.
type esFlags struct {
	url, caFile, username, passwordEnv string
	insecure                           bool
}

func (f *esFlags) register(fs *flag.FlagSet) {
	defaultURL := os.Getenv("PAMTRAIL_ES_URL")
	if defaultURL == "" {
		defaultURL = defaultESURL
	}
	fs.StringVar(&f.url, "url", defaultURL, "Elasticsearch URL (default from PAMTRAIL_ES_URL)")
	fs.StringVar(&f.caFile, "ca", "", "PEM file of the CA that signed Elasticsearch's certificate (https only)")
	fs.BoolVar(&f.insecure, "insecure-skip-verify", false, "do not verify Elasticsearch's TLS certificate (testing only)")
	fs.StringVar(&f.username, "username", os.Getenv("PAMTRAIL_ES_USERNAME"), "basic-auth user (default from PAMTRAIL_ES_USERNAME)")
	fs.StringVar(&f.passwordEnv, "password-env", defaultESPasswordEnv, "name of the environment variable holding the basic-auth password")
}

// client builds the review client; the password comes from the environment
// so that it never appears on a command line or in an error.
func (f *esFlags) client() (*review.Client, error) {
	es, err := f.elasticsearch()
	if err != nil {
		return nil, err
	}
	return &review.Client{ES: es}, nil
}

// elasticsearch builds the client both `sessions` and `setup` use.
func (f *esFlags) elasticsearch() (*elasticsearch.Client, error) {
	cfg := setup.ClientConfig{URL: f.url, CAFile: f.caFile, InsecureSkipVerify: f.insecure, Username: f.username}
	if cfg.Username != "" {
		cfg.Password = os.Getenv(f.passwordEnv)
		if cfg.Password == "" {
			return nil, fmt.Errorf("--username is set but environment variable %s (--password-env) is empty", f.passwordEnv)
		}
	}
	return setup.NewElasticsearchClient(cfg)
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("show ID --follow"), which package flag alone stops
// at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseSince accepts a duration back from now ("90m", "1h", "7d") or an
// RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("since: %q is neither a duration (90m, 1h, 7d) nor an RFC 3339 time", s)
}

// sessionsCommand holds what every subcommand shares: its name for
// messages, its flags and its output streams.
type sessionsCommand struct {
	name           string
	fs             *flag.FlagSet
	es             esFlags
	jsonOut        bool
	stdout, stderr io.Writer
}

func newSessionsCommand(name string, stdout, stderr io.Writer) *sessionsCommand {
	c := &sessionsCommand{name: "pamtrail sessions " + name, stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.fs.SetOutput(stderr)
	c.es.register(c.fs)
	c.fs.BoolVar(&c.jsonOut, "json", false, "print JSON instead of text")
	return c
}

// parse parses args and checks the number of positional arguments; a
// non-negative code means "exit with it".
func (c *sessionsCommand) parse(args []string, positional int, what string) ([]string, int) {
	pos, err := parseInterspersed(c.fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	if len(pos) != positional {
		if positional == 0 {
			return nil, c.usageError("unexpected argument %q", pos[0])
		}
		return nil, c.usageError("want exactly one %s, got %d arguments", what, len(pos))
	}
	return pos, -1
}

func (c *sessionsCommand) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "%s: %s\n", c.name, fmt.Sprintf(format, args...))
	return 2
}

// fail reports a failed read, naming the Elasticsearch URL so that an
// unreachable or misconfigured cluster is obvious.
func (c *sessionsCommand) fail(err error) int {
	if errors.Is(err, review.ErrNoSession) {
		fmt.Fprintf(c.stderr, "%s: %v\n", c.name, err)
	} else {
		fmt.Fprintf(c.stderr, "%s: Elasticsearch at %s: %v\n", c.name, c.es.url, err)
	}
	return 1
}

func (c *sessionsCommand) client() (*review.Client, int) {
	cl, err := c.es.client()
	if err != nil {
		return nil, c.usageError("%v", err)
	}
	return cl, -1
}

func (c *sessionsCommand) writeJSON(v any) int {
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(c.stderr, "%s: writing output: %v\n", c.name, err)
		return 1
	}
	return 0
}

// fetchAndWrite connects, runs fetch within the request timeout, then prints
// what it returned as JSON (--json) or writes the text rendering.
func (c *sessionsCommand) fetchAndWrite(ctx context.Context, fetch func(context.Context, *review.Client) (any, error), writeText func() error) int {
	cl, code := c.client()
	if code >= 0 {
		return code
	}
	rctx, cancel := requestContext(ctx)
	defer cancel()
	out, err := fetch(rctx, cl)
	if err != nil {
		return c.fail(err)
	}
	if c.jsonOut {
		return c.writeJSON(out)
	}
	return c.done(writeText())
}

func (c *sessionsCommand) done(err error) int {
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: writing output: %v\n", c.name, err)
		return 1
	}
	return 0
}

func requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, sessionsRequestTimeout)
}

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

// runSessionsShow prints a session's document and its complete event log;
// with --follow (or as "live") it keeps printing new events while the
// session is active.
func runSessionsShow(ctx context.Context, args []string, follow bool, stdout, stderr io.Writer) int {
	name := "show"
	if follow {
		name = "live"
	}
	c := newSessionsCommand(name, stdout, stderr)
	var grep string
	interval := defaultFollowInterval
	c.fs.StringVar(&grep, "grep", "", "only events whose statement, command or response contains this text")
	c.fs.BoolVar(&follow, "follow", follow, "keep printing new events while the session is active (Ctrl-C stops)")
	c.fs.DurationVar(&interval, "interval", interval, "how often --follow polls")
	pos, code := c.parse(args, 1, "session id")
	if code >= 0 {
		return code
	}
	if interval <= 0 {
		return c.usageError("interval: %s is not positive", interval)
	}
	id := pos[0]
	cl, code := c.client()
	if code >= 0 {
		return code
	}
	if follow {
		return c.follow(ctx, cl, id, grep, interval)
	}
	rctx, cancel := requestContext(ctx)
	defer cancel()
	sess, err := cl.Session(rctx, id)
	if err != nil {
		return c.fail(err)
	}
	events, err := cl.SessionEvents(rctx, id, grep, 0)
	if err != nil {
		return c.fail(err)
	}
	if c.jsonOut {
		return c.writeJSON(map[string]any{"session": sess, "events": events})
	}
	return c.done(writeShow(stdout, sess, events, grep))
}

func writeShow(w io.Writer, sess review.Session, events []review.Event, grep string) error {
	if err := review.WriteSessionDetail(w, sess); err != nil {
		return err
	}
	header := fmt.Sprintf("\nEvents (%d)", len(events))
	if grep != "" {
		header = fmt.Sprintf("\nEvents containing %q (%d)", review.Sanitize(grep, false), len(events))
	}
	fmt.Fprintln(w, header)
	return review.WriteEvents(w, events)
}

// follow prints the session, then its events as they arrive. With --json it
// prints one event per line (NDJSON) and the final session document last.
func (c *sessionsCommand) follow(ctx context.Context, cl *review.Client, id, grep string, interval time.Duration) int {
	first := true
	rctx, cancel := requestContext(ctx)
	sess, err := cl.Session(rctx, id)
	cancel()
	if err != nil {
		return c.fail(err)
	}
	if !c.jsonOut {
		if err := review.WriteSessionDetail(c.stdout, sess); err != nil {
			return c.done(err)
		}
	}
	final, err := cl.Follow(ctx, id, review.FollowOptions{
		Grep:     grep,
		Interval: interval,
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
				fmt.Fprintln(c.stdout, "\nEvents")
				first = false
			}
			return review.WriteEvents(c.stdout, evs)
		},
		OnPollError: func(err error) {
			fmt.Fprintf(c.stderr, "%s: Elasticsearch at %s: %v (retrying every %s)\n", c.name, c.es.url, err, interval)
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
	fmt.Fprintf(c.stdout, "\nSession %s is %s; no longer following.\n", review.Sanitize(id, false), review.Sanitize(final.Status, false))
	return 0
}
