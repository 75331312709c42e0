package uploader

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// spoolOptions are the gateway config's spool defaults but for a short
// fsync interval, so records are durable soon after they are appended.
// Written out: these tests cannot import gateway/config, which imports the
// uploader.
func spoolOptions(ring *keys.Ring) spool.Options {
	return spool.Options{Keys: ring, SegmentBytes: 64 << 20, MaxRecordBytes: 16 << 20,
		Overflow: spool.OverflowRefuse, Fsync: spool.FsyncInterval, FsyncInterval: 10 * time.Millisecond}
}

func openSpool(t testing.TB, dir string, ring *keys.Ring) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(dir, spoolOptions(ring))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close() })
	return sp
}

// fastConfig uploads often and retries quickly, for tests.
func fastConfig(endpoint string) Config {
	return Config{
		Endpoint:       endpoint,
		Insecure:       true,
		Interval:       50 * time.Millisecond,
		InitialBackoff: 10 * time.Millisecond,
		MaxBackoff:     80 * time.Millisecond,
		Timeout:        2 * time.Second,
		GatewayID:      "gw-test",
		HostName:       "host-test",
	}
}

func newUploader(t *testing.T, sp Spool, cfg Config) *Uploader {
	t.Helper()
	u, err := New(sp, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = u.Shutdown(ctx)
	})
	return u
}

// sessionRecord is a recorder-like OTLP record for session sid, sequence seq.
func sessionRecord(sid string, seq int64) *logspb.LogRecord {
	return &logspb.LogRecord{
		TimeUnixNano:         uint64(time.Date(2025, 1, 2, 3, 4, 5, int(seq), time.UTC).UnixNano()),
		ObservedTimeUnixNano: uint64(time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC).UnixNano()),
		SeverityNumber:       logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
		SeverityText:         "INFO",
		EventName:            "pam.db.query",
		Body:                 str(fmt.Sprintf("SELECT %d", seq)),
		Attributes: []*commonpb.KeyValue{
			kv("session.id", str(sid)),
			kv("pam.seq", i64(seq)),
		},
	}
}

