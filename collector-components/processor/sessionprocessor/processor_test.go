// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// eventually bounds every wait for the flush goroutine; it is a deadline,
// not a sleep: the poll returns as soon as the condition holds.
const (
	eventuallyTimeout = 5 * time.Second
	eventuallyTick    = 5 * time.Millisecond
	neverFlushes      = time.Hour
)

// sessionLogs builds count records of one session with sequence numbers
// starting at firstSeq.
func sessionLogs(sessionID string, firstSeq, count int) plog.Logs {
	ld := plog.NewLogs()
	records := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := range count {
		rec := records.AppendEmpty()
		rec.SetEventName(schema.EventDBQuery)
		rec.Attributes().PutStr(schema.AttrSessionID, sessionID)
		rec.Attributes().PutInt(schema.AttrSeq, int64(firstSeq+i))
	}
	return ld
}

// documentIDs lists the document ids of every record, in order.
func documentIDs(lds []plog.Logs) []string {
	var ids []string
	for _, ld := range lds {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, rec := range sl.LogRecords().All() {
					v, _ := rec.Attributes().Get(schema.AttrDocumentID)
					ids = append(ids, v.Str())
				}
			}
		}
	}
	return ids
}

func expectedIDs(sessionID string, firstSeq, count int) []string {
	ids := make([]string, count)
	for i := range ids {
		ids[i] = sessionID + ":" + strconv.Itoa(firstSeq+i)
	}
	return ids
}

// scriptedConsumer fails its first calls with the scripted errors, then
// delivers to sink.
type scriptedConsumer struct {
	mu    sync.Mutex
	errs  []error
	calls int
	sink  consumertest.LogsSink
}

func (*scriptedConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (c *scriptedConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	c.mu.Lock()
	c.calls++
	var err error
	if len(c.errs) > 0 {
		err, c.errs = c.errs[0], c.errs[1:]
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.sink.ConsumeLogs(ctx, ld)
}

func (c *scriptedConsumer) callCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

type testProcessor struct {
	*sessionProcessor
	tel *componenttest.Telemetry
}

func newTestProcessor(t testing.TB, cfg *Config, next consumer.Logs) testProcessor {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	p, err := newSessionProcessor(set, cfg, next)
	require.NoError(t, err)
	return testProcessor{sessionProcessor: p, tel: tel}
}

// testConfig is the default configuration with the batching settings of a
// test.
func testConfig(flushInterval time.Duration, batch, maxPending int) Config {
	cfg := *createDefaultConfig().(*Config)
	cfg.FlushInterval, cfg.SendBatchSize, cfg.MaxPendingRecords = flushInterval, batch, maxPending
	return cfg
}

func startProcessor(t *testing.T, p testProcessor) {
	t.Helper()
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
}

// consumeAsync calls ConsumeLogs on its own goroutine, since it blocks until
// the flush that carries its records.
func consumeAsync(p testProcessor, ld plog.Logs) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- p.ConsumeLogs(context.Background(), ld) }()
	return errc
}

// result waits for an asynchronous ConsumeLogs.
func result(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(eventuallyTimeout):
		t.Fatal("ConsumeLogs did not return")
		return nil
	}
}

func TestFlushTriggers(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		// records sent in one ConsumeLogs call; all must arrive without Shutdown.
		records int
	}{
		{
			name:    "send_batch_size reached",
			cfg:     testConfig(neverFlushes, 3, 10),
			records: 3,
		},
		{
			name:    "flush_interval elapsed",
			cfg:     testConfig(20*time.Millisecond, 100, 100),
			records: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			p := newTestProcessor(t, &tt.cfg, sink)
			startProcessor(t, p)

			// ConsumeLogs returns only after the hand-off.
			require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, tt.records)))
			assert.Equal(t, tt.records, sink.LogRecordCount())
			assert.Equal(t, expectedIDs("s1", 0, tt.records), documentIDs(sink.AllLogs()))
		})
	}
}

func TestConsumeWaitsForTheFlush(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig(neverFlushes, 10, 10)
	p := newTestProcessor(t, &cfg, sink)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))

	first := consumeAsync(p, sessionLogs("s1", 0, 4))
	require.Eventually(t, func() bool { return p.pendingRecords() == 4 }, eventuallyTimeout, eventuallyTick)
	second := consumeAsync(p, sessionLogs("s1", 4, 5))
	require.Eventually(t, func() bool { return p.pendingRecords() == 9 }, eventuallyTimeout, eventuallyTick)
	// Below send_batch_size and long before flush_interval: nothing handed
	// on, and no sender told its records are delivered.
	assert.Equal(t, 0, sink.LogRecordCount())
	select {
	case err := <-first:
		t.Fatalf("ConsumeLogs returned %v before its records were handed on", err)
	default:
	}

	require.NoError(t, p.Shutdown(context.Background()))
	require.NoError(t, result(t, first))
	require.NoError(t, result(t, second))
	assert.Equal(t, expectedIDs("s1", 0, 9), documentIDs(sink.AllLogs()))
	assert.Len(t, sink.AllLogs(), 1, "one hand-off for the whole buffer")
}

func TestLifecycleErrors(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, createDefaultConfig().(*Config), sink)
	require.ErrorIs(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 2)), errNotStarted)
	require.NoError(t, p.Shutdown(context.Background()), "Shutdown before Start")
	require.NoError(t, p.Shutdown(context.Background()), "Shutdown twice")
	require.ErrorIs(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 2, 1)), errShutdown)
	assert.Equal(t, 0, sink.LogRecordCount())
}

