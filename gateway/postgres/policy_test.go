package postgres

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/control"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

// guardedConfig is baseConfig with the demo account under a policy that
// blocks (or audits) TRUNCATE and DROP DATABASE.
func guardedConfig(t *testing.T, pg pgServer, mode string) *config.Config {
	acct := pg.demoAccount(t)
	acct.Policy = "guard"
	cfg := baseConfig(t, acct)
	cfg.Policies = []config.Policy{{Name: "guard", Mode: mode, SQL: []config.SQLRule{
		{ID: "no-truncate", Statement: "TRUNCATE"},
		{ID: "no-drop-database", Statement: "DROP DATABASE"},
	}}}
	return cfg
}

// policyScenario runs statements around bad in the ways a client can send
// them (one simple Query string, an explicit transaction, a pipelined
// batch, a prepared statement) and describes what the client saw: which
// step failed, with which class of error, and what the table holds after.
func policyScenario(t *testing.T, c *pgx.Conn, bad string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	step := func(name string, err error) {
		class := "ok"
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe) && pe.Code == "25P02":
			class = "aborted transaction"
		case err != nil:
			class = "error"
		}
		out = append(out, name+": "+class)
	}
	table := func() {
		out = append(out, "table: "+strings.Join(rowsOf(ctx, c, "select a from pt order by a"), ","))
	}
	exec := func(name, sql string) {
		_, err := c.Exec(ctx, sql)
		step(name, err)
	}
	exec("create", "create temp table pt(a int)")

	_, err := c.PgConn().Exec(ctx, "insert into pt values (1); "+bad+"; insert into pt values (2)").ReadAll()
	step("one query string", err)
	table()

	exec("begin", "begin")
	exec("insert in transaction", "insert into pt values (10)")
	exec("blocked in transaction", bad)
	exec("after it", "select 1")
	exec("rollback", "rollback")
	table()

	batch := &pgx.Batch{}
	batch.Queue("insert into pt values ($1)", 20)
	batch.Queue(bad)
	batch.Queue("insert into pt values ($1)", 21)
	step("pipelined batch", c.SendBatch(ctx, batch).Close())
	table()

	batch = &pgx.Batch{}
	batch.Queue("insert into pt values ($1)", 30)
	batch.Queue("insert into pt values ($1)", 31)
	step("batch without it", c.SendBatch(ctx, batch).Close())
	table()

	_, err = c.Prepare(ctx, "named_bad", bad)
	step("prepare", err)
	exec("connection still usable", "select 1")
	return out
}

