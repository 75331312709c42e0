package recorder

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"

	"github.com/pamtrail/pamtrail/gateway/chain"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// testSigner is an Ed25519 key for tests.
type testSigner struct{ priv ed25519.PrivateKey }

func newTestSigner() testSigner {
	_, priv, _ := ed25519.GenerateKey(nil)
	return testSigner{priv}
}
func (testSigner) KeyID() string            { return "test-key" }
func (s testSigner) Sign(msg []byte) []byte { return ed25519.Sign(s.priv, msg) }

// linkFromProto rebuilds a record's link from the decoded generated types:
// a second path to the same bytes, independent of the recorder's encoder.
func linkFromProto(t *testing.T, r *logspb.LogRecord, prev chain.Hash) chain.Hash {
	t.Helper()
	c, constants := &chain.Canon{}, &chain.Canon{}
	c.Header(r.EventName, r.GetBody().GetStringValue(), r.SeverityText, int64(r.TimeUnixNano/1e6), int64(r.ObservedTimeUnixNano/1e6))
	for _, kv := range r.Attributes {
		if schema.ChainExcluded(kv.Key) {
			continue
		}
		into := c
		if schema.SessionConstant(kv.Key) {
			into = constants
		}
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			into.String(kv.Key, v.StringValue)
		case *commonpb.AnyValue_IntValue:
			into.Int(kv.Key, v.IntValue)
		case *commonpb.AnyValue_DoubleValue:
			into.Double(kv.Key, v.DoubleValue)
		case *commonpb.AnyValue_BoolValue:
			into.Bool(kv.Key, v.BoolValue)
		case *commonpb.AnyValue_ArrayValue:
			var ss []string
			for _, e := range v.ArrayValue.Values {
				ss = append(ss, e.GetStringValue())
			}
			into.Strings(kv.Key, ss)
		default:
			t.Fatalf("attribute %s: unexpected type %T", kv.Key, v)
		}
	}
	return c.Link(prev, constants.SessionDigest())
}

// checkChain verifies every link and checkpoint of one session's records,
// ordered by seq, and returns the checkpoints.
func checkChain(t *testing.T, recs []*logspb.LogRecord, pub ed25519.PublicKey) []*logspb.LogRecord {
	t.Helper()
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	sessionID := attrs(recs[0])[schema.AttrSessionID].GetStringValue()
	prev := chain.Genesis(chain.Current, sessionID)
	links := map[int64]chain.Hash{}
	var checkpoints []*logspb.LogRecord
	var events []*logspb.LogRecord
	for _, r := range recs {
		a := attrs(r)
		if r.EventName != schema.EventHeartbeat {
			events = append(events, r)
			continue
		}
		// A heartbeat repeats the latest event's seq and is not chained.
		if _, chained := a[schema.AttrChain]; chained || a[schema.AttrSeq].GetIntValue() != max(int64(len(events))-1, 0) {
			t.Fatalf("heartbeat after %d events: %v", len(events), a)
		}
	}
	for i, r := range events {
		a := attrs(r)
		if seq := a[schema.AttrSeq].GetIntValue(); seq != int64(i) {
			t.Fatalf("record %d has seq %d", i, seq)
		}
		want := linkFromProto(t, r, prev)
		if got := hex.EncodeToString(a[schema.AttrChain].GetBytesValue()); got != want.String() {
			t.Fatalf("seq %d (%s): pam.chain %s, recomputed %s", i, r.EventName, got, want)
		}
		links[int64(i)] = want
		prev = want
		if r.EventName != schema.EventCheckpoint {
			continue
		}
		checkpoints = append(checkpoints, r)
		head, err := chain.ParseHash(a[schema.AttrCheckpointHead].GetStringValue())
		if err != nil {
			t.Fatal(err)
		}
		cp := chain.Checkpoint{
			SessionID: sessionID, GatewayID: a[schema.AttrGatewayID].GetStringValue(), KeyID: a[schema.AttrCheckpointKeyID].GetStringValue(),
			From: a[schema.AttrCheckpointFrom].GetIntValue(), To: a[schema.AttrCheckpointTo].GetIntValue(), Head: head,
			Final: a[schema.AttrCheckpointFinal].GetBoolValue(),
		}
		if cp.To != int64(i-1) || links[cp.To] != head {
			t.Fatalf("checkpoint at seq %d covers up to %d with head %s", i, cp.To, head)
		}
		sig, _ := base64.StdEncoding.DecodeString(a[schema.AttrCheckpointSignature].GetStringValue())
		if !ed25519.Verify(pub, cp.Message(), sig) {
			t.Fatalf("checkpoint at seq %d: bad signature", i)
		}
	}
	return checkpoints
}

