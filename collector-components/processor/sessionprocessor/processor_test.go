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

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/sessionsindex"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// eventually bounds every wait for a background goroutine; it is a
// deadline, not a sleep: the poll returns as soon as the condition holds.
const (
	eventuallyTimeout = 10 * time.Second
	eventuallyTick    = 5 * time.Millisecond
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

func startProcessor(t *testing.T, p testProcessor) {
	t.Helper()
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
}

// startWithMemory starts p on an in-memory store and returns the store.
func startWithMemory(t *testing.T, p testProcessor) *sessionsindex.Memory {
	t.Helper()
	store := sessionsindex.NewMemory(time.Hour, time.Now)
	p.store = store
	startProcessor(t, p)
	return store
}

func TestRecordsAreHandedOnWithDocumentIDsAndCounted(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, createDefaultConfig().(*Config), sink)
	store := startWithMemory(t, p)
	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 5)))
	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 3, 5)), "a retry overlapping the first request")
	assert.Equal(t, append(expectedIDs("s1", 0, 5), expectedIDs("s1", 3, 5)...), documentIDs(sink.AllLogs()))
	assert.EqualValues(t, 8, store.Documents(time.Now())["s1"][schema.SessionQueries], "each seq counted once")
}

func TestLifecycleErrors(t *testing.T) {
	p := newTestProcessor(t, createDefaultConfig().(*Config), consumertest.NewNop())
	assert.ErrorIs(t, p.ConsumeLogs(context.Background(), sessionLogs("s", 0, 1)), errNotStarted)
	startWithMemory(t, p)
	require.NoError(t, p.Shutdown(context.Background()))
	assert.ErrorIs(t, p.ConsumeLogs(context.Background(), sessionLogs("s", 0, 1)), errShutdown)
}

// TestNextConsumerErrorGoesBackToTheSender: a refused hand-off is the
// sender's error and merges nothing, so its retry counts the records once.
func TestNextConsumerErrorGoesBackToTheSender(t *testing.T) {
	next := &scriptedConsumer{errs: []error{consumererror.NewRetryableError(errors.New("queue full"))}}
	p := newTestProcessor(t, createDefaultConfig().(*Config), next)
	store := startWithMemory(t, p)
	err := p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 3))
	require.ErrorContains(t, err, "queue full")
	assert.Empty(t, store.Documents(time.Now()))
	require.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 3)))
	assert.Equal(t, expectedIDs("s1", 0, 3), documentIDs(next.sink.AllLogs()))
	assert.EqualValues(t, 3, store.Documents(time.Now())["s1"][schema.SessionQueries])
	assert.Equal(t, int64(3), counterValue(t, p.tel, "otelcol_pamtrail_processor_records_refused"))
}

// failingStore refuses every update.
type failingStore struct{ *sessionsindex.Memory }

func (failingStore) Update(context.Context, []string, sessionsindex.Mutate) error {
	return errors.New("cluster unavailable")
}

// TestStateFailureGoesBackToTheSender: records whose session state could not
// be stored are not acknowledged, even though the events were handed on.
func TestStateFailureGoesBackToTheSender(t *testing.T) {
	p := newTestProcessor(t, createDefaultConfig().(*Config), consumertest.NewNop())
	p.store = failingStore{sessionsindex.NewMemory(time.Hour, time.Now)}
	startProcessor(t, p)
	err := p.ConsumeLogs(context.Background(), sessionLogs("s1", 0, 3))
	require.ErrorContains(t, err, "cluster unavailable")
	assert.Equal(t, int64(1), counterValue(t, p.tel, "otelcol_pamtrail_processor_session_write_failures"))
}

func TestHeartbeatsAreNotHandedOn(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, createDefaultConfig().(*Config), sink)
	store := startWithMemory(t, p)
	ld := sessionLogs("s1", 0, 3)
	hb := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(1)
	hb.SetEventName(schema.EventHeartbeat)
	hb.Attributes().PutInt(schema.AttrQueryCount, 2)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	assert.Equal(t, []string{"s1:0", "s1:2"}, documentIDs(sink.AllLogs()))
	assert.EqualValues(t, 2, store.Documents(time.Now())["s1"][schema.SessionQueries])
}

func TestConcurrentConsumersLoseNothing(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, createDefaultConfig().(*Config), sink)
	store := startWithMemory(t, p)
	const senders, perSender = 8, 50
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perSender; j += 10 {
				assert.NoError(t, p.ConsumeLogs(context.Background(), sessionLogs("s1", i*perSender+j, 10)))
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, senders*perSender, sink.LogRecordCount())
	assert.EqualValues(t, senders*perSender, store.Documents(time.Now())["s1"][schema.SessionQueries])
}