// A blocked statement fails where it stands and everything around it
// behaves as PostgreSQL treats a statement it refuses itself: the implicit
// transaction of a query string or a pipeline rolls back, an explicit one
// is aborted until ROLLBACK, the pipeline skips to Sync, a prepared
// statement is not created. The reference is the same scenario sent
// straight to PostgreSQL with a statement the server rejects at parse
// analysis, as the gateway's substitute is rejected.
func TestBlockedStatementBehavesAsPostgreSQL(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, guardedConfig(t, pg, config.PolicyEnforce))
	gw := connectPgx(t, g.connString(testUser, testPassword, "demo"))
	dir := connectPgx(t, pg.directDSN(pg.DemoUser, pg.DemoPassword, pg.DemoDB))

	got := policyScenario(t, gw, "TRUNCATE pt")
	t.Logf("transcript:\n%s", strings.Join(got, "\n"))
	want := policyScenario(t, dir, "select * from pamtrail_no_such_table")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("through the gateway with TRUNCATE blocked:\n%s\nstraight to PostgreSQL with a refused statement:\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, line := range []string{"table: tag: SELECT 0", "blocked in transaction: error", "after it: aborted transaction", "table: 30,31,tag: SELECT 2"} {
		if !strings.Contains(strings.Join(got, "\n"), line) {
			t.Errorf("transcript lacks %q:\n%s", line, strings.Join(got, "\n"))
		}
	}

	// The client is told which rule stopped the statement.
	_, err := gw.Exec(context.Background(), "drop  /* x */ database demo")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, `rule "no-drop-database"`) || pe.Severity != "ERROR" {
		t.Fatalf("blocked DROP DATABASE: %v, want SQLSTATE 42501 naming rule no-drop-database", err)
	}

	// Every attempt is recorded as the user sent it, blocked, with its rule.
	g.lastQueries(t, 1)
	var blocked []string
	for _, q := range queries(g.rec.Events()) {
		if q.Policy != nil {
			if !q.Policy.Blocks() || q.ErrorCode == "" {
				t.Errorf("statement %q matched %+v but was not recorded as blocked (error %q)", q.Text, q.Policy, q.ErrorCode)
			}
			blocked = append(blocked, fmt.Sprintf("%s [%s] %s", q.Text, q.Policy.Rule, q.ErrorCode))
		}
		if strings.Contains(q.Text, "pamtrail:blocked") || strings.Contains(q.ErrorMessage, "pamtrail:blocked") {
			t.Errorf("the substitute leaked into the record: %+v", q)
		}
	}
	wantBlocked := []string{
		"TRUNCATE pt [no-truncate] 42501",
		"TRUNCATE pt [no-truncate] 42501",
		"TRUNCATE pt [no-truncate] 42501",
		"TRUNCATE pt [no-truncate] 42501",
		"drop  /* x */ database demo [no-drop-database] 42501",
	}
	if !reflect.DeepEqual(blocked, wantBlocked) {
		t.Fatalf("blocked statements recorded:\n%s\nwant:\n%s", strings.Join(blocked, "\n"), strings.Join(wantBlocked, "\n"))
	}
}

// audit mode lets the statement run and flags it.
func TestAuditedStatementRunsAndIsFlagged(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, guardedConfig(t, pg, config.PolicyAudit))
	gw := connectPgx(t, g.connString(testUser, testPassword, "demo"))
	ctx := context.Background()
	for _, sql := range []string{"create temp table pt(a int)", "insert into pt values (1)", "truncate pt"} {
		if _, err := gw.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if got := rowsOf(ctx, gw, "select count(*) from pt"); got[0] != "0" {
		t.Fatalf("audit mode must let TRUNCATE run; count = %v", got)
	}
	qs := g.lastQueries(t, 2)
	if m := qs[0].Policy; m == nil || m.Blocks() || m.Rule != "no-truncate" || qs[0].CommandTag != "TRUNCATE TABLE" {
		t.Fatalf("audited TRUNCATE recorded as %+v (policy %+v)", qs[0], m)
	}
	if qs[1].Policy != nil {
		t.Fatalf("an allowed statement was flagged: %+v", qs[1].Policy)
	}
}

// FuzzRewriter: whatever the bytes and however they are cut into reads,
// a rewriter that replaces nothing forwards exactly the stream, and one
// that replaces every held message forwards the other bytes unchanged.
func FuzzRewriter(f *testing.F) {
	f.Add([]byte("Q\x00\x00\x00\x0dselect 1\x00P\x00\x00\x00\x08ab\x00\x00S\x00\x00\x00\x04"), uint8(3))
	f.Add([]byte("E\x00\x00\x00\x05\x00Z\x00\x00\x00\x05I"), uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint8) {
		same := rewriter{maxLen: 1 << 20, hold: func(typ byte) bool { return typ == 'Q' || typ == 'P' }, replace: func(m []byte) []byte { return m }}
		var out []byte
		step := int(cut)%7 + 1
		for i := 0; i < len(stream); i += step {
			got, err := same.apply(stream[i:min(i+step, len(stream))])
			if err != nil {
				return // an invalid length ends the session; nothing to compare
			}
			out = append(out, got...)
		}
		if !same.holding && string(out) != string(stream) {
			t.Fatalf("identity rewrite changed the stream:\n in  %q\n out %q", stream, out)
		}
		if same.holding && !strings.HasPrefix(string(stream), string(out)) {
			t.Fatalf("output is not a prefix of the stream while a message is held:\n in  %q\n out %q", stream, out)
		}
	})
}