func appendRecords(t *testing.T, sp *spool.Spool, sid string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		b, err := proto.Marshal(sessionRecord(sid, int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sp.Append(b); err != nil {
			t.Fatal(err)
		}
	}
}

// seqsBySession extracts pam.seq per session.id, in arrival order.
func seqsBySession(recs []receivedLog) map[string][]int64 {
	out := map[string][]int64{}
	for _, r := range recs {
		var sid string
		var seq int64
		for _, a := range r.record.GetAttributes() {
			switch a.GetKey() {
			case "session.id":
				sid = a.GetValue().GetStringValue()
			case "pam.seq":
				seq = a.GetValue().GetIntValue()
			}
		}
		out[sid] = append(out[sid], seq)
	}
	return out
}

// wantExactlyOnceInOrder checks that session sid arrived as 0..n-1, once each.
func wantExactlyOnceInOrder(t *testing.T, got map[string][]int64, sid string, n int) {
	t.Helper()
	seqs := got[sid]
	if len(seqs) != n {
		t.Fatalf("session %s: %d records arrived, want %d: %v", sid, len(seqs), n, seqs)
	}
	for i, s := range seqs {
		if s != int64(i) {
			t.Fatalf("session %s: record %d has pam.seq %d (arrival order %v)", sid, i, s, seqs)
		}
	}
}

func TestRecordsArriveIntact(t *testing.T) {
	srv := startOTLPServer(t, "127.0.0.1:0", nil)
	sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
	cfg := fastConfig(srv.addr)
	cfg.Interval = time.Hour // only Flush uploads
	cfg.Headers = map[string]string{"x-pamtrail-token": "t0ken"}
	u := newUploader(t, sp, cfg)

	traceID := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	spanID := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	rich := &logspb.LogRecord{
		TimeUnixNano:         1_700_000_000_123_456_789,
		ObservedTimeUnixNano: 1_700_000_001_000_000_000,
		SeverityNumber:       logspb.SeverityNumber_SEVERITY_NUMBER_WARN,
		SeverityText:         "WARN",
		EventName:            "pam.ssh.command",
		TraceId:              traceID,
		SpanId:               spanID,
		Flags:                1,
		Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
			kv("input", str("rm -rf /tmp/x")),
			kv("output", str("")),
		}}}},
		Attributes: []*commonpb.KeyValue{
			kv("session.id", str("s-rich")),
			kv("pam.seq", i64(0)),
			kv("pam.duration_ms", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 12.5}}),
			kv("pam.response.truncated", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
			kv("pam.raw", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0, 1, 2, 255}}}),
			kv("pam.db.params", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
				str("a"), i64(7),
				{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{kv("nested", str("deep"))}}}},
			}}}}),
		},
	}
	b, err := proto.Marshal(rich)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Append(b); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, sp, "s-plain", 0, 3)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := u.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	got := srv.snapshot()
	if len(got) != 4 {
		t.Fatalf("server received %d records, want 4", len(got))
	}
	first := got[0]
	if !proto.Equal(first.record, rich) {
		t.Fatalf("record changed in transit:\n got  %v\n want %v", first.record, rich)
	}
	wantRes := map[string]string{"service.name": "pamtrail-gateway", "pam.gateway.id": "gw-test", "host.name": "host-test"}
	for k, v := range wantRes {
		if first.resource[k] != v {
			t.Errorf("resource %s = %q, want %q (resource %v)", k, first.resource[k], v, first.resource)
		}
	}
	if first.scope != ScopeName {
		t.Errorf("scope = %q, want %q", first.scope, ScopeName)
	}
	wantExactlyOnceInOrder(t, seqsBySession(got), "s-plain", 3)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if tok := srv.headers[0].Get("x-pamtrail-token"); len(tok) != 1 || tok[0] != "t0ken" {
		t.Errorf("header x-pamtrail-token = %v", tok)
	}
	if len(srv.encodings) == 0 || srv.encodings[0] != "gzip" {
		t.Errorf("request encodings %v, want gzip", srv.encodings)
	}
	if st := u.Stats(); st.Uploaded != 4 || st.Pending != 0 || st.LastSuccess.IsZero() {
		t.Errorf("stats after upload: %+v", st)
	}
}

func TestCollectorDownThenBack(t *testing.T) {
	srv := startOTLPServer(t, "127.0.0.1:0", nil)
	addr := srv.addr
	srv.stop() // the collector is unreachable from the start
	sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
	u := newUploader(t, sp, fastConfig(addr))
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, sp, "s1", 0, 20)
	waitFor(t, "upload failures while the collector is down", 10*time.Second, func() bool { return u.Stats().Failures >= 3 })
	appendRecords(t, sp, "s1", 20, 20) // recording goes on
	appendRecords(t, sp, "s2", 0, 15)
	if st := u.Stats(); st.Pending != 55 || st.Uploaded != 0 || st.LastError == "" {
		t.Fatalf("while down: %+v", st)
	}

	srv.listen(t, addr, nil)
	appendRecords(t, sp, "s2", 15, 5)
	waitFor(t, "all records acknowledged after the collector came back", 15*time.Second, func() bool {
		st := u.Stats()
		return st.Pending == 0 && st.Uploaded == 60
	})
	got := seqsBySession(srv.snapshot())
	wantExactlyOnceInOrder(t, got, "s1", 40)
	wantExactlyOnceInOrder(t, got, "s2", 20)
	if st := u.Stats(); st.Pending != 0 || st.ConsecutiveFailures != 0 {
		t.Fatalf("after recovery: %+v", st)
	}
}

