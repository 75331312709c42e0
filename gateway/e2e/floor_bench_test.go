package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// BenchmarkUpstreamFloor measures what the collector's upstream components
// alone can deliver on this machine, with none of pamtrail's code on the
// path: the OTLP receiver, the persistent sending queue on file_storage and
// the Elasticsearch exporter, configured as in the shipped collector, fed
// export requests that are already encoded, side by side with Elasticsearch's
// direct bulk rate for the same documents (issue #10's limit).
//
// The requests are the gateway's own: pgbench runs through the gateway,
// which uploads to a capturing server here; each record then gets the
// document id the session processor would set ("<session.id>:<pam.seq>",
// indexed with create, as in the pipeline), and the requests are replayed
// with four in flight, as the gateway sends them. Without the session
// processor the documents lack its few additions (risk, flags), which can
// only make them cheaper to index. PAMTRAIL_BENCH_FLOOR_RECORDS (default
// 300,000) sizes the run.
func BenchmarkUpstreamFloor(b *testing.B) {
	statements := benchCount(b, "PAMTRAIL_BENCH_FLOOR_RECORDS", 300_000)
	for range b.N {
		s := newStack(b, stackOptions{uploadInterval: "1s"})
		capture := startCaptureServer(b, s.otlpAddr)
		s.startGateway()
		s.runPgbench(b, pgbenchLoad{clients: 4, transactions: statements / 4})
		s.gateway.stop() // uploads everything first
		requests, records := capture.replayable(b)

		type phase struct {
			rate    float64
			cpu, es string
		}
		var phases []phase
		for _, sealed := range []bool{false, true} {
			r, cpuText, esText := s.drainUpstream(b, requests, records, sealed)
			phases = append(phases, phase{r, cpuText, esText})
		}

		docs := s.sampleDocuments(b, 10_000)
		directBulkRate(b, s.esURL, docs, min(records, esWarmUpDocs), false) // warm-up, unmeasured
		direct := directBulkRate(b, s.esURL, docs, records, true)

		fmt.Printf("\nupstream floor (one run, this machine): %d records in %d requests, already encoded, replayed 4 at a time through the otlp receiver and the elasticsearch exporter's persistent queue, no session processor\n", records, len(requests))
		for i, name := range []string{"queue in file_storage", "queue in encrypted_storage with large_values"} {
			fmt.Printf("  %s: %.0f records/s searchable, ratio %.2f (CPU per record: %s)\n    Elasticsearch's counters: %s\n", name, phases[i].rate, phases[i].rate/direct, phases[i].cpu, phases[i].es)
		}
		fmt.Printf("  Elasticsearch direct bulk, same documents made distinct, searched every 250 ms: %.0f docs/s\n\n", direct)
		b.ReportMetric(phases[0].rate, "file-storage-rec/s")
		b.ReportMetric(phases[0].rate/direct, "file-storage/direct")
		b.ReportMetric(phases[1].rate, "large-values-rec/s")
		b.ReportMetric(phases[1].rate/direct, "large-values/direct")
		b.ReportMetric(direct, "direct-distinct-searched-docs/s")
	}
}

// drainUpstream replays requests to a collector without the session
// processor, its queue in file_storage or, sealed, in encrypted_storage
// with large_values (pamtrail's storage, which keeps large requests out of
// bbolt's B-tree), into a fresh backing index, and returns the records
// per second until all are searchable, with the CPU and Elasticsearch's
// counters.
func (s *stack) drainUpstream(b *testing.B, requests [][]byte, records int, sealed bool) (float64, string, string) {
	b.Helper()
	queueDir := filepath.Join(b.TempDir(), "queue")
	if err := os.MkdirAll(queueDir, 0o700); err != nil {
		b.Fatal(err)
	}
	run(b, pamtrailBin, "keygen", "--out", filepath.Join(queueDir, "queue.keys"))
	colConfig := filepath.Join(b.TempDir(), "collector-upstream.yaml")
	writeFile(b, colConfig, collectorConfigWith(s.otlpAddr, s.healthAddr, s.esURL, queueDir, false, sealed))
	s.collector = newProc(b, "collector-upstream", collectorGCEnv, collectorBin, "--config", colConfig)
	s.startCollector()
	defer s.collector.stop()
	s.countIndex = rolloverEvents(b, s.esURL)
	cpu := newCPUMeter([]string{"collector", "Elasticsearch"}, []int{s.collector.pid(), elasticsearchPID(b)})
	work := newESWorkMeter(b, s.esURL)
	start := time.Now()
	replay(b, s.otlpAddr, requests, 4)
	s.waitDocuments(b, records, 10*time.Minute)
	rate := float64(records) / time.Since(start).Seconds()
	_, cpuText := cpu.perItem(records)
	return rate, cpuText, work.describe(b)
}

