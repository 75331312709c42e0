package postgres

import (
	"encoding/binary"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// wireScript drives a tracker with real encoded messages through the same
// frame scanners the relay uses, alternating client and server turns.
type wireScript struct {
	t      *testing.T
	tr     *tracker
	cs, ss *frameScanner
	got    []recorder.Query
	clock  time.Time
}

func newWireScript(t *testing.T) *wireScript {
	w := &wireScript{t: t, clock: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	lim := limits{previewRows: 2, previewBytes: 64, maxParamBytes: 16}
	w.tr = newTracker(lim, func(q recorder.Query) error {
		w.got = append(w.got, q)
		return nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.cs = &frameScanner{maxLen: 4 << 20, side: "client", obs: clientSide{w.tr}}
	w.ss = &frameScanner{maxLen: 1 << 20, side: "server", obs: serverSide{w.tr}}
	return w
}

func encode(t testing.TB, msgs ...interface{ Encode([]byte) ([]byte, error) }) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func (w *wireScript) feed(sc *frameScanner, b []byte) {
	w.t.Helper()
	w.clock = w.clock.Add(time.Millisecond)
	w.tr.begin(w.clock)
	defer w.tr.end()
	if err := sc.feed(b); err != nil {
		w.t.Fatalf("feed: %v", err)
	}
}

func (w *wireScript) client(msgs ...pgproto3.FrontendMessage) *wireScript {
	w.t.Helper()
	var enc []interface{ Encode([]byte) ([]byte, error) }
	for _, m := range msgs {
		enc = append(enc, m)
	}
	w.feed(w.cs, encode(w.t, enc...))
	return w
}

func (w *wireScript) server(msgs ...pgproto3.BackendMessage) *wireScript {
	w.t.Helper()
	var enc []interface{ Encode([]byte) ([]byte, error) }
	for _, m := range msgs {
		enc = append(enc, m)
	}
	w.feed(w.ss, encode(w.t, enc...))
	return w
}

// brief is the part of an event these tests compare.
type brief struct {
	Text        string
	Protocol    string
	Tag         string
	Rows        int64
	Affected    int64
	Code        string
	NotExecuted bool
	Tx          byte
	Params      string
	CopyBytes   int64
}

func briefs(qs []recorder.Query) []brief {
	out := make([]brief, len(qs))
	for i, q := range qs {
		out[i] = brief{Text: q.Text, Protocol: q.Protocol, Tag: q.CommandTag, Rows: q.ReturnedRows,
			Affected: q.RowsAffected, Code: q.ErrorCode, NotExecuted: q.NotExecuted, Tx: q.TxStatus,
			Params: strings.Join(q.Params, ","), CopyBytes: q.CopyBytes}
	}
	return out
}

func (w *wireScript) expect(want ...brief) {
	w.t.Helper()
	if got := briefs(w.got); !reflect.DeepEqual(got, want) {
		w.t.Fatalf("events:\n got  %+v\n want %+v", got, want)
	}
}

var (
	int4Col = pgproto3.FieldDescription{Name: []byte("n"), DataTypeOID: oidInt4, DataTypeSize: 4, TypeModifier: -1}
	textCol = pgproto3.FieldDescription{Name: []byte("s"), DataTypeOID: oidText, DataTypeSize: -1, TypeModifier: -1}
)

func errResp(code, msg string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: msg}
}

func row(vals ...string) *pgproto3.DataRow {
	r := &pgproto3.DataRow{}
	for _, v := range vals {
		r.Values = append(r.Values, []byte(v))
	}
	return r
}

func TestTrackerSimpleQuery(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		server []pgproto3.BackendMessage
		want   []brief
	}{
		{
			name:  "one select",
			query: "select n from t",
			server: []pgproto3.BackendMessage{&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{int4Col}},
				row("1"), row("2"), row("3"), &pgproto3.CommandComplete{CommandTag: []byte("SELECT 3")}, &pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want: []brief{{Text: "select n from t", Protocol: "simple", Tag: "SELECT 3", Rows: 3, Tx: 'I'}},
		},
		{
			name:  "several statements each with its own tag",
			query: "begin; insert into t values (1); update t set n = 2; commit",
			server: []pgproto3.BackendMessage{
				&pgproto3.CommandComplete{CommandTag: []byte("BEGIN")},
				&pgproto3.CommandComplete{CommandTag: []byte("INSERT 0 1")},
				&pgproto3.CommandComplete{CommandTag: []byte("UPDATE 4")},
				&pgproto3.CommandComplete{CommandTag: []byte("COMMIT")},
				&pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want: []brief{
				{Text: "begin", Protocol: "simple", Tag: "BEGIN", Tx: 'I'},
				{Text: "insert into t values (1)", Protocol: "simple", Tag: "INSERT 0 1", Affected: 1, Tx: 'I'},
				{Text: "update t set n = 2", Protocol: "simple", Tag: "UPDATE 4", Affected: 4, Tx: 'I'},
				{Text: "commit", Protocol: "simple", Tag: "COMMIT", Tx: 'I'},
			},
		},
		{
			name:  "error aborts the rest",
			query: "select 1; select 1/0; select 3",
			server: []pgproto3.BackendMessage{
				&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{int4Col}}, row("1"),
				&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
				&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{int4Col}},
				errResp("22012", "division by zero"),
				&pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want: []brief{
				{Text: "select 1", Protocol: "simple", Tag: "SELECT 1", Rows: 1, Tx: 'I'},
				{Text: "select 1/0", Protocol: "simple", Code: "22012", Tx: 'I'},
				{Text: "select 3", Protocol: "simple", NotExecuted: true, Tx: 'I'},
			},
		},
		{
			name:   "empty query",
			query:  "  -- nothing\n",
			server: []pgproto3.BackendMessage{&pgproto3.EmptyQueryResponse{}, &pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want:   []brief{{Text: "-- nothing", Protocol: "simple", Tx: 'I'}},
		},
		{
			name:  "failed transaction status",
			query: "select x",
			server: []pgproto3.BackendMessage{errResp("42703", `column "x" does not exist`),
				&pgproto3.ReadyForQuery{TxStatus: 'E'}},
			want: []brief{{Text: "select x", Protocol: "simple", Code: "42703", Tx: 'E'}},
		},
		{
			name:  "copy out",
			query: "copy t to stdout",
			server: []pgproto3.BackendMessage{&pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: []uint16{0}},
				&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyData{Data: []byte("2\n")},
				&pgproto3.CopyDone{}, &pgproto3.CommandComplete{CommandTag: []byte("COPY 2")}, &pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want: []brief{{Text: "copy t to stdout", Protocol: "simple", Tag: "COPY 2", Rows: 2, Tx: 'I', CopyBytes: 4}},
		},
		{
			name:  "empty copy out",
			query: "copy t to stdout",
			server: []pgproto3.BackendMessage{&pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: []uint16{0}},
				&pgproto3.CopyDone{}, &pgproto3.CommandComplete{CommandTag: []byte("COPY 0")}, &pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want: []brief{{Text: "copy t to stdout", Protocol: "simple", Tag: "COPY 0", Tx: 'I'}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWireScript(t)
			w.client(&pgproto3.Query{String: tt.query})
			w.server(tt.server...)
			w.expect(tt.want...)
		})
	}
}

func TestTrackerCopyIn(t *testing.T) {
	copyIn := &pgproto3.CopyInResponse{OverallFormat: 0, ColumnFormatCodes: []uint16{0}}
	data := []pgproto3.FrontendMessage{&pgproto3.CopyData{Data: []byte("1\n2\n")}, &pgproto3.CopyData{Data: []byte("3\n")}, &pgproto3.CopyDone{}}
	tests := []struct {
		name string
		run  func(w *wireScript)
		want brief
	}{
		{
			name: "data after CopyInResponse",
			run: func(w *wireScript) {
				w.client(&pgproto3.Query{String: "copy t from stdin"})
				w.server(copyIn)
				w.client(data...)
				w.server(&pgproto3.CommandComplete{CommandTag: []byte("COPY 3")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
			},
			want: brief{Text: "copy t from stdin", Protocol: "simple", Tag: "COPY 3", Affected: 3, Tx: 'I', CopyBytes: 6},
		},
		{
			// pgx sends its data without waiting for CopyInResponse.
			name: "data before CopyInResponse",
			run: func(w *wireScript) {
				w.client(append([]pgproto3.FrontendMessage{&pgproto3.Query{String: "copy t from stdin"}}, data...)...)
				w.server(copyIn, &pgproto3.CommandComplete{CommandTag: []byte("COPY 3")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
			},
			want: brief{Text: "copy t from stdin", Protocol: "simple", Tag: "COPY 3", Affected: 3, Tx: 'I', CopyBytes: 6},
		},
		{
			// The bytes sent before the server refused the data still moved.
			name: "rejected data",
			run: func(w *wireScript) {
				w.client(&pgproto3.Query{String: "copy t from stdin"})
				w.server(copyIn)
				w.client(data...)
				w.server(errResp("22P02", "invalid input syntax for type integer"), &pgproto3.ReadyForQuery{TxStatus: 'I'})
			},
			want: brief{Text: "copy t from stdin", Protocol: "simple", Code: "22P02", Tx: 'I', CopyBytes: 6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWireScript(t)
			tt.run(w)
			w.expect(tt.want)
			if p := w.got[0].Preview; !strings.Contains(p, "6 bytes") || !strings.Contains(p, "1\n2\n") {
				t.Fatalf("preview %q lacks the bytes moved or the data", p)
			}
		})
	}
}

func TestTrackerPreviewAndColumns(t *testing.T) {
	w := newWireScript(t)
	w.client(&pgproto3.Query{String: "select n, s from t"})
	w.server(&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{int4Col, textCol}},
		row("1", "one"), &pgproto3.DataRow{Values: [][]byte{[]byte("2"), nil}}, row("3", "three"),
		&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Message: "hello"},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 3")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	q := w.got[0]
	if !reflect.DeepEqual(q.Columns, []string{"n", "s"}) {
		t.Errorf("columns = %q", q.Columns)
	}
	if q.Preview != "1 | one\n2 | NULL" || !q.PreviewTrunc {
		t.Errorf("preview = %q truncated=%v, want the first 2 rows, truncated", q.Preview, q.PreviewTrunc)
	}
	if !reflect.DeepEqual(q.Notices, []string{"NOTICE: hello"}) {
		t.Errorf("notices = %q", q.Notices)
	}
	if q.Duration <= 0 || q.Start.IsZero() {
		t.Errorf("start %v duration %v not measured", q.Start, q.Duration)
	}
}

// Extended-protocol helpers.
func parse(name, sql string, oids ...uint32) *pgproto3.Parse {
	return &pgproto3.Parse{Name: name, Query: sql, ParameterOIDs: oids}
}

func bind(portal, stmt string, params ...string) *pgproto3.Bind {
	b := &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: stmt}
	for _, p := range params {
		b.Parameters = append(b.Parameters, []byte(p))
	}
	return b
}

func execute(portal string) *pgproto3.Execute { return &pgproto3.Execute{Portal: portal} }

func TestTrackerExtendedPipeline(t *testing.T) {
	sel := "select $1::int"
	ins := "insert into t values ($1)"
	tests := []struct {
		name   string
		client []pgproto3.FrontendMessage
		server []pgproto3.BackendMessage
		want   []brief
	}{
		{
			name:   "parse bind execute sync",
			client: []pgproto3.FrontendMessage{parse("", sel), bind("", "", "7"), &pgproto3.Describe{ObjectType: 'P'}, execute(""), &pgproto3.Sync{}},
			server: []pgproto3.BackendMessage{&pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
				&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{int4Col}}, row("7"),
				&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want: []brief{{Text: sel, Protocol: "extended", Tag: "SELECT 1", Rows: 1, Tx: 'I', Params: "'7'"}},
		},
		{
			name: "three executes, second fails: third not executed",
			client: []pgproto3.FrontendMessage{parse("", ins), bind("", "", "1"), execute(""),
				bind("", "", "x"), execute(""), bind("", "", "3"), execute(""), &pgproto3.Sync{}},
			server: []pgproto3.BackendMessage{&pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
				&pgproto3.CommandComplete{CommandTag: []byte("INSERT 0 1")},
				errResp("22P02", `invalid input syntax for type integer: "x"`),
				&pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want: []brief{
				{Text: ins, Protocol: "extended", Tag: "INSERT 0 1", Affected: 1, Tx: 'I', Params: "'1'"},
				{Text: ins, Protocol: "extended", Code: "22P02", Tx: 'I', Params: "'x'"},
				{Text: ins, Protocol: "extended", NotExecuted: true, Tx: 'I', Params: "'3'"},
			},
		},
		{
			name: "sync per statement: failure does not skip the next group",
			client: []pgproto3.FrontendMessage{parse("", sel), bind("", "", "x"), execute(""), &pgproto3.Sync{},
				parse("", sel), bind("", "", "2"), execute(""), &pgproto3.Sync{}},
			server: []pgproto3.BackendMessage{&pgproto3.ParseComplete{}, errResp("22P02", "bad"),
				&pgproto3.ReadyForQuery{TxStatus: 'I'}, &pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
				row("2"), &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want: []brief{
				{Text: sel, Protocol: "extended", Code: "22P02", Tx: 'I', Params: "'x'"},
				{Text: sel, Protocol: "extended", Tag: "SELECT 1", Rows: 1, Tx: 'I', Params: "'2'"},
			},
		},
		{
			name:   "parse error without execute is recorded for the parse",
			client: []pgproto3.FrontendMessage{parse("s1", "selec 1"), &pgproto3.Describe{ObjectType: 'S', Name: "s1"}, &pgproto3.Sync{}},
			server: []pgproto3.BackendMessage{errResp("42601", "syntax error"), &pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want:   []brief{{Text: "selec 1", Protocol: "extended", Code: "42601", Tx: 'I'}},
		},
		{
			name: "portal suspended then resumed",
			client: []pgproto3.FrontendMessage{parse("", "select n from t"), bind("c", ""),
				&pgproto3.Execute{Portal: "c", MaxRows: 2}, &pgproto3.Execute{Portal: "c", MaxRows: 2}, &pgproto3.Sync{}},
			server: []pgproto3.BackendMessage{&pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
				row("1"), row("2"), &pgproto3.PortalSuspended{}, row("3"),
				&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'T'}},
			want: []brief{
				{Text: "select n from t", Protocol: "extended", Tag: "PORTAL SUSPENDED", Rows: 2, Tx: 'T'},
				{Text: "select n from t", Protocol: "extended", Tag: "SELECT 1", Rows: 1, Tx: 'T'},
			},
		},
		{
			name: "named statements survive the unnamed one being replaced",
			client: []pgproto3.FrontendMessage{parse("a", "select 'a'"), parse("", "select 'u1'"), bind("", "a"), execute(""),
				parse("", "select 'u2'"), bind("", ""), execute(""), bind("", "a"), execute(""), &pgproto3.Sync{}},
			server: []pgproto3.BackendMessage{&pgproto3.ParseComplete{}, &pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
				row("a"), &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
				&pgproto3.ParseComplete{}, &pgproto3.BindComplete{}, row("u2"), &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
				&pgproto3.BindComplete{}, row("a"), &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
				&pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want: []brief{
				{Text: "select 'a'", Protocol: "extended", Tag: "SELECT 1", Rows: 1, Tx: 'I'},
				{Text: "select 'u2'", Protocol: "extended", Tag: "SELECT 1", Rows: 1, Tx: 'I'},
				{Text: "select 'a'", Protocol: "extended", Tag: "SELECT 1", Rows: 1, Tx: 'I'},
			},
		},
		{
			name:   "failed named parse is undone",
			client: []pgproto3.FrontendMessage{parse("a", "select 1"), &pgproto3.Sync{}, parse("a", "select 2"), &pgproto3.Sync{}, bind("", "a"), execute(""), &pgproto3.Sync{}},
			server: []pgproto3.BackendMessage{&pgproto3.ParseComplete{}, &pgproto3.ReadyForQuery{TxStatus: 'I'},
				errResp("42P05", `prepared statement "a" already exists`), &pgproto3.ReadyForQuery{TxStatus: 'I'},
				&pgproto3.BindComplete{}, row("1"), &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want: []brief{
				{Text: "select 2", Protocol: "extended", Code: "42P05", Tx: 'I'},
				{Text: "select 1", Protocol: "extended", Tag: "SELECT 1", Rows: 1, Tx: 'I'},
			},
		},
		{
			name:   "implicit commit failure at sync",
			client: []pgproto3.FrontendMessage{parse("", ins), bind("", "", "1"), execute(""), &pgproto3.Sync{}},
			server: []pgproto3.BackendMessage{&pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
				&pgproto3.CommandComplete{CommandTag: []byte("INSERT 0 1")}, errResp("23505", "deferred unique violation"),
				&pgproto3.ReadyForQuery{TxStatus: 'I'}},
			want: []brief{
				{Text: ins, Protocol: "extended", Tag: "INSERT 0 1", Affected: 1, Tx: 'I', Params: "'1'"},
				{Text: "COMMIT (implicit, at Sync)", Protocol: "extended", Code: "23505", Tx: 'I'},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWireScript(t)
			w.client(tt.client...)
			w.server(tt.server...)
			w.expect(tt.want...)
		})
	}
}

// The client keeps sending after the server's error arrived and before its
// Sync (libpq pipeline mode does): those requests are skipped too.
func TestTrackerDiscardsUntilSync(t *testing.T) {
	w := newWireScript(t)
	w.client(parse("", "select 1/0"), bind("", ""), execute(""))
	w.server(&pgproto3.ParseComplete{}, &pgproto3.BindComplete{}, errResp("22012", "division by zero"))
	w.client(parse("", "select 2"), bind("", ""), execute(""), &pgproto3.Query{String: "select 3"}, &pgproto3.Sync{})
	w.server(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	w.client(parse("", "select 4"), bind("", ""), execute(""), &pgproto3.Sync{})
	w.server(&pgproto3.ParseComplete{}, &pgproto3.BindComplete{}, row("4"),
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	w.expect(
		brief{Text: "select 1/0", Protocol: "extended", Code: "22012", Tx: 'I'},
		brief{Text: "select 2", Protocol: "extended", NotExecuted: true, Tx: 'I'},
		brief{Text: "select 3", Protocol: "simple", NotExecuted: true, Tx: 'I'},
		brief{Text: "select 4", Protocol: "extended", Tag: "SELECT 1", Rows: 1, Tx: 'I'},
	)
}

// Binary parameters are rendered with the types the server described, even
// when the description arrives after the Bind was sent.
func TestTrackerBinaryParamsTypedLate(t *testing.T) {
	w := newWireScript(t)
	i8 := make([]byte, 8)
	binary.BigEndian.PutUint64(i8, 1<<40)
	b := &pgproto3.Bind{PreparedStatement: "s", ParameterFormatCodes: []int16{1, 0, 1},
		Parameters: [][]byte{i8, []byte("it's"), nil}}
	w.client(parse("s", "select $1, $2, $3"), &pgproto3.Describe{ObjectType: 'S', Name: "s"}, b, execute(""), &pgproto3.Sync{})
	w.server(&pgproto3.ParseComplete{}, &pgproto3.ParameterDescription{ParameterOIDs: []uint32{oidInt8, oidText, oidBool}},
		&pgproto3.NoData{}, &pgproto3.BindComplete{}, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'})
	w.expect(brief{Text: "select $1, $2, $3", Protocol: "extended", Tag: "SELECT 0", Tx: 'I', Params: "1099511627776,'it''s',NULL"})
}

func TestTrackerParamTruncation(t *testing.T) {
	w := newWireScript(t)
	w.client(parse("", "select $1"), bind("", "", strings.Repeat("x", 100)), execute(""), &pgproto3.Sync{})
	w.server(&pgproto3.ParseComplete{}, &pgproto3.BindComplete{}, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'})
	q := w.got[0]
	if !q.ParamsTruncated || len(q.Params[0]) > 16+2+len("…") {
		t.Fatalf("param %q truncated=%v; want at most 16 bytes and the flag", q.Params[0], q.ParamsTruncated)
	}
}

// Responses that match no request make the tracker lose sync; it recovers
// at the next ReadyForQuery and pairs the following statements exactly.
func TestTrackerRecoversFromDesync(t *testing.T) {
	w := newWireScript(t)
	w.client(&pgproto3.Query{String: "select 1"})
	w.server(&pgproto3.BindComplete{}, row("1"), &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	w.client(&pgproto3.Query{String: "select 2"})
	w.server(row("2"), &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	if len(w.got) != 2 || w.got[0].ErrorMessage != unpairedResponse || w.got[1].CommandTag != "SELECT 1" || w.got[1].Text != "select 2" {
		t.Fatalf("events %+v", briefs(w.got))
	}
}

func TestTrackerCloseRecordsUnanswered(t *testing.T) {
	w := newWireScript(t)
	w.client(&pgproto3.Query{String: "select pg_sleep(10)"}, &pgproto3.Query{String: "select 2"})
	w.server(&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{int4Col}})
	if err := w.tr.close(w.clock.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Both were sent: the server may have run them, so neither is
	// "not executed"; their outcome is unknown.
	if len(w.got) != 2 {
		t.Fatalf("events %+v", w.got)
	}
	for _, q := range w.got {
		if !strings.Contains(q.ErrorMessage, "outcome unknown") || q.NotExecuted {
			t.Errorf("event %+v", q)
		}
	}
	if w.got[0].Duration <= 0 {
		t.Errorf("duration %v not measured from sending", w.got[0].Duration)
	}
}

func TestTrackerHugeQueryIsCut(t *testing.T) {
	w := newWireScript(t)
	huge := "select '" + strings.Repeat("x", maxTrackedMessage) + "'"
	msg := encode(t, &pgproto3.Query{String: huge})
	for i := 0; i < len(msg); i += 64 << 10 {
		w.feed(w.cs, msg[i:min(i+64<<10, len(msg))])
	}
	w.server(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	if len(w.got) != 1 {
		t.Fatalf("%d events, want 1", len(w.got))
	}
	// The recorder cuts the text to max_text_bytes and marks the cut.
	if q := w.got[0]; !q.TextTruncated || !strings.HasPrefix(q.Text, "select 'xxx") || strings.ContainsRune(q.Text, 0) || len(q.Text) > maxTrackedMessage {
		t.Fatalf("event text of %d bytes, truncated %v: want the captured prefix, flagged as cut", len(q.Text), q.TextTruncated)
	}
}
