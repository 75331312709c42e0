package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

// pgxPair is one pgx connection through the gateway and one direct to the
// same server as the same role, to compare what clients get.
type pgxPair struct {
	g       *gateway
	pg      pgServer
	gw, dir *pgx.Conn
}

func newPgxPair(t *testing.T) *pgxPair {
	t.Helper()
	pg := postgresServer(t)
	g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
	p := &pgxPair{g: g, pg: pg, gw: connectPgx(t, g.connString(testUser, testPassword, "demo")),
		dir: connectPgx(t, pg.directDSN(pg.DemoUser, pg.DemoPassword, pg.DemoDB))}
	return p
}

func connectPgx(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// rowsOf runs a query and renders every row, or the error's SQLSTATE.
func rowsOf(ctx context.Context, c *pgx.Conn, sql string, args ...any) []string {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return []string{"error: " + sqlstate(err)}
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return append(out, "error: "+err.Error())
		}
		out = append(out, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		out = append(out, "error: "+sqlstate(err))
	}
	return append(out, "tag: "+rows.CommandTag().String())
}

func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code + " " + pe.Message
	}
	return err.Error()
}

// lastQueries waits until want statements are recorded and returns the last
// want of them.
func (g *gateway) lastQueries(t *testing.T, want int) []recorder.Query {
	t.Helper()
	evs, ok := g.rec.WaitFor(10*time.Second, func(evs []recordertest.Event) bool { return len(queries(evs)) >= want })
	qs := queries(evs)
	if !ok {
		t.Fatalf("recorded %d statements, want at least %d: %q", len(qs), want, summarize(evs))
	}
	return qs[len(qs)-want:]
}

func TestPgxResultsMatchDirect(t *testing.T) {
	p := newPgxPair(t)
	ctx := context.Background()
	ts := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	tests := []struct {
		name string
		sql  string
		args []any
	}{
		{name: "constant", sql: "select 1"},
		{name: "typed params", sql: "select $1::int2, $2::int4, $3::int8, $4::float4, $5::float8, $6::numeric, $7::text, $8::bool, $9::bytea, $10::timestamptz, $11::date, $12::uuid, $13::jsonb",
			args: []any{int16(-2), int32(7), int64(1) << 40, float32(1.5), 2.25, "12345.6789", "o'hara", true, []byte{0, 1, 255}, ts, ts, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", map[string]any{"k": []any{1.0, "v"}}}},
		{name: "arrays", sql: "select $1::int[], $2::text[]", args: []any{[]int32{1, 2, 3}, []string{"a b", "c"}}},
		{name: "nulls", sql: "select null::int, $1::text", args: []any{nil}},
		{name: "generate series", sql: "select g, md5(g::text) from generate_series(1, 500) g"},
		{name: "error", sql: "select 1/0"},
		{name: "unknown column", sql: "select nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := rowsOf(ctx, p.gw, tt.sql, tt.args...), rowsOf(ctx, p.dir, tt.sql, tt.args...)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("through the gateway:\n %q\ndirect:\n %q", got, want)
			}
		})
	}
}

func TestPgxRecordsStatements(t *testing.T) {
	p := newPgxPair(t)
	ctx := context.Background()
	ts := time.Date(2024, 2, 29, 13, 14, 15, 0, time.UTC)
	_ = rowsOf(ctx, p.gw, "select $1::int4, $2::text, $3::bool, $4::timestamptz, $5::bytea, $6::numeric, $7::int8[]",
		int32(42), "it's", true, ts, []byte("hi"), "3.14", []int64{1, 2})
	q := p.g.lastQueries(t, 1)[0]
	wantParams := []string{"42", "'it''s'", "true", "'2024-02-29 13:14:15+00'", `'\x6869'`, "3.14", "'{1,2}'"}
	if !reflect.DeepEqual(q.Params, wantParams) {
		t.Errorf("params = %q, want %q", q.Params, wantParams)
	}
	if q.Protocol != "extended" || q.CommandTag != "SELECT 1" || q.ReturnedRows != 1 || q.TxStatus != 'I' {
		t.Errorf("event %+v", q)
	}
	if len(q.Columns) != 7 || q.Preview == "" {
		t.Errorf("columns %q preview %q", q.Columns, q.Preview)
	}

	_ = rowsOf(ctx, p.gw, "select 1/0")
	q = p.g.lastQueries(t, 1)[0]
	if q.ErrorCode != "22012" || q.ErrorMessage != "division by zero" || q.CommandTag != "" {
		t.Errorf("error event %+v", q)
	}

	// Simple protocol, several statements in one Query.
	_, err := p.gw.Exec(ctx, "create temp table t(a int); insert into t values (1), (2); update t set a = a + 1; select * from t; drop table t")
	if err != nil {
		t.Fatal(err)
	}
	got := p.g.lastQueries(t, 5)
	want := []struct {
		text, tag    string
		rows, affect int64
	}{
		{"create temp table t(a int)", "CREATE TABLE", 0, 0},
		{"insert into t values (1), (2)", "INSERT 0 2", 0, 2},
		{"update t set a = a + 1", "UPDATE 2", 0, 2},
		{"select * from t", "SELECT 2", 2, 0},
		{"drop table t", "DROP TABLE", 0, 0},
	}
	for i, w := range want {
		g := got[i]
		if g.Text != w.text || g.CommandTag != w.tag || g.ReturnedRows != w.rows || g.RowsAffected != w.affect || g.Protocol != "simple" {
			t.Errorf("statement %d: got %q %q rows=%d affected=%d %s; want %+v", i, g.Text, g.CommandTag, g.ReturnedRows, g.RowsAffected, g.Protocol, w)
		}
	}
}