func TestRestartResumesWithoutDuplicates(t *testing.T) {
	srv := startOTLPServer(t, "127.0.0.1:0", nil)
	dir := t.TempDir()
	ring := testenv.Keyring(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	sp, err := spool.Open(dir, spoolOptions(ring))
	if err != nil {
		t.Fatal(err)
	}
	u, err := New(sp, fastConfig(srv.addr))
	if err != nil {
		t.Fatal(err)
	}
	appendRecords(t, sp, "s", 0, 10)
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	srv.set(func(s *otlpServer) { s.failNext = 1000 }) // the collector breaks
	appendRecords(t, sp, "s", 10, 5)
	if err := u.Flush(ctx); err == nil {
		t.Fatal("Flush succeeded against a failing collector")
	}
	if err := u.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown's final flush reported success against a failing collector")
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	srv.set(func(s *otlpServer) { s.failNext = 0 })
	sp = openSpool(t, dir, ring)
	u = newUploader(t, sp, fastConfig(srv.addr))
	appendRecords(t, sp, "s", 15, 5)
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wantExactlyOnceInOrder(t, seqsBySession(srv.snapshot()), "s", 20)
}

func TestShutdownFlushesAndIsSafe(t *testing.T) {
	srv := startOTLPServer(t, "127.0.0.1:0", nil)
	sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	idle, err := New(sp, fastConfig(srv.addr))
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown before Start: %v", err)
	}
	if err := idle.Start(ctx); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}

	cfg := fastConfig(srv.addr)
	cfg.Interval = time.Hour
	u := newUploader(t, sp, cfg)
	if err := u.Start(ctx); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, sp, "s", 0, 7)
	if err := u.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := u.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	wantExactlyOnceInOrder(t, seqsBySession(srv.snapshot()), "s", 7)
	if err := u.Flush(ctx); err == nil {
		t.Fatal("Flush after Shutdown succeeded: the closed exporter would drop records")
	}
}

func TestBeforeCycleRunsEachCycleAndItsRecordsGoOut(t *testing.T) {
	srv := startOTLPServer(t, "127.0.0.1:0", nil)
	sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
	var calls atomic.Int64
	cfg := fastConfig(srv.addr)
	cfg.BeforeCycle = func() {
		n := calls.Add(1)
		if n == 2 {
			panic("a broken hook must not stop uploads")
		}
		appendRecords(t, sp, "heartbeat", int(n-1), 1)
	}
	u := newUploader(t, sp, cfg)
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "several cycles", 10*time.Second, func() bool { return calls.Load() >= 4 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	n := calls.Load()
	seqs := seqsBySession(srv.snapshot())["heartbeat"]
	if int64(len(seqs)) != n-1 { // every call but the panicking one appended
		t.Fatalf("%d heartbeats arrived after %d BeforeCycle calls", len(seqs), n)
	}
}

func TestUndecodablePayloadIsSentNotSkipped(t *testing.T) {
	srv := startOTLPServer(t, "127.0.0.1:0", nil)
	sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
	u := newUploader(t, sp, fastConfig(srv.addr))
	appendRecords(t, sp, "s", 0, 1)
	if _, err := sp.Append([]byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, sp, "s", 1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := srv.snapshot()
	if len(got) != 3 || got[1].record.GetEventName() != eventUndecodable || string(got[1].record.GetBody().GetBytesValue()) != "\xff\xff\xff" {
		t.Fatalf("got %v", got)
	}
	if u.Stats().Undecodable != 1 {
		t.Fatalf("Undecodable = %d", u.Stats().Undecodable)
	}
}

func TestConfigValidation(t *testing.T) {
	sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no endpoint", Config{}, "Endpoint"},
		{"endpoint without port", Config{Endpoint: "collector"}, "Endpoint"},
		{"insecure with CA", Config{Endpoint: "c:4317", Insecure: true, CAFile: "ca.pem"}, "Insecure"},
		{"cert without key", Config{Endpoint: "c:4317", CertFile: "c.pem"}, "KeyFile"},
		{"bad compression", Config{Endpoint: "c:4317", Compression: "zstd"}, "Compression"},
		{"negative interval", Config{Endpoint: "c:4317", Interval: -time.Second}, "Interval"},
		{"missing CA file", Config{Endpoint: "c:4317", CAFile: "/nonexistent/ca.pem"}, "CAFile"},
		{"backoff inverted", Config{Endpoint: "c:4317", InitialBackoff: time.Minute, MaxBackoff: time.Second}, "MaxBackoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(sp, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New(%+v) = %v, want an error naming %s", tt.cfg, err, tt.want)
			}
		})
	}
}

