package clienttests

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// pgbench runs the workload as custom scripts (pgbench/*.sql), one pgbench
// invocation per script and query mode: `pgbench -n -t 1 -c 1 -M mode -r`.
// The scripts check their own results with \gset/\aset and \if, failing
// pgbench (a runtime division by zero in \set) on a wrong value, and print
// them with \shell echo, so the output compared direct and through the
// gateway holds the values the client received, its per-statement
// failure and retry counts, and any error.
//
// What pgbench cannot do, and what stands in for it:
//   - COPY: pgbench sends the statement but refuses the COPY response
//     ("COPY is not supported in pgbench, aborting", exit 2). copyout.sql and
//     copyin.sql are run expecting that failure; COPY TO STDOUT has completed
//     on the server by then and is recorded with its tag and bytes, COPY
//     FROM STDIN is recorded as never answered when pgbench hangs up.
//   - A client cancel: pgbench never sends a CancelRequest. timeout.sql has
//     the server cancel the statement (statement_timeout, SQLSTATE 57014).
//   - Going on after an error: pgbench 15 aborts the client on any error
//     but a serialization failure or deadlock, which it retries with
//     --max-tries after sending ROLLBACK itself. retry.sql raises
//     SQLSTATE 40001 inside a transaction on its first try, so the error,
//     pgbench's ROLLBACK and the retried transaction are all recorded.
//   - Statements whose parameters are typed by the client: pgbench sends
//     every variable as untyped text, so the server infers the types.

//go:embed pgbench/*.sql
var pgbenchScripts embed.FS

// PgbenchRun is one pgbench invocation and exactly what the gateway must
// record for it.
type PgbenchRun struct {
	Name   string
	Script string   // file name under pgbench/
	Args   []string // query mode and other flags
	// Fails is the error pgbench must end with (exit status 2), direct and
	// through the gateway; empty means it must succeed.
	Fails string
	// Want is every statement the session executes, in order, with its
	// response: nothing else may be recorded.
	Want []Recorded
	// CopyBytes is the COPY data the COPY statement of Want moved.
	CopyBytes int64
}

// PgbenchRuns lists the invocations, each a session of its own (pgbench
// also opens a setup connection first, which runs no statement). Texts are
// as pgbench puts them on the wire: the simple protocol's Query split into
// statements, an extended-protocol Parse verbatim, with its semicolon, and
// a trailing space where \gset or \aset was cut off.
func PgbenchRuns() []PgbenchRun {
	ok := func(text, tag string, rows int64, params ...string) Recorded {
		return Recorded{Text: text, Tag: tag, Rows: rows, Params: params}
	}
	failed := func(text, code string) Recorded { return Recorded{Text: text, Code: code} }
	// params.sql, the same in both modes that bind parameters.
	params := []Recorded{
		ok("create temp table pb(id int primary key, name text, amount numeric, ratio float8, at timestamptz, ok bool, uid uuid);", "CREATE TABLE", 0),
		ok("select 'alice' as name, '2026-01-02 03:04:05+00' as at, '6f1c2b9e-0c5a-4a7e-9d1e-3b2a1c0d9e8f' as uid ", "SELECT 1", 1),
		ok("insert into pb values ($1, $2, $3, $4, $5, $6, $7);", "INSERT 0 1", 0,
			"'7'", "'alice'", "'12.5'", "'0.25'", "'2026-01-02 03:04:05+00'", "'true'", "'6f1c2b9e-0c5a-4a7e-9d1e-3b2a1c0d9e8f'"),
		ok("select (name = 'alice' and amount = 12.5 and ratio = 0.25 and at = '2026-01-02 03:04:05+00' and ok and uid = '6f1c2b9e-0c5a-4a7e-9d1e-3b2a1c0d9e8f')::int as good, name as got_name, amount as got_amount from pb where id = $1 ", "SELECT 1", 1, "'7'"),
		// The pipeline: three Executes, one Sync.
		ok("insert into pb (id, name) values ($1 + 1, 'pipelined');", "INSERT 0 1", 0, "'7'"),
		ok("update pb set amount = amount * 2 where id = $1;", "UPDATE 1", 0, "'7'"),
		ok("select count(*) from pb;", "SELECT 1", 1),
		ok("select count(*) as n, sum(amount) as total from pb ", "SELECT 1", 1),
		ok("select g as last_g from generate_series(1, $1) g ", "SELECT 100000", 100000, "'100000'"),
	}
	// retry.sql's statements before the transaction, run on each try.
	retryStart := func(try string) []Recorded {
		return []Recorded{
			ok("create temp sequence if not exists tries;", "CREATE SEQUENCE", 0),
			ok("create temp table if not exists pt(try int);", "CREATE TABLE", 0),
			ok("select nextval('tries') as try ", "SELECT 1", 1),
			ok("begin;", "BEGIN", 0),
			ok("insert into pt values ($1);", "INSERT 0 1", 0, "'"+try+"'"),
		}
	}
	retry := append(retryStart("1"),
		failed("do $$ begin raise exception 'simulated serialization failure' using errcode = 'serialization_failure'; end $$;", "40001"),
		ok("ROLLBACK", "ROLLBACK", 0)) // sent by pgbench itself
	retry = append(append(retry, retryStart("2")...),
		ok("commit;", "COMMIT", 0),
		ok("select count(*) as n, max(try) as kept from pt ", "SELECT 1", 1))
	const copyUnsupported = "COPY is not supported in pgbench, aborting"
	return []PgbenchRun{
		{Name: "simple", Script: "simple.sql", Args: []string{"-M", "simple"}, Want: []Recorded{
			ok("select 1 as one, 'two' as two", "SELECT 1", 1),
			// One Query with three statements (\;).
			ok("select 1 as a", "SELECT 1", 1),
			ok("select 2 as b", "SELECT 1", 1),
			ok("select 3 as c", "SELECT 1", 1),
			ok("create temp table ps(id int primary key, name text)", "CREATE TABLE", 0),
			// The simple protocol has no parameters: pgbench substitutes them.
			ok("insert into ps values (7, 'seven'), (7 + 1, 'eight')", "INSERT 0 2", 0),
			ok("update ps set name = name || '!' where id > 7", "UPDATE 1", 0),
			ok("select count(*) as n, string_agg(name, ',' order by id) as names from ps", "SELECT 1", 1),
			ok("select g as last_g from generate_series(1, 100000) g", "SELECT 100000", 100000),
		}},
		{Name: "extended", Script: "params.sql", Args: []string{"-M", "extended"}, Want: params},
		{Name: "prepared", Script: "params.sql", Args: []string{"-M", "prepared"}, Want: params},
		{Name: "error-rollback-retry", Script: "retry.sql", Args: []string{"-M", "extended", "--max-tries=2", "--failures-detailed"}, Want: retry},
		{Name: "server-cancel", Script: "timeout.sql", Args: []string{"-M", "extended"},
			Fails: "ERROR:  canceling statement due to statement timeout", Want: []Recorded{
				ok("set statement_timeout = '100ms';", "SET", 0),
				failed("select pg_sleep(5);", "57014"),
			}},
		{Name: "copy-out", Script: "copyout.sql", Args: []string{"-M", "simple"}, Fails: copyUnsupported, CopyBytes: int64(len("1\n2\n3\n")),
			Want: []Recorded{ok("copy (select g from generate_series(1, 3) g) to stdout", "COPY 3", 3)}},
		// pgbench ends the COPY without sending data.
		{Name: "copy-in", Script: "copyin.sql", Args: []string{"-M", "simple"}, Fails: copyUnsupported, CopyBytes: 0,
			Want: []Recorded{ok("create temp table pc(a int)", "CREATE TABLE", 0), ok("copy pc from stdin", "COPY 0", 0)}},
	}
}