// A pgx batch pipelines every statement before one Sync; an error in the
// middle makes the server skip the rest, and the record says so, in order.
func TestPgxBatchPairsExactly(t *testing.T) {
	p := newPgxPair(t)
	ctx := context.Background()
	if _, err := p.gw.Exec(ctx, "create temp table b(a int primary key)"); err != nil {
		t.Fatal(err)
	}
	batch := &pgx.Batch{}
	batch.Queue("insert into b values ($1)", 1)
	batch.Queue("select a from b where a = $1", 1)
	batch.Queue("insert into b values ($1)", 1) // duplicate key
	batch.Queue("insert into b values ($1)", 3)
	batch.Queue("select count(*) from b")
	err := p.gw.SendBatch(ctx, batch).Close()
	if sqlstate(err)[:5] != "23505" {
		t.Fatalf("batch error = %v, want 23505", err)
	}
	got := p.g.lastQueries(t, 5)
	want := []brief{
		{Text: "insert into b values ($1)", Protocol: "extended", Tag: "INSERT 0 1", Affected: 1, Tx: 'I', Params: "1"},
		{Text: "select a from b where a = $1", Protocol: "extended", Tag: "SELECT 1", Rows: 1, Tx: 'I', Params: "1"},
		{Text: "insert into b values ($1)", Protocol: "extended", Code: "23505", Tx: 'I', Params: "1"},
		{Text: "insert into b values ($1)", Protocol: "extended", NotExecuted: true, Tx: 'I', Params: "3"},
		{Text: "select count(*) from b", Protocol: "extended", NotExecuted: true, Tx: 'I'},
	}
	if b := briefs(got); !reflect.DeepEqual(b, want) {
		t.Fatalf("batch events:\n got  %+v\n want %+v", b, want)
	}
}

func TestPgxTransactionsAndSavepoints(t *testing.T) {
	p := newPgxPair(t)
	ctx := context.Background()
	for _, sql := range []string{"begin", "create temp table s(a int)", "savepoint sp", "insert into s values ('x')", "rollback to savepoint sp", "insert into s values (1)", "commit"} {
		_, _ = p.gw.Exec(ctx, sql)
	}
	got := p.g.lastQueries(t, 7)
	wantTx := []byte{'T', 'T', 'T', 'E', 'T', 'T', 'I'}
	for i, q := range got {
		if q.TxStatus != wantTx[i] {
			t.Errorf("%q: tx status %c, want %c", q.Text, q.TxStatus, wantTx[i])
		}
	}
	if got[3].ErrorCode != "22P02" {
		t.Errorf("failed insert: %+v", got[3])
	}
}