func newSigningRecorder(t *testing.T, sink Sink) (*OTel, ed25519.PublicKey) {
	t.Helper()
	signer := newTestSigner()
	r, err := NewOTel(Options{Sink: sink, GatewayID: "gw-test", Signer: signer, MaxTextBytes: testMaxText, PolicyFor: failOpen})
	if err != nil {
		t.Fatal(err)
	}
	return r, signer.priv.Public().(ed25519.PublicKey)
}

// TestChainAndCheckpoints: every record links to the one before, a cycle
// checkpoints only sessions that recorded something, and the session's end
// is followed by a final checkpoint covering everything.
func TestChainAndCheckpoints(t *testing.T) {
	sink := &memSink{}
	r, pub := newSigningRecorder(t, sink)
	busy, _ := r.SessionStart(context.Background(), SessionInfo{ID: "busy", User: "alice", Account: "pg", ResourceType: schema.ResourcePostgres, Database: "demo"})
	idle, _ := r.SessionStart(context.Background(), SessionInfo{ID: "idle", User: "bob", Account: "ssh", ResourceType: schema.ResourceSSH})
	r.Cycle() // both have new records (their starts): both get a checkpoint
	_ = busy.Query(Query{Text: "select $1", Params: []string{"x"}, Columns: []string{"a", "b"}, CommandTag: "SELECT 1", Duration: 1234567, TxStatus: 'I'})
	exit := 1
	_ = busy.Query(Query{Text: "select * from nope", ErrorCode: "42P01", ErrorMessage: "no"})
	r.Cycle() // idle recorded nothing since: a heartbeat, no checkpoint
	_ = idle.Command(Command{Channel: "exec", Text: "false", ExitStatus: &exit})
	_ = idle.Output(Output{Stream: "pty", Data: "x", Elapsed: time.Second})
	_ = busy.End(End{Reason: schema.EndClientQuit})
	_ = idle.End(End{Reason: schema.EndClientQuit})

	bySession := map[string][]*logspb.LogRecord{}
	for _, rec := range sink.decoded(t) {
		id := attrs(rec)[schema.AttrSessionID].GetStringValue()
		bySession[id] = append(bySession[id], rec)
	}
	tests := []struct {
		session string
		want    []string // checkpoint ranges, "from-to final"
	}{
		{"busy", []string{"0-0 false", "1-3 false", "4-5 true"}},
		{"idle", []string{"0-0 false", "1-4 true"}},
	}
	for _, tt := range tests {
		recs := bySession[tt.session]
		var got []string
		for _, cp := range checkChain(t, recs, pub) {
			a := attrs(cp)
			got = append(got, fmt.Sprintf("%d-%d %v", a[schema.AttrCheckpointFrom].GetIntValue(), a[schema.AttrCheckpointTo].GetIntValue(), a[schema.AttrCheckpointFinal].GetBoolValue()))
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: checkpoints %v, want %v", tt.session, got, tt.want)
		}
		if last := recs[len(recs)-1]; last.EventName != schema.EventCheckpoint {
			t.Errorf("%s: last record %s, want the final checkpoint", tt.session, last.EventName)
		}
	}
}

// TestChainConcurrentChannels: records from several goroutines of one
// session (an SSH session's channels) still form one unbroken chain in seq
// order, and a record that races the end is sealed by another final
// checkpoint.
func TestChainConcurrentChannels(t *testing.T) {
	sink := &memSink{}
	r, pub := newSigningRecorder(t, sink)
	s, _ := r.SessionStart(context.Background(), SessionInfo{ID: "ssh", User: "alice", Account: "ssh", ResourceType: schema.ResourceSSH})
	var wg sync.WaitGroup
	for ch := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				_ = s.Output(Output{Stream: "pty", Data: fmt.Sprintf("ch%d-%d", ch, i)})
				if i%10 == 0 {
					r.Checkpoint()
				}
			}
		}()
	}
	wg.Wait()
	_ = s.End(End{Reason: schema.EndClientQuit})
	_ = s.Output(Output{Stream: "pty", Data: "late"}) // a channel racing the end
	recs := sink.decoded(t)
	// Spool order is seq order: checkChain requires it.
	cps := checkChain(t, recs, pub)
	last := attrs(cps[len(cps)-1])
	if !last[schema.AttrCheckpointFinal].GetBoolValue() || last[schema.AttrCheckpointTo].GetIntValue() != int64(len(recs)-2) {
		t.Fatalf("the late record is not covered by a final checkpoint: %v", last)
	}
}

