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

func newTestProcessor(t *testing.T, cfg *Config, next consumer.Logs) testProcessor {
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

func startProcessor(t *testing.T, p testProcessor) {
	t.Helper()
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
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
			cfg:     Config{FlushInterval: neverFlushes, SendBatchSize: 3, MaxPendingRecords: 10},
			records: 3,
		},
		{
			name:    "flush_interval elapsed",
			cfg:     Config{FlushInterval: 20 * time.Millisecond, SendBatchSize: 100, MaxPendingRecords: 100},
			records: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			p := newTestProcessor(t, &tt.cfg, sink)
			startProcessor(t, p)

			require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, tt.records)))
			require.Eventually(t, func() bool { return sink.LogRecordCount() == tt.records },
				eventuallyTimeout, eventuallyTick)
			assert.Equal(t, expectedIDs("s1", 0, tt.records), documentIDs(sink.AllLogs()))
		})
	}
}

func TestBuffersUntilFlush(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, &Config{FlushInterval: neverFlushes, SendBatchSize: 10, MaxPendingRecords: 10}, sink)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))

	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 4)))
	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 4, 5)))
	// Below send_batch_size and long before flush_interval, nothing may have
	// been handed on: the processor batches.
	assert.Equal(t, 0, sink.LogRecordCount())
	assert.Equal(t, int64(9), p.pendingRecords())

	require.NoError(t, p.Shutdown(context.Background()))
	assert.Equal(t, expectedIDs("s1", 0, 9), documentIDs(sink.AllLogs()))
	assert.Len(t, sink.AllLogs(), 1, "one hand-off for the whole buffer")
}

func TestShutdownFlushesWithoutStart(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, createDefaultConfig().(*Config), sink)
	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 2)))
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Equal(t, 2, sink.LogRecordCount())

	err := p.ConsumeLogs(context.Background(), sessionLogs("s1", 2, 1))
	require.ErrorIs(t, err, errShutdown)
}

func TestRetryableErrorKeepsBatch(t *testing.T) {
	next := &scriptedConsumer{errs: []error{errors.New("queue full"), errors.New("queue full")}}
	p := newTestProcessor(t, &Config{FlushInterval: 10 * time.Millisecond, SendBatchSize: 100, MaxPendingRecords: 100}, next)
	startProcessor(t, p)

	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 3)))
	require.Eventually(t, func() bool { return next.sink.LogRecordCount() == 3 }, eventuallyTimeout, eventuallyTick)
	// Records that arrive while a batch is being retried stay behind it.
	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 3, 2)))
	require.Eventually(t, func() bool { return next.sink.LogRecordCount() == 5 }, eventuallyTimeout, eventuallyTick)

	assert.Equal(t, expectedIDs("s1", 0, 5), documentIDs(next.sink.AllLogs()))
	assert.Equal(t, int64(2), counterValue(t, p.tel, metadata.MetricFlushFailures))
	assert.Equal(t, int64(0), counterValue(t, p.tel, metadata.MetricRecordsDropped))
}

func TestRequeueKeepsOrderBehindFailedBatch(t *testing.T) {
	// Drive flushRetrying by hand so that new records are provably buffered
	// while the failed batch is out.
	next := &scriptedConsumer{errs: []error{errors.New("temporarily unavailable")}}
	p := newTestProcessor(t, &Config{FlushInterval: neverFlushes, SendBatchSize: 100, MaxPendingRecords: 100}, next)

	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 2)))
	batch, count := p.takePending()
	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 2, 2)))
	p.requeue(batch, count)
	assert.Equal(t, int64(4), p.pendingRecords())

	p.flushRetrying(context.Background()) // fails, batch kept
	p.flushRetrying(context.Background()) // delivers
	assert.Equal(t, expectedIDs("s1", 0, 4), documentIDs(next.sink.AllLogs()))
	require.NoError(t, p.Shutdown(context.Background()))
}

func TestPermanentErrorDrops(t *testing.T) {
	next := &scriptedConsumer{errs: []error{consumererror.NewPermanent(errors.New("mapping rejected"))}}
	p := newTestProcessor(t, &Config{FlushInterval: neverFlushes, SendBatchSize: 2, MaxPendingRecords: 10}, next)
	startProcessor(t, p)

	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 2)))
	require.Eventually(t, func() bool {
		return counterValue(t, p.tel, metadata.MetricRecordsDropped) == 2
	}, eventuallyTimeout, eventuallyTick)
	assert.Equal(t, int64(0), p.pendingRecords())
	assert.Equal(t, int64(1), counterValue(t, p.tel, metadata.MetricFlushFailures))
}

func TestShutdownFlushFailureIsReported(t *testing.T) {
	next := &scriptedConsumer{errs: []error{errors.New("exporter gone")}}
	p := newTestProcessor(t, createDefaultConfig().(*Config), next)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 3)))

	err := p.Shutdown(context.Background())
	require.ErrorContains(t, err, "flushing 3 buffered log records at shutdown: exporter gone")
	assert.Equal(t, int64(3), counterValue(t, p.tel, metadata.MetricRecordsDropped))
}

func TestBufferFullRefusesWithRetryableError(t *testing.T) {
	sink := new(consumertest.LogsSink)
	// Not started: nothing drains the buffer, as when the next consumer is down.
	p := newTestProcessor(t, &Config{FlushInterval: neverFlushes, SendBatchSize: 4, MaxPendingRecords: 4}, sink)

	// An empty buffer accepts even an oversized request, so it cannot be
	// refused forever.
	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("big", 0, 6)))
	err := p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 1))
	require.ErrorContains(t, err, "buffer is full (6 records pending, max_pending_records 4)")
	assert.False(t, consumererror.IsPermanent(err), "the sender must retry, not drop")

	require.NoError(t, p.Shutdown(context.Background()))
	assert.Equal(t, 6, sink.LogRecordCount())
}

func TestConcurrentConsumersLoseNothing(t *testing.T) {
	const senders, perSender = 4, 50
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, &Config{FlushInterval: 5 * time.Millisecond, SendBatchSize: 16, MaxPendingRecords: senders * perSender}, sink)
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
	require.NoError(t, p.Shutdown(context.Background()))

	ids := documentIDs(sink.AllLogs())
	assert.Len(t, ids, senders*perSender)
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		assert.False(t, seen[id], "duplicate %s", id)
		seen[id] = true
	}
}

func TestPendingRecordsGauge(t *testing.T) {
	p := newTestProcessor(t, createDefaultConfig().(*Config), consumertest.NewNop())
	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 7)))

	m, err := p.tel.GetMetric(metadata.MetricPendingRecords)
	require.NoError(t, err)
	require.Len(t, m.Data.(metricdata.Gauge[int64]).DataPoints, 1)
	assert.Equal(t, int64(7), m.Data.(metricdata.Gauge[int64]).DataPoints[0].Value)
	require.NoError(t, p.Shutdown(context.Background()))
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
	p := newTestProcessor(t, &Config{FlushInterval: neverFlushes, SendBatchSize: 1, MaxPendingRecords: 10}, next)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 1)))
	select {
	case <-next.entered:
	case <-time.After(eventuallyTimeout):
		t.Fatal("the size-triggered flush never reached the next consumer")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.Shutdown(ctx)
	// The stuck batch went back to the buffer and the final flush, bounded by
	// the same deadline, reports it instead of hanging.
	require.ErrorContains(t, err, "flushing 1 buffered log records at shutdown")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, int64(1), counterValue(t, p.tel, metadata.MetricRecordsDropped))
}