func TestPgxCopyInAndOut(t *testing.T) {
	p := newPgxPair(t)
	ctx := context.Background()
	if _, err := p.gw.Exec(ctx, "create temp table c(a int, b text)"); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&in, "%d\trow %d\n", i, i)
	}
	inLen := int64(in.Len())
	tag, err := p.gw.PgConn().CopyFrom(ctx, &in, "copy c from stdin")
	if err != nil || tag.RowsAffected() != 1000 {
		t.Fatalf("copy in: %v %v", tag, err)
	}
	q := p.g.lastQueries(t, 1)[0]
	if q.CommandTag != "COPY 1000" || q.RowsAffected != 1000 || q.CopyBytes != inLen || !strings.Contains(q.Preview, fmt.Sprintf("moved %d bytes", inLen)) {
		t.Errorf("copy in event: tag %q affected %d copy bytes %d (want %d) preview %q", q.CommandTag, q.RowsAffected, q.CopyBytes, inLen, q.Preview)
	}
	var out bytes.Buffer
	if _, err := p.gw.PgConn().CopyTo(ctx, &out, "copy c to stdout"); err != nil {
		t.Fatal(err)
	}
	if out.Len() != int(inLen) {
		t.Errorf("copied out %d bytes, want %d", out.Len(), inLen)
	}
	q = p.g.lastQueries(t, 1)[0]
	if q.CommandTag != "COPY 1000" || q.ReturnedRows != 1000 || q.CopyBytes != inLen || !strings.HasPrefix(q.Preview, fmt.Sprintf("-- COPY moved %d bytes\n0\trow 0\n", inLen)) {
		t.Errorf("copy out event: tag %q rows %d copy bytes %d (want %d) preview %q", q.CommandTag, q.ReturnedRows, q.CopyBytes, inLen, q.Preview)
	}
	// pgx's CopyFrom uses the binary format through the extended protocol.
	n, err := p.gw.CopyFrom(ctx, pgx.Identifier{"c"}, []string{"a", "b"}, pgx.CopyFromRows([][]any{{1, "x"}, {2, "y"}}))
	if err != nil || n != 2 {
		t.Fatalf("binary copy: %d %v", n, err)
	}
	q = p.g.lastQueries(t, 1)[0]
	// Binary COPY bytes: the 19-byte header (11-byte signature, flags,
	// extension length) and per row a 2-byte field count, int4 (4+4) and a
	// 1-byte text (4+1); pgx sends no trailer.
	const binaryCopyBytes = 19 + 2*(2+8+5)
	if q.CommandTag != "COPY 2" || !strings.HasPrefix(q.Text, "copy \"c\"") || q.CopyBytes != binaryCopyBytes {
		t.Errorf("binary copy event (want %d copy bytes) %+v", binaryCopyBytes, q)
	}
}

func TestPgxNoticesAndNotifications(t *testing.T) {
	p := newPgxPair(t)
	ctx := context.Background()
	var notices []string
	cfg, err := pgx.ParseConfig(p.g.connString(testUser, testPassword, "demo"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "do $$ begin raise notice 'hello %', 42; end $$"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(notices, []string{"hello 42"}) {
		t.Errorf("client notices %q", notices)
	}
	q := p.g.lastQueries(t, 1)[0]
	if !reflect.DeepEqual(q.Notices, []string{"NOTICE: hello 42"}) || q.CommandTag != "DO" {
		t.Errorf("recorded %q notices %q", q.CommandTag, q.Notices)
	}

	if _, err := c.Exec(ctx, "listen pamtrail_chan"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.dir.Exec(ctx, "select pg_notify('pamtrail_chan', 'ping')"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := c.WaitForNotification(wctx)
	if err != nil || n.Channel != "pamtrail_chan" || n.Payload != "ping" {
		t.Fatalf("notification %+v, %v", n, err)
	}
}

// connectPgxCancelling connects a pgx client that answers a cancelled
// context with a cancel request, waiting for the server's answer, instead
// of pgx's default of closing the connection.
func connectPgxCancelling(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 15 * time.Second}
	}
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// Cancelling a query through the gateway's key cancels it upstream.
func TestPgxCancel(t *testing.T) {
	p := newPgxPair(t)
	c := connectPgxCancelling(t, p.g.connString(testUser, testPassword, "demo"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(ctx, "select pg_sleep(30)")
	if err == nil || time.Since(start) > 15*time.Second {
		t.Fatalf("pg_sleep returned %v after %s; want a quick cancel", err, time.Since(start))
	}
	q := p.g.lastQueries(t, 1)[0]
	if q.ErrorCode != "57014" {
		t.Fatalf("recorded %+v, want SQLSTATE 57014 (query_canceled)", q)
	}
}

// A large result streams through; the event counts every row and keeps
// only a bounded preview.
func TestPgxLargeResult(t *testing.T) {
	p := newPgxPair(t)
	ctx := context.Background()
	rows, err := p.gw.Query(ctx, "select g, repeat('x', 100) from generate_series(1, 100000) g")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if rows.Err() != nil || n != 100000 {
		t.Fatalf("read %d rows, err %v", n, rows.Err())
	}
	q := p.g.lastQueries(t, 1)[0]
	if q.ReturnedRows != 100000 || q.CommandTag != "SELECT 100000" || !q.PreviewTrunc || len(q.Preview) > 4096 {
		t.Fatalf("event rows=%d tag=%q trunc=%v preview=%d bytes", q.ReturnedRows, q.CommandTag, q.PreviewTrunc, len(q.Preview))
	}
	if strings.Count(q.Preview, "\n") != 9 {
		t.Errorf("preview has %d rows, want the default 10", strings.Count(q.Preview, "\n")+1)
	}
}

func connectPgxErr(ctx context.Context, dsn string) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) }