func TestNextConsumerErrorGoesBackToTheSender(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		permanent bool
	}{
		{name: "retryable", err: errors.New("queue full")},
		{name: "permanent", err: consumererror.NewPermanent(errors.New("mapping rejected")), permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &scriptedConsumer{errs: []error{tt.err}}
			cfg := testConfig(neverFlushes, 3, 10)
			p := newTestProcessor(t, &cfg, next)
			startProcessor(t, p)

			err := p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 3))
			require.ErrorIs(t, err, tt.err)
			assert.Equal(t, tt.permanent, consumererror.IsPermanent(err))
			assert.Equal(t, 0, next.sink.LogRecordCount(), "nothing may be reported as delivered")
			assert.Equal(t, int64(3), counterValue(t, p.tel, metadata.MetricRecordsRefused))
			assert.Equal(t, int64(0), p.pendingRecords(), "the sender keeps the records, not the processor")

			// The sender retries; the same records now go through once.
			require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 3)))
			assert.Equal(t, expectedIDs("s1", 0, 3), documentIDs(next.sink.AllLogs()))
			assert.Equal(t, int64(1), counterValue(t, p.tel, metadata.MetricFlushFailures))
		})
	}
}

func TestShutdownFlushFailureIsReported(t *testing.T) {
	next := &scriptedConsumer{errs: []error{errors.New("exporter gone")}}
	p := newTestProcessor(t, createDefaultConfig().(*Config), next)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	pending := consumeAsync(p, sessionLogs("s1", 0, 3))
	require.Eventually(t, func() bool { return p.pendingRecords() == 3 }, eventuallyTimeout, eventuallyTick)

	err := p.Shutdown(context.Background())
	require.ErrorContains(t, err, "flushing buffered log records at shutdown: exporter gone")
	require.ErrorContains(t, result(t, pending), "exporter gone")
	assert.Equal(t, int64(3), counterValue(t, p.tel, metadata.MetricRecordsRefused))
}

func TestBufferFullRefusesWithRetryableError(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig(neverFlushes, 100, 100)
	cfg.MaxPendingRecords = 100
	p := newTestProcessor(t, &cfg, sink)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))

	pending := consumeAsync(p, sessionLogs("s1", 0, 60))
	require.Eventually(t, func() bool { return p.pendingRecords() == 60 }, eventuallyTimeout, eventuallyTick)
	err := p.ConsumeLogs(context.Background(), sessionLogs("s2", 0, 41))
	require.ErrorContains(t, err, "buffer is full (60 records pending, max_pending_records 100)")
	assert.False(t, consumererror.IsPermanent(err), "the sender must retry, not drop")

	require.NoError(t, p.Shutdown(context.Background()))
	require.NoError(t, result(t, pending))
	assert.Equal(t, 60, sink.LogRecordCount())
}

func TestConcurrentConsumersLoseNothing(t *testing.T) {
	const senders, perSender = 4, 50
	sink := new(consumertest.LogsSink)
	cfg := testConfig(5*time.Millisecond, 16, senders*perSender)
	p := newTestProcessor(t, &cfg, sink)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))

	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSender {
				assert.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s"+strconv.Itoa(s), i, 1)))
			}
		}()
	}
	wg.Wait()
	// Every call returned after its hand-off: all records are delivered
	// before Shutdown.
	assert.Equal(t, senders*perSender, sink.LogRecordCount())
	require.NoError(t, p.Shutdown(context.Background()))

	ids := documentIDs(sink.AllLogs())
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		assert.False(t, seen[id], "duplicate %s", id)
		seen[id] = true
	}
}

func TestPendingRecordsGauge(t *testing.T) {
	cfg := testConfig(neverFlushes, 100, 100)
	p := newTestProcessor(t, &cfg, consumertest.NewNop())
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	pending := consumeAsync(p, sessionLogs("s1", 0, 7))
	require.Eventually(t, func() bool { return p.pendingRecords() == 7 }, eventuallyTimeout, eventuallyTick)

	m, err := p.tel.GetMetric(metadata.MetricPendingRecords)
	require.NoError(t, err)
	require.Len(t, m.Data.(metricdata.Gauge[int64]).DataPoints, 1)
	assert.Equal(t, int64(7), m.Data.(metricdata.Gauge[int64]).DataPoints[0].Value)
	require.NoError(t, p.Shutdown(context.Background()))
	require.NoError(t, result(t, pending))
}

// blockingConsumer blocks every call until its context ends, like an
// exporter whose queue is full and blocks on overflow.
type blockingConsumer struct{ entered chan struct{} }

func (*blockingConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (c *blockingConsumer) ConsumeLogs(ctx context.Context, _ plog.Logs) error {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestShutdownDeadlineAbandonsStuckFlush(t *testing.T) {
	next := &blockingConsumer{entered: make(chan struct{}, 1)}
	cfg := testConfig(neverFlushes, 1, 10)
	p := newTestProcessor(t, &cfg, next)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	pending := consumeAsync(p, sessionLogs("s1", 0, 1))
	select {
	case <-next.entered:
	case <-time.After(eventuallyTimeout):
		t.Fatal("the size-triggered flush never reached the next consumer")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// The stuck hand-off is abandoned instead of hanging Shutdown, and its
	// sender learns that the records were not delivered.
	require.NoError(t, p.Shutdown(ctx))
	require.ErrorIs(t, result(t, pending), context.Canceled)
	assert.Equal(t, int64(1), counterValue(t, p.tel, metadata.MetricRecordsRefused))
}
