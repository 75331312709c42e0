// Package uploader ships spooled records to the collector over OTLP/gRPC.
//
// Every Interval, as soon as a full batch is waiting, and on Flush and
// Shutdown, it reads batches from the spool starting at the acknowledged
// position, rebuilds OpenTelemetry log records from the stored OTLP bytes
// and exports them, with up to MaxInFlight requests outstanding, each on an
// exporter of its own. Batches are acknowledged strictly in spool order,
// each only once the collector accepted it and every batch before it: the
// acknowledged position never passes a record the collector does not hold.
// Any failure, including a partial success, ends the cycle: the requests
// still out are awaited, and everything after the acknowledged position is
// sent again after a backoff of at most 2 s, starting with a one-record
// probe alone in flight. Delivery is at-least-once from the spool, and
// the collector deduplicates by document id. The exporter's own retry is
// off, because the spool, not the exporter, is the durable layer.
//
// A cycle keeps sending while the spool has records, so a backlog drains as
// fast as the collector accepts requests; Interval is the longest a record
// waits for its upload, not a pace.
//
// Records are rebuilt through the OTel log SDK (a LoggerProvider attaches
// the resource and scope; otlploggrpc builds the export request and sends
// it, encoded by logsCodec), which costs a decode of the spooled OTLP
// bytes, an SDK record and an encode per record.
// The decode was the largest part: BenchmarkDecode measured the generated
// protobuf decoder plus copy at 79 allocations per statement record, the
// wire-level decoder in decode.go at 34, two to three times faster. The
// generated path remains for anything the wire decoder declines.
package uploader

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/gzip"

	"github.com/pamtrail/pamtrail/gateway/spool"
)

// Spool is what the uploader needs from the spool.
type Spool interface {
	ReadBatch(maxRecords, maxBytes int) (spool.Batch, error)
	ReadBatchAfter(prev spool.Cursor, maxRecords, maxBytes int) (spool.Batch, error)
	Ack(spool.Cursor) error
	Stats() spool.Stats
	// BacklogReached is closed once records records wait to be sent.
	BacklogReached(records int) <-chan struct{}
}

var errShutDown = errors.New("uploader: shut down")

// Uploader moves records from a spool to the collector.
type Uploader struct {
	cfg   Config
	spool Spool
	log   *slog.Logger
	conv  *converter
	// exporters has MaxInFlight entries: an otlploggrpc.Exporter sends one
	// request at a time, so each request in flight takes one of its own;
	// they share conn.
	exporters chan *otlploggrpc.Exporter
	all       []*otlploggrpc.Exporter
	conn      *grpc.ClientConn // shared by all exporters

	mu       sync.Mutex
	started  bool
	shutdown bool
	cancel   context.CancelFunc // stops an in-flight export at Shutdown
	stop     chan struct{}
	done     chan struct{}
	flushReq chan chan error
	cycleMu  sync.Mutex // one cycle at a time (loop, Flush, final flush)
	// closed is set (under cycleMu) once the exporter is shut down: its
	// Export then returns nil without sending, which must never lead to an
	// ack.
	closed bool
	// lastBeforeCycle (under cycleMu) is when BeforeCycle last ran: it runs
	// once per Interval, however many cycles a busy spool starts.
	lastBeforeCycle time.Time

	uploaded     atomic.Uint64
	batches      atomic.Uint64
	failures     atomic.Uint64
	consecutive  atomic.Uint64
	undecodable  atomic.Uint64
	lastSuccess  atomic.Int64
	lastErrorMsg atomic.Pointer[string]
}