// What differs between two runs of one script: the lines of rates and
// connection times, and each statement's latency in the -r report.
var (
	pgbenchTimingLines = regexp.MustCompile(`(?m)^(latency average|latency stddev|initial connection time|tps) = .*\n`)
	pgbenchLatency     = regexp.MustCompile(`(?m)^ *[0-9]+\.[0-9]+ `)
)

// RunPgbench runs one invocation against host:port and returns its stdout
// and stderr with the timings blanked: what must be identical direct and
// through the gateway. It fails the test when pgbench does not end as
// r.Fails says.
func RunPgbench(t testing.TB, r PgbenchRun, host string, port int, user, password, db string) string {
	t.Helper()
	bin, err := exec.LookPath("pgbench")
	if err != nil {
		t.Fatalf("pgbench is not installed (Debian: apt-get install postgresql-client): %v", err)
	}
	script, err := pgbenchScripts.ReadFile("pgbench/" + r.Script)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, r.Script), script, 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-h", host, "-p", strconv.Itoa(port), "-U", user, "-n", "-t", "1", "-c", "1", "-r"}, r.Args...)
	args = append(args, "-f", r.Script, db)
	cmd := exec.Command(bin, args...)
	// The script is named relative to dir, so the report names it alike
	// whichever run made it.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10", "PGSSLMODE=disable", "PGAPPNAME=pamtrail-pgbench")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	out := pgbenchLatency.ReplaceAllString(pgbenchTimingLines.ReplaceAllString(stdout.String(), ""), "<latency> ") +
		"--- stderr\n" + stderr.String()
	var exit *exec.ExitError
	switch {
	case r.Fails == "" && err != nil:
		t.Fatalf("pgbench %s against %s:%d: %v\n%s", strings.Join(r.Args, " "), host, port, err, out)
	case r.Fails != "" && (!errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), r.Fails)):
		t.Fatalf("pgbench %s against %s:%d ended with %v, want exit status 2 and %q:\n%s", strings.Join(r.Args, " "), host, port, err, r.Fails, out)
	}
	return out
}

// CheckExact verifies got is exactly want: one record per executed
// statement, in order, nothing more.
func CheckExact(t testing.TB, want, got []Recorded) {
	t.Helper()
	n := max(len(want), len(got))
	var diff strings.Builder
	for i := range n {
		var w, g string
		if i < len(want) {
			w = want[i].String()
		}
		if i < len(got) {
			g = got[i].String()
		}
		if w != g {
			fmt.Fprintf(&diff, "  #%d\n    got  %s\n    want %s\n", i, g, w)
		}
	}
	if diff.Len() > 0 {
		t.Errorf("recorded statements differ from the workload's:\n%s", diff.String())
	}
}

// String renders every field compared, for exact checks and diffs.
func (r Recorded) String() string {
	return fmt.Sprintf("%q tag=%q code=%q rows=%d not_executed=%v params=%q", r.Text, r.Tag, r.Code, r.Rows, r.NotExecuted, r.Params)
}