// firstSeq is the pam.seq of a request's first record.
func firstSeq(records []*logspb.LogRecord) int64 {
	got := seqsBySession([]receivedLog{{record: records[0]}})
	for _, seqs := range got {
		return seqs[0]
	}
	return -1
}

// TestRequestsInFlightAreAcknowledgedInOrder holds the first request at the
// server while later ones complete: the acknowledged position must not pass
// the held batch. Then one request in the middle fails: everything from it
// on is sent again, and every record ends up acknowledged exactly once.
func TestRequestsInFlightAreAcknowledgedInOrder(t *testing.T) {
	const batch, total = 10, 100
	release := make(chan struct{})
	var failed atomic.Bool
	srv := startOTLPServer(t, "127.0.0.1:0", nil)
	srv.set(func(s *otlpServer) {
		s.before = func(ctx context.Context, records []*logspb.LogRecord) error {
			switch firstSeq(records) {
			case 0:
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			case 50:
				if failed.CompareAndSwap(false, true) {
					return fmt.Errorf("test server: refusing the batch at seq 50 once")
				}
			}
			return nil
		}
	})
	sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
	cfg := fastConfig(srv.addr)
	cfg.MaxBatchRecords, cfg.MaxInFlight = batch, 4
	u := newUploader(t, sp, cfg)
	appendRecords(t, sp, "s", 0, total)
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Batches 10-19, 20-29 and 30-39 are delivered while 0-9 is held.
	waitFor(t, "three later batches delivered", 10*time.Second, func() bool { return len(srv.snapshot()) >= 3*batch })
	if st := u.Stats(); st.Uploaded != 0 || st.Pending != total {
		t.Fatalf("with the first batch held: %+v; nothing may be acknowledged past it", st)
	}
	close(release)
	waitFor(t, "every record acknowledged", 15*time.Second, func() bool {
		st := u.Stats()
		return st.Pending == 0 && st.Uploaded == total
	})
	if !failed.Load() {
		t.Fatal("the batch at seq 50 was never refused: the failure path was not exercised")
	}
	if st := u.Stats(); st.Failures == 0 {
		t.Fatalf("Failures = 0 after a refused batch: %+v", st)
	}
	// Every record arrived at least once (re-sent batches twice), and the
	// spool acknowledged each exactly once: Uploaded counts acks.
	seen := map[int64]bool{}
	for _, seq := range seqsBySession(srv.snapshot())["s"] {
		seen[seq] = true
	}
	if len(seen) != total {
		t.Fatalf("%d distinct records arrived, want %d", len(seen), total)
	}
}

// TestFullBatchGoesOutBeforeTheInterval: a full request is sent as soon as
// it is written, however long the interval; the cycle hook keeps its
// once-per-interval cadence.
func TestFullBatchGoesOutBeforeTheInterval(t *testing.T) {
	srv := startOTLPServer(t, "127.0.0.1:0", nil)
	sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
	cfg := fastConfig(srv.addr)
	cfg.Interval, cfg.MaxBatchRecords = time.Hour, 100
	var hooks atomic.Int64
	cfg.BeforeCycle = func() { hooks.Add(1) }
	u := newUploader(t, sp, cfg)
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 3; round++ {
		appendRecords(t, sp, "busy", (round-1)*100, 99)
		appendRecords(t, sp, "busy", (round-1)*100+99, 1)
		waitFor(t, fmt.Sprintf("full batch %d sent within the hour-long interval", round), 10*time.Second,
			func() bool { return u.Stats().Uploaded == uint64(round*100) })
		if n := srv.requestCount(); n != round {
			t.Fatalf("%d requests for %d full batches: the upload started before a batch was full", n, round)
		}
	}
	if n := hooks.Load(); n != 1 {
		t.Fatalf("BeforeCycle ran %d times within one interval, want once", n)
	}
	wantExactlyOnceInOrder(t, seqsBySession(srv.snapshot()), "busy", 300)
}