// rawMessage is a gRPC message passed as its encoded bytes.
type rawMessage struct{ b []byte }

// rawCodec sends and receives rawMessages unchanged.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*rawMessage).b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*rawMessage).b = data.Materialize()
	return nil
}

const exportMethod = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"

// captureServer accepts OTLP log export requests and keeps their bytes.
type captureServer struct {
	mu       sync.Mutex
	requests [][]byte
	srv      *grpc.Server
}

func startCaptureServer(t testing.TB, addr string) *captureServer {
	t.Helper()
	c := &captureServer{srv: grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.MaxRecvMsgSize(64<<20))}
	c.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.logs.v1.LogsService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Export", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var m rawMessage
			if err := dec(&m); err != nil {
				return nil, err
			}
			c.mu.Lock()
			c.requests = append(c.requests, m.b)
			c.mu.Unlock()
			return &rawMessage{}, nil // an empty ExportLogsServiceResponse: all accepted
		}}},
	}, struct{}{})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.srv.Serve(l) }()
	t.Cleanup(c.srv.Stop)
	return c
}

// replayable stops the server and returns its requests with the session
// processor's document id added to each record, and how many distinct ids
// they hold: the gateway delivers at least once, and a record it sent twice
// is one document.
func (c *captureServer) replayable(t testing.TB) ([][]byte, int) {
	t.Helper()
	c.srv.Stop()
	var out [][]byte
	ids := map[string]bool{}
	for _, raw := range c.requests {
		var req collogspb.ExportLogsServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			t.Fatal(err)
		}
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					var session string
					var seq int64
					for _, kv := range lr.Attributes {
						switch kv.Key {
						case schema.AttrSessionID:
							session = kv.Value.GetStringValue()
						case schema.AttrSeq:
							seq = kv.Value.GetIntValue()
						}
					}
					id := fmt.Sprintf("%s:%d", session, seq)
					lr.Attributes = append(lr.Attributes, &commonpb.KeyValue{Key: schema.AttrDocumentID,
						Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: id}}})
					ids[id] = true
				}
			}
		}
		b, err := proto.Marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if len(ids) == 0 {
		t.Fatal("the gateway uploaded nothing to the capturing server")
	}
	return out, len(ids)
}

// replay sends requests to addr, inFlight at a time, each until accepted.
func replay(t testing.TB, addr string, requests [][]byte, inFlight int) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(requests)); i = next.Add(1) - 1 {
				// The receiver blocks while the queue is full (block_on_overflow)
				// rather than refusing: any error is a failure.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				err := conn.Invoke(ctx, exportMethod, &rawMessage{b: requests[i]}, &rawMessage{})
				cancel()
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// waitDocuments waits until countIndex holds want documents.
func (s *stack) waitDocuments(t testing.TB, want int, timeout time.Duration) {
	t.Helper()
	es := newES(t, s.esURL)
	testenv.Eventually(t, timeout, 250*time.Millisecond, func() (bool, string) {
		res, err := es.Count(es.Count.WithIndex(s.countIndex))
		if err != nil {
			return false, err.Error()
		}
		defer res.Body.Close()
		var out struct {
			Count int `json:"count"`
		}
		if res.IsError() || json.NewDecoder(res.Body).Decode(&out) != nil {
			return false, res.String()
		}
		if out.Count > want {
			t.Fatalf("%d documents in %s, more than the %d records sent", out.Count, s.countIndex, want)
		}
		return out.Count == want, fmt.Sprintf("%d of %d documents", out.Count, want)
	})
}
