package uploader

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // the server must understand gzip requests
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// otlpServer is a real OTLP/gRPC LogsService endpoint: the protocol the
// collector's otlp receiver speaks, served by grpc-go on a loopback port.
type otlpServer struct {
	collogspb.UnimplementedLogsServiceServer

	mu          sync.Mutex
	requests    int
	sizes       []int // records in each request, in arrival order (rejected ones too)
	received    []receivedLog
	failNext    int // reject this many requests (before storing) with Unavailable
	partialNext int // answer this many requests with a partial success (after storing)
	// before, if set, runs first for every request, without the lock, with
	// the request's records; an error rejects the request unstored.
	before      func(ctx context.Context, records []*logspb.LogRecord) error
	headers     []metadata.MD
	encodings   []string
	grpcServer  *grpc.Server
	addr        string
	serveResult chan error
}

// receivedLog is one record with the resource and scope it arrived under.
type receivedLog struct {
	resource map[string]string
	scope    string
	record   *logspb.LogRecord
}

func (s *otlpServer) Export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	s.mu.Lock()
	before := s.before
	s.mu.Unlock()
	if before != nil {
		var records []*logspb.LogRecord
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				records = append(records, sl.GetLogRecords()...)
			}
		}
		if err := before(ctx, records); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	size := 0
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			size += len(sl.GetLogRecords())
		}
	}
	s.sizes = append(s.sizes, size)
	md, _ := metadata.FromIncomingContext(ctx)
	s.headers = append(s.headers, md)
	if s.failNext > 0 {
		s.failNext--
		return nil, status.Error(codes.Unavailable, "test server: try again later")
	}
	for _, rl := range req.GetResourceLogs() {
		res := map[string]string{}
		for _, kv := range rl.GetResource().GetAttributes() {
			res[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				s.received = append(s.received, receivedLog{resource: res, scope: sl.GetScope().GetName(), record: lr})
			}
		}
	}
	resp := &collogspb.ExportLogsServiceResponse{}
	if s.partialNext > 0 {
		s.partialNext--
		resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: 1, ErrorMessage: "test server: one record rejected"}
	}
	return resp, nil
}

func (s *otlpServer) snapshot() []receivedLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedLog(nil), s.received...)
}

func (s *otlpServer) requestSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...)
}

func (s *otlpServer) requestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *otlpServer) set(f func(*otlpServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// encodingRecorder notes the compression of every request.
type encodingRecorder struct{ s *otlpServer }

func (encodingRecorder) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (encodingRecorder) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (encodingRecorder) HandleConn(context.Context, stats.ConnStats) {}
func (r encodingRecorder) HandleRPC(_ context.Context, st stats.RPCStats) {
	if h, ok := st.(*stats.InHeader); ok {
		r.s.mu.Lock()
		r.s.encodings = append(r.s.encodings, h.Compression)
		r.s.mu.Unlock()
	}
}

// startOTLPServer serves on addr ("127.0.0.1:0" for a fresh port). The
// server is stopped at test cleanup.
func startOTLPServer(t testing.TB, addr string, creds credentials.TransportCredentials) *otlpServer {
	t.Helper()
	s := &otlpServer{}
	s.listen(t, addr, creds)
	return s
}

func (s *otlpServer) listen(t testing.TB, addr string, creds credentials.TransportCredentials) {
	t.Helper()
	var lis net.Listener
	var err error
	// Re-listening on a just-closed port can race the kernel; poll briefly.
	deadline := time.Now().Add(5 * time.Second)
	for {
		lis, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	opts := []grpc.ServerOption{grpc.StatsHandler(encodingRecorder{s})}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	gs := grpc.NewServer(opts...)
	collogspb.RegisterLogsServiceServer(gs, s)
	s.mu.Lock()
	s.grpcServer, s.addr, s.serveResult = gs, lis.Addr().String(), make(chan error, 1)
	s.mu.Unlock()
	go func() { s.serveResult <- gs.Serve(lis) }()
	t.Cleanup(s.stop)
}

// stop shuts the server down (idempotent), as when the collector goes away.
func (s *otlpServer) stop() {
	s.mu.Lock()
	gs, done := s.grpcServer, s.serveResult
	s.grpcServer = nil
	s.mu.Unlock()
	if gs != nil {
		gs.Stop()
		<-done
	}
}

// waitFor is testenv.Eventually for a condition named by what.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, timeout, 5*time.Millisecond, func() (bool, string) { return cond(), "waiting for " + what })
}

// kv builds an OTLP attribute.
func kv(key string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: key, Value: v}
}

func str(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func i64(n int64) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: n}}
}
