package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/control"
)

// adminFlags say how to reach the gateways' admin APIs.
type adminFlags struct {
	gateways          multiFlag
	tokenFile, caFile string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (f *adminFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.gateways, "gateway", "admin API URL of a gateway, repeatable (default: PAMTRAIL_GATEWAYS, comma-separated)")
	fs.StringVar(&f.tokenFile, "token-file", os.Getenv("PAMTRAIL_ADMIN_TOKEN_FILE"), "file holding the admin token (default from PAMTRAIL_ADMIN_TOKEN_FILE)")
	fs.StringVar(&f.caFile, "admin-ca", os.Getenv("PAMTRAIL_ADMIN_CA"), "PEM CA that signed the gateways' admin certificates (https)")
}

func (f *adminFlags) client() (*control.Client, error) {
	gws := []string(f.gateways)
	if len(gws) == 0 {
		for _, g := range strings.Split(os.Getenv("PAMTRAIL_GATEWAYS"), ",") {
			if g = strings.TrimSpace(g); g != "" {
				gws = append(gws, g)
			}
		}
	}
	return control.NewClient(gws, f.tokenFile, f.caFile)
}

const adminTimeout = 30 * time.Second

// report prints each gateway's answer and returns the exit code: non-zero
// if any gateway did not apply the action.
func report(stdout, stderr io.Writer, what string, outcomes []control.Outcome, notFoundOK bool) int {
	code := 0
	for _, o := range outcomes {
		switch {
		case o.Err == nil:
			fmt.Fprintf(stdout, "%s: %s on %s (gateway %s), %d session(s) ended\n", o.Gateway, what, o.Gateway, o.Result.GatewayID, o.Result.Ended)
			for _, w := range o.Result.Warnings {
				fmt.Fprintf(stdout, "%s: warning: %s\n", o.Gateway, w)
			}
		case notFoundOK && errors.Is(o.Err, control.ErrNotFound):
			fmt.Fprintf(stdout, "%s: nothing to do\n", o.Gateway)
		default:
			fmt.Fprintf(stderr, "%s: %s FAILED: %v\n", o.Gateway, what, o.Err)
			code = 1
		}
	}
	return code
}

