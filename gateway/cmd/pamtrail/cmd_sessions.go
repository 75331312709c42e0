package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/pamtrail/pamtrail/gateway/review"
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

// sessionsSubcommand is one `pamtrail sessions` subcommand; each lives in
// its own cmd_sessions_<name>.go file.
type sessionsSubcommand struct {
	name  string
	usage string // the arguments and flags, after the name
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// sessionsSubcommands in the order the usage lists them.
var sessionsSubcommands = []sessionsSubcommand{
	{"list", "[--status S] [--user U] [--account A] [--risk LEVEL] [--since 1h] [--limit N] [--json]", runSessionsList},
	{"search", "TEXT [--raw] [--since 24h] [--user U] [--limit N] [--json]", runSessionsSearch},
	{"show", "SESSION_ID [--grep TEXT] [--raw] [--follow] [--json]", runSessionsShow},
	{"live", "SESSION_ID            (same as show --follow)", runSessionsLive},
	{"play", "SESSION_ID [--speed N] [--idle-limit 2s] [--from 1m30s|TIME]", runSessionsPlay},
	{"export", "SESSION_ID --format asciicast|jsonl|csv [-o FILE]", runSessionsExport},
	{"terminate", "SESSION_ID --reason TEXT [--gateway URL ...] [--token-file F]", runSessionsTerminate},
	{"verify", "SESSION_ID | --since 24h [--gateway ID] [--keys FILE.pub] [--require-sealed] [--json]", runSessionsVerify},
}

// runSessions reviews recorded sessions.
func runSessions(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		sessionsUsage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch args[0] {
	case "-h", "--help", "help":
		sessionsUsage(stdout)
		return 0
	}
	for _, sub := range sessionsSubcommands {
		if sub.name == args[0] {
			return sub.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "pamtrail sessions: unknown subcommand %q\n", args[0])
	sessionsUsage(stderr)
	return 2
}

func sessionsUsage(w io.Writer) {
	for i, sub := range sessionsSubcommands {
		prefix := "       "
		if i == 0 {
			prefix = "usage: "
		}
		fmt.Fprintf(w, "%spamtrail sessions %s %s\n", prefix, sub.name, sub.usage)
	}
	fmt.Fprintln(w, "connection flags (every subcommand): --url URL[,URL...] --ca FILE --insecure-skip-verify --username USER --password-env VAR --api-key-env VAR")
}

// esFlags are the flags that say how to reach Elasticsearch.
type esFlags struct {
	url, caFile, username, passwordEnv, apiKeyEnv string
	insecure                                      bool
}

func (f *esFlags) register(fs *flag.FlagSet) {
	defaultURL := os.Getenv("PAMTRAIL_ES_URL")
	if defaultURL == "" {
		defaultURL = defaultESURL
	}
	fs.StringVar(&f.url, "url", defaultURL, "Elasticsearch URL, or the nodes of a cluster separated by commas (default from PAMTRAIL_ES_URL)")
	fs.StringVar(&f.caFile, "ca", "", "PEM file of the CA that signed Elasticsearch's certificate (https only)")
	fs.BoolVar(&f.insecure, "insecure-skip-verify", false, "do not verify Elasticsearch's TLS certificate (testing only)")
	fs.StringVar(&f.username, "username", os.Getenv("PAMTRAIL_ES_USERNAME"), "basic-auth user (default from PAMTRAIL_ES_USERNAME)")
	fs.StringVar(&f.passwordEnv, "password-env", defaultESPasswordEnv, "name of the environment variable holding the basic-auth password")
	fs.StringVar(&f.apiKeyEnv, "api-key-env", "", "name of the environment variable holding an Elasticsearch API key (base64 id:key), instead of --username")
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
	if f.apiKeyEnv != "" {
		if cfg.APIKey = os.Getenv(f.apiKeyEnv); cfg.APIKey == "" {
			return nil, fmt.Errorf("environment variable %s (--api-key-env) is empty", f.apiKeyEnv)
		}
	}
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