// TestChainFailedAppendLeavesNoGap: a record that cannot be spooled takes
// no sequence number, so a verifier never sees a hole where nothing was
// deleted.
func TestChainFailedAppendLeavesNoGap(t *testing.T) {
	sink := &memSink{}
	r, pub := newSigningRecorder(t, sink)
	s, _ := r.SessionStart(context.Background(), SessionInfo{ID: "s", User: "u", Account: "a", ResourceType: schema.ResourcePostgres})
	_ = s.Query(Query{Text: "select 1", CommandTag: "SELECT 1"})
	sink.mu.Lock()
	sink.err = errors.New("disk full")
	sink.mu.Unlock()
	_ = s.Query(Query{Text: "select 2", CommandTag: "SELECT 1"}) // fail-open: lost, counted
	sink.mu.Lock()
	sink.err = nil
	sink.mu.Unlock()
	_ = s.Query(Query{Text: "select 3", CommandTag: "SELECT 1"})
	_ = s.End(End{Reason: schema.EndClientQuit})
	recs := sink.decoded(t)
	checkChain(t, recs, pub)
	end := attrs(recs[len(recs)-2])
	if end[schema.AttrRecordingErrors].GetIntValue() != 1 {
		t.Errorf("recording errors %d, want 1", end[schema.AttrRecordingErrors].GetIntValue())
	}
}

// TestChainWithoutSigner: without a signing key records are still chained
// and no checkpoint is written.
func TestChainWithoutSigner(t *testing.T) {
	sink := &memSink{}
	r := newTestRecorder(t, sink, Policy{})
	s, _ := r.SessionStart(context.Background(), SessionInfo{ID: "s", User: "u", Account: "a", ResourceType: schema.ResourcePostgres})
	_ = s.Query(Query{Text: "select 1"})
	r.Cycle()
	_ = s.End(End{Reason: schema.EndClientQuit})
	if cps := checkChain(t, sink.decoded(t), nil); len(cps) != 0 {
		t.Fatalf("%d checkpoints without a signer", len(cps))
	}
}

// BenchmarkChainLink is the link of one statement's record: sorting its
// canonical entries (built as the record was encoded) and hashing them.
// BenchmarkQueryRecord's chain-cpu-ns/op is the whole cost of the chain.
func BenchmarkChainLink(b *testing.B) {
	r, _ := NewOTel(Options{Sink: discard{}, GatewayID: "gw", MaxTextBytes: 64 << 10, PolicyFor: failOpen})
	s, _ := r.SessionStart(context.Background(), SessionInfo{ID: "s", User: "u", Account: "a", ResourceType: "postgres", Database: "demo"})
	rec := s.(*otelSession).queryRecord(benchQuery)
	rec.int(schema.AttrSeq, 1)
	constants := s.(*otelSession).constants
	var prev chain.Hash
	b.ReportAllocs()
	reportCPU(b, func() {
		for b.Loop() {
			prev = rec.canon.Link(prev, constants)
		}
	})
}

// BenchmarkCheckpoint is the cost of one signed checkpoint (one per live
// session per upload cycle, and one at its end): signing and recording it.
func BenchmarkCheckpoint(b *testing.B) {
	r, _ := NewOTel(Options{Sink: discard{}, GatewayID: "gw", Signer: newTestSigner(), MaxTextBytes: 64 << 10, PolicyFor: failOpen})
	s, _ := r.SessionStart(context.Background(), SessionInfo{ID: "s", User: "u", Account: "a", ResourceType: "postgres", Database: "demo"})
	b.ReportAllocs()
	reportCPU(b, func() {
		for b.Loop() {
			_ = s.Query(benchQuery) // makes the session dirty, as a busy one is
			r.Checkpoint()
		}
	})
}