// runSessionsTerminate ends a live session on whichever gateway holds it.
func runSessionsTerminate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sessions terminate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af adminFlags
	var es esFlags
	af.register(fs)
	es.register(fs)
	reason := fs.String("reason", "", "why, recorded with the session's end and the admin event (required)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 || *reason == "" {
		fmt.Fprintln(stderr, "usage: pamtrail sessions terminate SESSION_ID --reason TEXT [--gateway URL ...] [--token-file F]")
		return 2
	}
	c, err := af.client()
	if err != nil {
		fmt.Fprintf(stderr, "pamtrail: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	// Elasticsearch says which gateway holds the session, when it has seen
	// it; otherwise every gateway is asked.
	preferred := ""
	if rc, err := es.client(); err == nil {
		lookup, cancelLookup := context.WithTimeout(ctx, 3*time.Second)
		if s, err := rc.Session(lookup, pos[0]); err == nil {
			preferred = s.GatewayID
		}
		cancelLookup()
	}
	o, err := c.Terminate(ctx, pos[0], *reason, preferred)
	if err != nil {
		fmt.Fprintf(stderr, "pamtrail: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "session %s terminated on gateway %s (%s)\n", pos[0], o.Result.GatewayID, o.Gateway)
	return 0
}

// runLock: pamtrail lock user|account NAME [--for 1h] [--reason R] | lock list.
func runLock(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af adminFlags
	af.register(fs)
	dur := fs.Duration("for", 0, "how long the lock holds (default: until unlocked)")
	reason := fs.String("reason", "", "why, shown to the refused user and recorded")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	usage := "usage: pamtrail lock user|account NAME [--for 1h] [--reason TEXT]\n       pamtrail lock list"
	if len(pos) == 1 && pos[0] == "list" {
		return runLockList(af, stdout, stderr)
	}
	if len(pos) != 2 || (pos[0] != control.LockUser && pos[0] != control.LockAccount) || *dur < 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	c, err := af.client()
	if err != nil {
		fmt.Fprintf(stderr, "pamtrail: %v\n", err)
		return 2
	}
	req := control.LockRequest{Kind: pos[0], Name: pos[1], Reason: *reason}
	if *dur > 0 {
		req.For = dur.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	return report(stdout, stderr, "locked "+pos[0]+" "+pos[1], c.Lock(ctx, req), false)
}

func runLockList(af adminFlags, stdout, stderr io.Writer) int {
	c, err := af.client()
	if err != nil {
		fmt.Fprintf(stderr, "pamtrail: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	code := 0
	for _, g := range c.Gateways {
		locks, ok := c.Locks(ctx)[g]
		if !ok || locks == nil {
			fmt.Fprintf(stderr, "%s: could not list locks\n", g)
			code = 1
			continue
		}
		for _, l := range locks {
			until := "until unlocked"
			if !l.Expires.IsZero() {
				until = "until " + l.Expires.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%s\t%s %s\t%s\tby %s\t%s\n", g, l.Kind, l.Name, until, l.By, l.Reason)
		}
	}
	return code
}

// adminCommand parses an admin subcommand's flags and positional
// arguments (valid says whether they fit) and builds the client; code is
// non-zero when the command must stop there.
func adminCommand(name, usage string, args []string, stderr io.Writer, valid func([]string) bool) (c *control.Client, pos []string, code int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af adminFlags
	af.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, 2
	}
	if !valid(pos) {
		fmt.Fprintln(stderr, usage)
		return nil, nil, 2
	}
	if c, err = af.client(); err != nil {
		fmt.Fprintf(stderr, "pamtrail: %v\n", err)
		return nil, nil, 2
	}
	return c, pos, 0
}

func isLockTarget(pos []string) bool {
	return len(pos) == 2 && (pos[0] == control.LockUser || pos[0] == control.LockAccount)
}

// runUnlock: pamtrail unlock user|account NAME.
func runUnlock(args []string, stdout, stderr io.Writer) int {
	c, pos, code := adminCommand("unlock", "usage: pamtrail unlock user|account NAME", args, stderr, isLockTarget)
	if code != 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	return report(stdout, stderr, "unlocked "+pos[0]+" "+pos[1], c.Unlock(ctx, pos[0], pos[1]), true)
}

// runReload asks every gateway to re-read its config (as SIGHUP does).
func runReload(args []string, stdout, stderr io.Writer) int {
	c, _, code := adminCommand("reload", "usage: pamtrail reload [--gateway URL ...]", args, stderr, func(pos []string) bool { return len(pos) == 0 })
	if code != 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	return report(stdout, stderr, "reloaded", c.Reload(ctx), false)
}

// runAdminToken writes a new admin token to a 0600 file and prints the
// identity line for the gateway config, which holds only its SHA-256.
func runAdminToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("admin-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "the admin identity, recorded with every action (required)")
	out := fs.String("out", "", "file to write the token to (required; created 0600, never overwritten)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *name == "" || *out == "" {
		fmt.Fprintln(stderr, "usage: pamtrail admin-token --name NAME --out FILE")
		return 2
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		fmt.Fprintf(stderr, "pamtrail: %v\n", err)
		return 1
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "pamtrail: %v\n", err)
		return 1
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "pamtrail: %v\n", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintf(stderr, "pamtrail: %v\n", err)
		return 1
	}
	sum := sha256.Sum256([]byte(token))
	fmt.Fprintf(stdout, "# add to admin.identities in the gateway config:\n- {name: %s, token_sha256: %s}\n", *name, hex.EncodeToString(sum[:]))
	return 0
}