// New validates cfg and prepares the exporter. It does not connect: the
// gRPC connection is made lazily and re-made after failures.
func New(sp Spool, cfg Config) (*Uploader, error) {
	if sp == nil {
		return nil, errors.New("uploader: spool is required")
	}
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	conn, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	opts := []otlploggrpc.Option{
		// Every exporter sends on this one connection (HTTP/2 carries the
		// requests in flight side by side), so the probe that finds the
		// collector back also finds the connection ready for the full
		// requests after it: with a connection per exporter, each of the
		// others failed at once on its own stale connection error, and a
		// 300,000-record backlog waited 8 s for all of them to reconnect.
		otlploggrpc.WithGRPCConn(conn),
		otlploggrpc.WithTimeout(cfg.Timeout),
		otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}),
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlploggrpc.WithHeaders(cfg.Headers))
	}
	u := &Uploader{
		cfg:       cfg,
		spool:     sp,
		log:       cfg.Logger.With("component", "uploader", "endpoint", cfg.Endpoint),
		conv:      newConverter(cfg.GatewayID, cfg.HostName),
		exporters: make(chan *otlploggrpc.Exporter, cfg.MaxInFlight),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		flushReq:  make(chan chan error),
		conn:      conn,
	}
	for range cfg.MaxInFlight {
		exp, err := otlploggrpc.New(context.Background(), opts...)
		if err != nil {
			_ = u.shutdownExporters(context.Background())
			return nil, fmt.Errorf("uploader: creating OTLP exporter: %w", err)
		}
		u.all = append(u.all, exp)
		u.exporters <- exp
	}
	return u, nil
}

