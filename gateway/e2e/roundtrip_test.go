package e2e

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

func psql(t *testing.T, dsn string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("psql", append([]string{dsn, "-X", "-v", "ON_ERROR_STOP=0", "-At"}, args...)...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestRoundTrip: psql and pgx through the gateway get correct answers, and
// each statement arrives in Elasticsearch with its text, response,
// timestamps and session attributes.
func TestRoundTrip(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.start()
	marker := "rt_" + randomHex(4)
	out, err := psql(t, s.dsn("alice", alicePassword, "demo-postgres"),
		"-c", "select '"+marker+"' as m",
		"-c", "select * from no_such_table_"+marker,
		"-c", "select generate_series(1,3)")
	if err != nil && !strings.Contains(out, "does not exist") {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	if !strings.Contains(out, marker) || !strings.Contains(out, "1\n2\n3") {
		t.Fatalf("psql output through the gateway is wrong:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn("alice", alicePassword, "demo-postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	if err := conn.QueryRow(ctx, "select sum(x) from generate_series(1, $1::int) x", 100).Scan(&sum); err != nil || sum != 5050 {
		t.Fatalf("pgx extended query: %d, %v", sum, err)
	}
	if _, err := conn.Exec(ctx, "select '"+marker+"-pgx'", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	evs := s.waitEvents(60*time.Second, review.Filter{}, func(evs []review.Event) (bool, string) {
		ended := 0
		for _, e := range evs {
			if e.EventName == schema.EventSessionEnd {
				ended++
			}
		}
		return ended == 2, describe(evs)
	})
	checkExactlyOnce(t, evs, true)
	sessions := bySession(evs)
	if len(sessions) != 2 {
		t.Fatalf("want 2 sessions, got %d", len(sessions))
	}
	var psqlSession []review.Event
	for _, list := range sessions {
		for _, e := range list {
			if strings.Contains(e.Str(schema.AttrDBQueryText), "select '"+marker+"' as m") {
				psqlSession = list
			}
		}
	}
	if psqlSession == nil {
		t.Fatalf("psql statement not found: %s", describe(evs))
	}
	want := []struct {
		text, tag, code string
		rows            int64
	}{
		{"select '" + marker + "' as m", "SELECT 1", "", 1},
		{"select * from no_such_table_" + marker, "", "42P01", 0},
		{"select generate_series(1,3)", "SELECT 3", "", 3},
	}
	var queries []review.Event
	for _, e := range psqlSession {
		if e.EventName == schema.EventDBQuery {
			queries = append(queries, e)
		}
	}
	if len(queries) != len(want) {
		t.Fatalf("psql session has %d queries, want %d: %s", len(queries), len(want), describe(psqlSession))
	}
	for i, w := range want {
		q := queries[i]
		if q.Str(schema.AttrDBQueryText) != w.text || q.Str(schema.AttrDBCommandTag) != w.tag || q.Str(schema.AttrDBStatusCode) != w.code {
			t.Errorf("query %d: text=%q tag=%q code=%q; want %+v", i, q.Str(schema.AttrDBQueryText), q.Str(schema.AttrDBCommandTag), q.Str(schema.AttrDBStatusCode), w)
		}
		if w.code == "" && q.Int(schema.AttrDBReturnedRows) != w.rows {
			t.Errorf("query %d: returned rows %d, want %d", i, q.Int(schema.AttrDBReturnedRows), w.rows)
		}
		if q.Timestamp.IsZero() || q.Str(schema.AttrStartTime) == "" || q.Int(schema.AttrDurationMs) < 0 {
			t.Errorf("query %d lacks timestamps: %+v", i, q)
		}
		for _, k := range []string{schema.AttrSessionID, schema.AttrUserName, schema.AttrAccount, schema.AttrResourceType, schema.AttrClientAddr, schema.AttrGatewayID} {
			if q.Str(k) == "" {
				t.Errorf("query %d lacks %s", i, k)
			}
		}
		if q.Str(schema.AttrUserName) != "alice" || q.Str(schema.AttrAccount) != "demo-postgres" || q.Str(schema.AttrResourceType) != "postgres" {
			t.Errorf("query %d: wrong session attributes %v", i, q.Attributes)
		}
	}
	// Full-text search finds the statement, as the quickstart promises.
	if hits := s.events(review.Filter{Text: marker}); len(hits) == 0 {
		t.Error("full-text search for the marker found nothing")
	}
}

// TestSpoolNeverHoldsPlaintext: a canary in a query and a secret in a
// password change never appear in any spool file, and files are 0600.
func TestSpoolNeverHoldsPlaintext(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.startGateway() // no collector: everything stays in the spool
	canary := "canary-" + randomHex(8)
	out, err := psql(t, s.dsn("alice", alicePassword, "demo-postgres"), "-c", "select '"+canary+"'",
		"-c", "create temp table t_"+canary[7:]+" (v text)", "-c", "insert into t_"+canary[7:]+" values ('"+canary+"')")
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	s.gateway.stop() // flush and close the spool
	files := 0
	err = filepath.WalkDir(s.spoolDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		info, _ := d.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", path, info.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, needle := range []string{canary, "alice", "select"} {
			if bytes.Contains(b, []byte(needle)) {
				t.Errorf("%s contains plaintext %q", path, needle)
			}
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walk spool: %v, %d files", err, files)
	}
}

// TestBadCredentials: wrong password, unknown account and missing grant get
// a proper ErrorResponse and a pam.auth.failure event.
func TestBadCredentials(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.start()
	tests := []struct {
		name, user, password, account, sqlstate, reason string
	}{
		{"wrong password", "alice", "not-the-password", "demo-postgres", "28P01", schema.AuthBadPassword},
		{"unknown user", "mallory", "x", "demo-postgres", "28P01", schema.AuthUnknownUser},
		{"unknown account", "alice", alicePassword, "no-such-account", "28000", schema.AuthUnknownAccount},
		{"missing grant", "bob", alicePassword, "demo-postgres", "28000", schema.AuthNoGrant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_, err := pgx.Connect(ctx, s.dsn(tt.user, tt.password, tt.account))
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tt.sqlstate {
				t.Fatalf("got %v, want SQLSTATE %s", err, tt.sqlstate)
			}
		})
	}
	evs := s.waitEvents(60*time.Second, review.Filter{EventName: schema.EventAuthFailure}, func(evs []review.Event) (bool, string) {
		return len(evs) >= len(tests), describe(evs)
	})
	for _, tt := range tests {
		found := false
		for _, e := range evs {
			if e.Str(schema.AttrUserName) == tt.user && e.Str(schema.AttrAuthFailure) == tt.reason {
				found = true
			}
		}
		if !found {
			t.Errorf("no pam.auth.failure for %s with reason %s: %s", tt.user, tt.reason, describe(evs))
		}
	}
	for _, e := range evs {
		if strings.Contains(e.Body, alicePassword) || strings.Contains(e.Body, "not-the-password") {
			t.Errorf("a password reached a record: %q", e.Body)
		}
	}
}

// TestBadInputClosesOnlyThatConnection: garbage and oversized startup
// packets close their own connection; the gateway keeps serving others.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.startGateway()
	inputs := map[string][]byte{
		"garbage":        []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"oversized":      {0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0},
		"short length":   {0, 0, 0, 2},
		"bad protocol":   {0, 0, 0, 8, 0, 9, 0, 0},
		"truncated body": {0, 0, 0, 40, 0, 3, 0, 0, 'u', 's'},
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", s.gwAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, _ = c.Write(in)
			if name == "truncated body" {
				c.(*net.TCPConn).CloseWrite()
			}
			_ = c.SetReadDeadline(time.Now().Add(40 * time.Second))
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatal("gateway kept a connection with a bad startup packet open")
					}
					break // closed by the gateway
				}
			}
		})
	}
	out, err := psql(t, s.dsn("alice", alicePassword, "demo-postgres"), "-c", "select 42")
	if err != nil || !strings.Contains(out, "42") {
		t.Fatalf("gateway stopped serving after bad input: %v\n%s", err, out)
	}
}

// TestBadConfigExitsNonZeroNamingTheField.
func TestBadConfigExitsNonZeroNamingTheField(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, yaml, field string }{
		{"bad port", "postgres: {address: 127.0.0.1:6432}\nspool: {key_env: K}\nusers: []\naccounts:\n  - {name: a, type: postgres, host: h, port: 70000, database: d, user: u}\n", "accounts[0].port"},
		{"unknown field", "postgres: {address: 127.0.0.1:6432, adress: x}\n", "adress"},
		{"no listener", "spool: {key_env: K}\n", "postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".yaml")
			writeFile(t, path, tt.yaml)
			out, err := exec.Command(pamtrailBin, "gateway", "--config", path).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("want non-zero exit, got %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.field) {
				t.Fatalf("message does not name %q:\n%s", tt.field, out)
			}
		})
	}
}