// A lock ends the user's live session at once (57P01 with the lock's
// reason) and refuses new logins with a clear error, each recorded as an
// authentication failure with reason locked; unlocking lets the user in.
func TestLockEndsSessionAndRefusesLogins(t *testing.T) {
	pg := postgresServer(t)
	cfg := baseConfig(t, pg.demoAccount(t))
	cfg.Admin = &config.Admin{Address: "127.0.0.1:0", LocksFile: filepath.Join(t.TempDir(), "locks.json")}
	ctl, err := control.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := startGatewayWith(t, cfg, func(o *Options) { o.Control = ctl })
	ctl.AddEngine(g.engine)
	ctx := context.Background()
	live := connectPgx(t, g.connString(testUser, testPassword, "demo"))

	if _, err := ctl.Lock(control.Lock{Kind: control.LockUser, Name: testUser, Reason: "incident 7", By: "ops-lead"}); err != nil {
		t.Fatal(err)
	}
	// Lock asks the session to end and returns (engine.EndFunc does not
	// block): a statement sent at that instant may still be answered, but
	// the session ends at once after it.
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, func() (bool, string) {
		_, err = live.Exec(ctx, "select 1")
		return err != nil, "the session still answers statements after the lock"
	})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57P01" || !strings.Contains(pe.Message, `user "alice" is locked: incident 7 (by ops-lead)`) {
		t.Fatalf("live session after the lock: %v", err)
	}
	// The session records its end after telling the client; wait for it,
	// so the records below have one order.
	g.rec.WaitFor(10*time.Second, func(evs []recordertest.Event) bool { return countKind(evs, "end") > 0 })
	_, err = pgx.Connect(ctx, g.connString(testUser, testPassword, "demo"))
	if !errors.As(err, &pe) || pe.Code != "28000" || !strings.Contains(pe.Message, `user "alice" is locked: incident 7`) {
		t.Fatalf("login while locked: %v", err)
	}
	evs, _ := g.rec.WaitFor(10*time.Second, func(evs []recordertest.Event) bool {
		return countKind(evs, "auth_failure") > 0 && countKind(evs, "end") > 0
	})
	var reasons []string
	for _, e := range evs {
		switch e.Kind {
		case "auth_failure":
			reasons = append(reasons, "refused: "+e.Failure.Reason)
		case "end":
			reasons = append(reasons, "ended: "+e.End.Reason)
		}
	}
	if want := []string{"ended: locked", "refused: locked"}; !reflect.DeepEqual(reasons, want) {
		t.Fatalf("recorded %q, want %q", reasons, want)
	}
	if found, err := ctl.Unlock(control.LockUser, testUser); !found || err != nil {
		t.Fatalf("unlock: %v %v", found, err)
	}
	connectPgx(t, g.connString(testUser, testPassword, "demo"))
}

// psql: a blocked statement is an ERROR line naming the rule, the rest of
// the script runs, and psql's \; batch behaves as one Query string.
func TestPsqlBlockedStatement(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, guardedConfig(t, pg, config.PolicyEnforce))
	out := runPsql(t, g.connString(testUser, testPassword, "demo"), testPassword, `create temp table pt(a int);
insert into pt values (1);
drop database demo;
insert into pt values (2) \; truncate pt \; insert into pt values (3);
select count(*) from pt;
`)
	want := "CREATE TABLE\nINSERT 0 1\n" +
		`ERROR:  pamtrail: statement blocked by policy "guard", rule "no-drop-database"` + "\n" +
		"DETAIL:  The account's policy forbids this statement; it was not sent to the server.\n" +
		"INSERT 0 1\n" + // the batch's first statement ran, and was rolled back with the batch
		`ERROR:  pamtrail: statement blocked by policy "guard", rule "no-truncate"` + "\n" +
		"DETAIL:  The account's policy forbids this statement; it was not sent to the server.\n" +
		"count\n1\n(1 row)\n"
	if out != want {
		t.Fatalf("psql through the gateway:\n%s\nwant:\n%s", out, want)
	}
}