// dial makes the connection every exporter sends on. It does not connect:
// gRPC connects lazily and re-connects after failures.
func dial(cfg Config) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{
		// Reconnect at least every second: gRPC's default reconnect backoff
		// grows to 2 minutes, and an upload attempt fails at once while the
		// connection waits out its backoff, so a collector that is back
		// would sit idle for another retry interval. A connection attempt to
		// a collector that is still down is one refused SYN.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: cfg.InitialBackoff, Multiplier: 1.6, Jitter: 0.2, MaxDelay: min(cfg.retryCeiling(), maxReconnectDelay)},
			MinConnectTimeout: cfg.Timeout,
		}),
		// Connect to every address the endpoint's name resolves to and
		// spread requests over them (pick_first, the default, would send
		// everything to one collector of a tier).
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`),
		grpc.WithUserAgent("pamtrail-gateway"),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(cmp.Or[encoding.CodecV2](cfg.codec, newLogsCodec()))),
	}
	if cfg.Compression == CompressionGzip {
		opts = append(opts, grpc.WithDefaultCallOptions(grpc.UseCompressor(gzip.Name)))
	}
	if cfg.Insecure {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		tc, err := cfg.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	}
	conn, err := grpc.NewClient(cfg.Endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("uploader: endpoint %q: %w", cfg.Endpoint, err)
	}
	return conn, nil
}

// shutdownExporters shuts the exporters down, then closes their
// connection (which they do not own).
func (u *Uploader) shutdownExporters(ctx context.Context) error {
	var errs []error
	for _, exp := range u.all {
		errs = append(errs, exp.Shutdown(ctx))
	}
	if u.conn != nil {
		errs = append(errs, u.conn.Close())
		u.conn = nil
	}
	return errors.Join(errs...)
}

// Start runs the upload loop in the background until Shutdown.
func (u *Uploader) Start(context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.shutdown:
		return errors.New("uploader: Start after Shutdown")
	case u.started:
		return errors.New("uploader: already started")
	}
	u.started = true
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	go u.run(ctx)
	return nil
}

// Flush runs an upload cycle now and returns its error. Without a running
// loop (before Start or after Shutdown) it runs the cycle itself.
func (u *Uploader) Flush(ctx context.Context) error {
	u.mu.Lock()
	running := u.started && !u.shutdown
	u.mu.Unlock()
	if !running {
		return u.cycle(ctx)
	}
	reply := make(chan error, 1)
	select {
	case u.flushReq <- reply:
	case <-u.done:
		return errShutDown
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops the loop, makes one last attempt to upload what is pending
// (bounded by ctx) and closes the exporter. Safe before Start and twice.
func (u *Uploader) Shutdown(ctx context.Context) error {
	u.mu.Lock()
	if u.shutdown {
		u.mu.Unlock()
		return nil
	}
	u.shutdown = true
	started := u.started
	u.mu.Unlock()

	if started {
		close(u.stop)
		select {
		case <-u.done:
		case <-ctx.Done():
			u.cancel() // abort the in-flight export; its batch stays spooled
			<-u.done
		}
		u.cancel()
	}
	var errs []error
	if ctx.Err() == nil {
		if err := u.cycle(ctx); err != nil {
			errs = append(errs, fmt.Errorf("uploader: final flush: %w (records stay in the spool)", err))
		}
	}
	u.cycleMu.Lock()
	u.closed = true
	errs = append(errs, u.shutdownExporters(ctx), u.conv.shutdown(ctx))
	u.cycleMu.Unlock()
	return errors.Join(errs...)
}

func (u *Uploader) run(ctx context.Context) {
	defer close(u.done)
	timer := time.NewTimer(u.cfg.Interval)
	defer timer.Stop()
	// full is closed as soon as a full request waits in the spool: a busy
	// gateway sends it at once instead of letting its records age to the
	// next tick, so Interval bounds how long a record waits, and a steady
	// load flows instead of arriving in bursts of an interval's worth.
	full := u.spool.BacklogReached(u.cfg.MaxBatchRecords)
	var backoff time.Duration
	for {
		var reply chan error
		select {
		case <-u.stop:
			return
		case <-timer.C:
		case <-full:
		case reply = <-u.flushReq:
		}
		batchesBefore := u.batches.Load()
		drained, err := u.runCycle(ctx, reply != nil)
		if reply != nil {
			reply <- err
		}
		var delay time.Duration
		full = nil
		switch {
		case err == nil && !drained:
			delay, backoff = 0, 0 // a backlog: keep going
		case err == nil:
			delay, backoff = u.cfg.Interval, 0
			full = u.spool.BacklogReached(u.cfg.MaxBatchRecords)
		default:
			if u.batches.Load() != batchesBefore {
				// The collector took part of the cycle: it is back, and
				// what failed is most likely a connection of another
				// request in flight still reconnecting. Retry soon.
				backoff = 0
			}
			backoff = nextBackoff(backoff, u.cfg.InitialBackoff, u.cfg.retryCeiling())
			delay = jitter(backoff)
		}
		timer.Reset(delay)
	}
}

// cycle uploads batches until the spool is drained or a batch fails.
func (u *Uploader) cycle(ctx context.Context) error {
	_, err := u.runCycle(ctx, true)
	return err
}

// request is one export in flight; done receives its outcome.
type request struct {
	batch spool.Batch
	done  chan error
}

// probeRecords is the size of the request a cycle starts with after a
// failure, alone in flight: a retry against a collector that is still down
// costs the conversion of one record rather than MaxInFlight full requests,
// so retries can come every second or two (retryCeiling), and a backlog
// starts moving within about that of the collector's return.
const probeRecords = 1

// runCycle reports whether it drained the spool (false when it stopped at
// maxBatchesPerCycle). BeforeCycle runs first if it is due, or always when
// asked (Flush).
func (u *Uploader) runCycle(ctx context.Context, always bool) (bool, error) {
	u.cycleMu.Lock()
	defer u.cycleMu.Unlock()
	if u.closed {
		return false, errShutDown
	}
	if always || time.Since(u.lastBeforeCycle) >= u.cfg.Interval {
		u.lastBeforeCycle = time.Now()
		u.beforeCycle()
	}
	var inFlight []*request
	// abandon waits for the requests still out after a failure: their
	// records are sent again from the acknowledged position next cycle.
	abandon := func(err error) (bool, error) {
		for _, r := range inFlight {
			<-r.done
		}
		u.recordFailure(err)
		return false, err
	}
	var last *spool.Cursor
	drained := false
	probing := u.consecutive.Load() > 0
	for sent := 0; ; {
		for !drained && sent < maxBatchesPerCycle && len(inFlight) < u.inFlightLimit(probing) {
			if err := ctx.Err(); err != nil {
				return abandon(err)
			}
			b, err := u.read(last, probing)
			if err != nil {
				return abandon(fmt.Errorf("reading spool: %w", err))
			}
			if b.Len() == 0 {
				drained = true
				break
			}
			inFlight = append(inFlight, u.send(ctx, b))
			last = &inFlight[len(inFlight)-1].batch.Cursor
			sent++
		}
		if len(inFlight) == 0 {
			return drained, nil
		}
		head := inFlight[0]
		inFlight = inFlight[1:]
		if err := <-head.done; err != nil {
			return abandon(err)
		}
		if err := u.ack(head.batch); err != nil {
			return abandon(err)
		}
		probing = false
	}
}

// inFlightLimit is how many requests may be outstanding: one while the
// cycle probes.
func (u *Uploader) inFlightLimit(probing bool) int {
	if probing {
		return 1
	}
	return u.cfg.MaxInFlight
}

// read reads the batch after after (from the acknowledged position when
// nil): a probe of probeRecords records while probing, a full request
// otherwise.
func (u *Uploader) read(after *spool.Cursor, probing bool) (spool.Batch, error) {
	records := u.cfg.MaxBatchRecords
	if probing {
		records = probeRecords
	}
	if after == nil {
		return u.spool.ReadBatch(records, u.cfg.MaxBatchBytes)
	}
	return u.spool.ReadBatchAfter(*after, records, u.cfg.MaxBatchBytes)
}

// send converts b (on the caller's goroutine: the converter is not safe for
// concurrent use) and exports it on a goroutine of its own.
func (u *Uploader) send(ctx context.Context, b spool.Batch) *request {
	records, bad := u.conv.convert(b.Records)
	if bad > 0 {
		u.undecodable.Add(uint64(bad))
		u.log.Error("spooled records are not OTLP log records; sending them as error records", "count", bad)
	}
	r := &request{batch: b, done: make(chan error, 1)}
	exp := <-u.exporters // never blocks: at most MaxInFlight requests are out
	go func() {
		err := exp.Export(ctx, records)
		u.exporters <- exp
		if err != nil {
			// Includes OTLP partial success: the whole batch is retried and
			// the collector's document ids absorb the duplicates.
			err = fmt.Errorf("exporting %d records: %w", len(records), err)
		}
		r.done <- err
	}()
	return r
}

// ack records that b and every batch before it were delivered.
func (u *Uploader) ack(b spool.Batch) error {
	if err := u.spool.Ack(b.Cursor); err != nil {
		return fmt.Errorf("acknowledging %d delivered records (they will be sent again): %w", b.Len(), err)
	}
	u.uploaded.Add(uint64(b.Len()))
	u.batches.Add(1)
	u.lastSuccess.Store(time.Now().UnixNano())
	if u.consecutive.Swap(0) > 0 {
		u.log.Info("upload recovered", "records", b.Len())
	}
	return nil
}

func (u *Uploader) beforeCycle() {
	if u.cfg.BeforeCycle == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			u.log.Error("BeforeCycle hook panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	u.cfg.BeforeCycle()
}

func (u *Uploader) recordFailure(err error) {
	u.failures.Add(1)
	n := u.consecutive.Add(1)
	msg := err.Error()
	u.lastErrorMsg.Store(&msg)
	// Log the first failure and then every 10th, not every retry.
	if n == 1 || n%10 == 0 {
		u.log.Warn("upload failed; records stay in the spool", "error", err, "consecutive_failures", n)
	}
}

// nextBackoff doubles the retry delay within [initial, maxDelay].
func nextBackoff(cur, initial, maxDelay time.Duration) time.Duration {
	if cur == 0 {
		return initial
	}
	return min(cur*2, maxDelay)
}

// jitter spreads retries over [d/2, d] so that many gateways recovering
// together do not hit the collector in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Stats are the uploader's counters.
type Stats struct {
	Uploaded            uint64    // records acknowledged by the collector
	Batches             uint64    // successful export requests
	Failures            uint64    // failed cycles
	ConsecutiveFailures uint64    // failures since the last success
	Undecodable         uint64    // spooled payloads sent as error records
	LastSuccess         time.Time // zero until the first success
	LastError           string
	Pending             uint64        // records in the spool not yet acknowledged
	Lag                 time.Duration // age of the oldest pending record
}

// Stats returns a snapshot.
func (u *Uploader) Stats() Stats {
	sp := u.spool.Stats()
	st := Stats{
		Uploaded:            u.uploaded.Load(),
		Batches:             u.batches.Load(),
		Failures:            u.failures.Load(),
		ConsecutiveFailures: u.consecutive.Load(),
		Undecodable:         u.undecodable.Load(),
		Pending:             sp.RecordsPending,
		Lag:                 sp.OldestUnackedAge(),
	}
	if ns := u.lastSuccess.Load(); ns != 0 {
		st.LastSuccess = time.Unix(0, ns)
	}
	if p := u.lastErrorMsg.Load(); p != nil {
		st.LastError = *p
	}
	return st
}
