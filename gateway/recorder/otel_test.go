package recorder

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

type memSink struct {
	mu   sync.Mutex
	recs [][]byte
	err  error
}

func (m *memSink) Append(p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.recs = append(m.recs, append([]byte(nil), p...))
	return nil
}

func (m *memSink) decoded(t *testing.T) []*logspb.LogRecord {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*logspb.LogRecord, len(m.recs))
	for i, b := range m.recs {
		out[i] = &logspb.LogRecord{}
		if err := proto.Unmarshal(b, out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func attrs(r *logspb.LogRecord) map[string]*commonpb.AnyValue {
	m := map[string]*commonpb.AnyValue{}
	for _, kv := range r.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func newTestRecorder(t *testing.T, sink Sink, policy Policy) *OTel {
	t.Helper()
	fixed := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	r, err := NewOTel(Options{Sink: sink, GatewayID: "gw-test", PolicyFor: func(string) Policy { return policy },
		MaxTextBytes: testMaxText, Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestQueryRecordCarriesSessionAndResponse(t *testing.T) {
	sink := &memSink{}
	r := newTestRecorder(t, sink, Policy{})
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	s, err := r.SessionStart(context.Background(), SessionInfo{ID: "s1", User: "alice", Account: "demo-postgres", ResourceType: schema.ResourcePostgres, ClientAddr: "127.0.0.1", ClientPort: 5555, Database: "demo", Start: start})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		q     Query
		check map[string]string // attribute -> expected string form
	}{
		{"select", Query{Text: "select 1", CommandTag: "SELECT 1", ReturnedRows: 1, Duration: 1500 * time.Microsecond, TxStatus: 'I'},
			map[string]string{schema.AttrDBQueryText: "select 1", schema.AttrDBCommandTag: "SELECT 1", schema.AttrDBOperation: "SELECT", schema.AttrDBTxStatus: "I", schema.AttrResponseText: "SELECT 1"}},
		{"error", Query{Text: "select * from nope", ErrorCode: "42P01", ErrorMessage: `relation "nope" does not exist`},
			map[string]string{schema.AttrDBStatusCode: "42P01", schema.AttrErrorMessage: `relation "nope" does not exist`, schema.AttrResponseText: `ERROR 42P01: relation "nope" does not exist`}},
		{"redacted", Query{Text: "ALTER ROLE x PASSWORD 'canary-secret'", CommandTag: "ALTER ROLE"},
			map[string]string{schema.AttrDBQueryText: "ALTER ROLE x PASSWORD [REDACTED]", schema.AttrDBOperation: "ALTER"}},
		{"skipped", Query{Text: "insert into t values (1)", NotExecuted: true},
			map[string]string{schema.AttrResponseText: "NOT EXECUTED (an earlier statement in the pipeline failed)"}},
	}
	for _, tt := range tests {
		if err := s.Query(tt.q); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
	}
	if err := s.End(End{Reason: schema.EndClientQuit}); err != nil {
		t.Fatal(err)
	}
	_ = s.End(End{Reason: schema.EndClientQuit}) // idempotent
	recs := sink.decoded(t)
	if len(recs) != len(tests)+2 {
		t.Fatalf("got %d records, want %d", len(recs), len(tests)+2)
	}
	for i, rec := range recs {
		a := attrs(rec)
		if got := a[schema.AttrSeq].GetIntValue(); got != int64(i) {
			t.Errorf("record %d: seq %d", i, got)
		}
		for _, k := range []string{schema.AttrSessionID, schema.AttrUserName, schema.AttrAccount, schema.AttrResourceType, schema.AttrClientAddr, schema.AttrGatewayID} {
			if a[k].GetStringValue() == "" {
				t.Errorf("record %d (%s) lacks %s", i, rec.EventName, k)
			}
		}
	}
	if recs[0].EventName != schema.EventSessionStart || recs[len(recs)-1].EventName != schema.EventSessionEnd {
		t.Fatalf("first/last events: %s/%s", recs[0].EventName, recs[len(recs)-1].EventName)
	}
	for i, tt := range tests {
		rec := recs[i+1]
		a := attrs(rec)
		if rec.EventName != schema.EventDBQuery {
			t.Errorf("%s: event %s", tt.name, rec.EventName)
		}
		for k, want := range tt.check {
			if got := a[k].GetStringValue(); got != want {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, got, want)
			}
		}
	}
	for _, b := range sink.recs {
		if strings.Contains(string(b), "canary-secret") {
			t.Fatal("secret reached the sink")
		}
	}
	if end := attrs(recs[len(recs)-1]); end[schema.AttrQueryCount].GetIntValue() != 4 || end[schema.AttrErrorCount].GetIntValue() != 1 {
		t.Fatalf("end totals: %v", end)
	}
	if r.ActiveSessions() != 0 {
		t.Fatal("session still active after End")
	}
}

// TestCopyBytesOnlyOnCopy checks pam.db.copy.bytes is present, with its
// value, on every COPY statement (zero included: an empty table was copied)
// and absent from any other statement.
func TestCopyBytesOnlyOnCopy(t *testing.T) {
	tests := []struct {
		name     string
		q        Query
		want     int64
		wantAttr bool
	}{
		{"copy from stdin", Query{Text: "COPY t FROM STDIN", CommandTag: "COPY 3", CopyBytes: 18}, 18, true},
		{"copy to stdout", Query{Text: "copy (select 1) to stdout", CommandTag: "COPY 1", CopyBytes: 2}, 2, true},
		{"empty copy", Query{Text: "COPY t TO STDOUT", CommandTag: "COPY 0"}, 0, true},
		{"failed copy", Query{Text: "COPY t FROM STDIN", ErrorCode: "22P02", ErrorMessage: "invalid input syntax", CopyBytes: 7}, 7, true},
		{"select", Query{Text: "select 1", CommandTag: "SELECT 1", ReturnedRows: 1}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			r := newTestRecorder(t, sink, Policy{})
			s, err := r.SessionStart(context.Background(), SessionInfo{ID: "s", User: "u", Account: "a", ResourceType: schema.ResourcePostgres})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Query(tt.q); err != nil {
				t.Fatal(err)
			}
			recs := sink.decoded(t)
			v, ok := attrs(recs[len(recs)-1])[schema.AttrDBCopyBytes]
			if ok != tt.wantAttr {
				t.Fatalf("%s present = %v, want %v", schema.AttrDBCopyBytes, ok, tt.wantAttr)
			}
			if ok {
				if _, isInt := v.Value.(*commonpb.AnyValue_IntValue); !isInt || v.GetIntValue() != tt.want {
					t.Fatalf("%s = %v, want int %d", schema.AttrDBCopyBytes, v, tt.want)
				}
			}
		})
	}
}

func TestFailurePolicy(t *testing.T) {
	diskFull := errors.New("spool full")
	tests := []struct {
		name    string
		policy  Policy
		wantErr bool
	}{
		{"fail-open counts and continues", Policy{}, false},
		{"fail-closed ends the session", Policy{FailClosed: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			r := newTestRecorder(t, sink, tt.policy)
			s, err := r.SessionStart(context.Background(), SessionInfo{ID: "s", User: "u", Account: "a", ResourceType: schema.ResourceSSH})
			if err != nil {
				t.Fatal(err)
			}
			sink.mu.Lock()
			sink.err = diskFull
			sink.mu.Unlock()
			err = s.Command(Command{Text: "ls"})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, diskFull) {
				t.Fatalf("error does not wrap cause: %v", err)
			}
			if _, failures := r.Stats(); failures != 1 {
				t.Fatalf("failures = %d", failures)
			}
		})
	}
	// A session whose start cannot be recorded is refused under any policy.
	r := newTestRecorder(t, &memSink{err: diskFull}, Policy{})
	if _, err := r.SessionStart(context.Background(), SessionInfo{ID: "x"}); err == nil {
		t.Fatal("SessionStart succeeded with a failing sink")
	}
}

func TestHeartbeatAndAuthFailure(t *testing.T) {
	sink := &memSink{}
	r := newTestRecorder(t, sink, Policy{})
	traffic := func() (int64, int64) { return 512, 4096 }
	if _, err := r.SessionStart(context.Background(), SessionInfo{ID: "live", User: "u", Account: "a", ResourceType: schema.ResourceSSH, Traffic: traffic}); err != nil {
		t.Fatal(err)
	}
	r.Heartbeat()
	if err := r.AuthFailure(context.Background(), AuthFailure{User: "mallory", Account: "prod", Reason: schema.AuthBadPassword, Message: "password authentication failed"}); err != nil {
		t.Fatal(err)
	}
	recs := sink.decoded(t)
	if len(recs) != 3 || recs[1].EventName != schema.EventHeartbeat || recs[2].EventName != schema.EventAuthFailure {
		t.Fatalf("events: %v", recs)
	}
	if start, beat := attrs(recs[0])[schema.AttrSeq].GetIntValue(), attrs(recs[1])[schema.AttrSeq].GetIntValue(); beat != start {
		t.Errorf("heartbeat pam.seq %d, want %d: the latest event's, so event seqs stay gapless", beat, start)
	}
	if a := attrs(recs[1]); a[schema.AttrBytesIn].GetIntValue() != 512 || a[schema.AttrBytesOut].GetIntValue() != 4096 {
		t.Errorf("heartbeat traffic: %v, want the running totals 512 in, 4096 out", a)
	}
	if a := attrs(recs[2]); a[schema.AttrAuthFailure].GetStringValue() != schema.AuthBadPassword || a[schema.AttrSessionID].GetStringValue() == "" {
		t.Fatalf("auth failure attrs: %v", a)
	}
}

// testMaxText is recording.max_text_bytes in these tests.
const testMaxText = 32

// failOpen is the recording policy of every account in these tests.
func failOpen(string) Policy { return Policy{} }

// The recorder is the one place texts are cut: to MaxTextBytes, with the
// marker inside the bound and the cut flagged, and a text the engine
// captured only in part is marked the same way.
func TestTextTruncation(t *testing.T) {
	long := strings.Repeat("é", testMaxText) // two bytes a rune: the cut must not split one
	tests := []struct {
		name     string
		record   func(Session) error
		attr     string // the text's attribute
		wantText string
		wantFlag bool
	}{
		{"short query kept", func(s Session) error { return s.Query(Query{Text: "select 1"}) },
			schema.AttrDBQueryText, "select 1", false},
		{"long query cut", func(s Session) error { return s.Query(Query{Text: "select '" + long + "'"}) },
			schema.AttrDBQueryText, "select '" + strings.Repeat("é", 10) + schema.TruncationMarker, true},
		{"query captured in part", func(s Session) error { return s.Query(Query{Text: "select 'ab", TextTruncated: true}) },
			schema.AttrDBQueryText, "select 'ab" + schema.TruncationMarker, true},
		{"command captured in part", func(s Session) error { return s.Command(Command{Text: "cat <<EOF", TextTruncated: true}) },
			schema.AttrSSHCommand, "cat <<EOF" + schema.TruncationMarker, true},
		{"long file path cut", func(s Session) error { return s.File(FileOp{Operation: "write", Path: "/" + long}) },
			schema.AttrFilePath, "/" + strings.Repeat("é", 14) + schema.TruncationMarker, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			s, err := newTestRecorder(t, sink, Policy{}).SessionStart(context.Background(), SessionInfo{ID: "s1", Account: "a"})
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.record(s); err != nil {
				t.Fatal(err)
			}
			a := attrs(sink.decoded(t)[1])
			got := a[tt.attr].GetStringValue()
			if got != tt.wantText || len(got) > testMaxText {
				t.Errorf("%s = %q (%d bytes), want %q within %d bytes", tt.attr, got, len(got), tt.wantText, testMaxText)
			}
			if flag := a[schema.AttrTextTrunc].GetBoolValue(); flag != tt.wantFlag {
				t.Errorf("%s = %v, want %v", schema.AttrTextTrunc, flag, tt.wantFlag)
			}
		})
	}
}

func TestOperationName(t *testing.T) {
	for in, want := range map[string]string{
		"select 1": "SELECT", "  (select 1)": "SELECT", "-- c\nDELETE FROM t": "DELETE", "/* x */ update t set a=1": "UPDATE", "": "", "-- only": "",
	} {
		if got := operationName(in); got != want {
			t.Errorf("operationName(%q) = %q, want %q", in, got, want)
		}
	}
}

// benchQuery is a pgbench -S statement.
var benchQuery = Query{Text: "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;", CommandTag: "SELECT 1", ReturnedRows: 1, TxStatus: 'I', Duration: time.Millisecond}

// BenchmarkQueryRecord is recording one statement, with and without the
// hash chain, in alternating blocks so that both meet the same load from
// the rest of the machine: chain-cpu-ns/op is what the chain costs per
// statement, cpu-ns/op the whole recording with it.
func BenchmarkQueryRecord(b *testing.B) {
	var sessions [2]Session // chained, unchained
	for i := range sessions {
		r, _ := NewOTel(Options{Sink: discard{}, GatewayID: "gw", MaxTextBytes: 64 << 10, PolicyFor: failOpen, DisableChainForBenchmark: i == 1})
		sessions[i], _ = r.SessionStart(context.Background(), SessionInfo{ID: "s", User: "u", Account: "a", ResourceType: "postgres", Database: "demo"})
	}
	const block = 1000
	var cpu [2]time.Duration
	var n [2]int
	side, inBlock := 0, 0
	b.ReportAllocs()
	start := processCPU()
	for b.Loop() {
		_ = sessions[side].Query(benchQuery)
		n[side]++
		if inBlock++; inBlock == block {
			now := processCPU()
			cpu[side] += now - start
			start, side, inBlock = now, 1-side, 0
		}
	}
	cpu[side] += processCPU() - start
	if n[1] == 0 {
		return // b.Loop's first, one-iteration round
	}
	chained, unchained := float64(cpu[0].Nanoseconds())/float64(n[0]), float64(cpu[1].Nanoseconds())/float64(n[1])
	b.ReportMetric(chained, "cpu-ns/op")
	b.ReportMetric(unchained, "unchained-cpu-ns/op")
	b.ReportMetric(chained-unchained, "chain-cpu-ns/op")
}

type discard struct{}

func (discard) Append([]byte) error { return nil }
