// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"
)

// errShutdown is returned to senders once the processor has been shut down.
var errShutdown = errors.New("session processor is shut down")

// Values of the "reason" attribute of the records-dropped counter.
const (
	dropReasonPermanent = "permanent_error"
	dropReasonShutdown  = "shutdown"
)

// sessionProcessor runs the record hooks over incoming logs, buffers them and
// hands them to the next consumer every flush_interval, when send_batch_size
// records are pending, and on Shutdown.
//
// ConsumeLogs returns as soon as the data is buffered. A failed hand-off with a
// retryable error keeps the batch at the head of the buffer for the next flush;
// while the buffer is full, ConsumeLogs refuses data with a retryable error so
// that the sender keeps it. See README.md for the durability trade-off.
type sessionProcessor struct {
	cfg       *Config
	next      consumer.Logs
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	hooks     []recordHook

	mu           sync.Mutex
	pending      plog.Logs
	pendingCount int
	stopped      bool

	flushNow   chan struct{} // capacity 1: a pending size-triggered flush
	stopLoop   chan struct{} // closed by Shutdown
	loopDone   chan struct{} // closed when the flush loop has returned
	startOnce  sync.Once
	stopOnce   sync.Once
	started    bool               // guarded by mu
	cancelLoop context.CancelFunc // guarded by mu; set when started
}

func newSessionProcessor(set processor.Settings, cfg *Config, next consumer.Logs) (*sessionProcessor, error) {
	telemetry, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("creating telemetry: %w", err)
	}
	p := &sessionProcessor{
		cfg:       cfg,
		next:      next,
		logger:    set.Logger,
		telemetry: telemetry,
		hooks:     []recordHook{newSessionKeyHook(set.Logger, telemetry)},
		pending:   plog.NewLogs(),
		flushNow:  make(chan struct{}, 1),
		stopLoop:  make(chan struct{}),
		loopDone:  make(chan struct{}),
	}
	if err := telemetry.RegisterPendingRecordsCallback(p.pendingRecords); err != nil {
		return nil, fmt.Errorf("creating telemetry: %w", err)
	}
	return p, nil
}

// Capabilities reports that the processor rewrites records in place (document
// ids, violation flags), so the pipeline hands it its own copy of shared data.
func (p *sessionProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

// Start launches the flush loop.
func (p *sessionProcessor) Start(_ context.Context, _ component.Host) error {
	p.startOnce.Do(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.stopped { // Shutdown came first: there is nothing to flush into
			return
		}
		loopCtx, cancel := context.WithCancel(context.Background())
		p.started, p.cancelLoop = true, cancel
		go p.flushLoop(loopCtx)
	})
	return nil
}

// ConsumeLogs applies the record hooks and buffers ld. It takes ownership of
// ld's contents.
func (p *sessionProcessor) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	count := ld.LogRecordCount()
	if count == 0 {
		return nil
	}
	applyHooks(ctx, p.hooks, ld)

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return errShutdown
	}
	// An empty buffer always accepts, so a request larger than the cap cannot
	// be refused forever.
	if p.pendingCount > 0 && p.pendingCount+count > p.cfg.MaxPendingRecords {
		return fmt.Errorf("session processor buffer is full (%d records pending, max_pending_records %d); retry later",
			p.pendingCount, p.cfg.MaxPendingRecords)
	}
	ld.ResourceLogs().MoveAndAppendTo(p.pending.ResourceLogs())
	p.pendingCount += count
	if p.pendingCount >= p.cfg.SendBatchSize {
		select {
		case p.flushNow <- struct{}{}:
		default: // a flush is already requested
		}
	}
	return nil
}

// Shutdown stops the flush loop and flushes what is left, synchronously. It
// is safe to call before Start and more than once.
func (p *sessionProcessor) Shutdown(ctx context.Context) error {
	var err error
	p.stopOnce.Do(func() {
		p.mu.Lock()
		p.stopped = true
		started, cancelLoop := p.started, p.cancelLoop
		p.mu.Unlock()

		if started {
			close(p.stopLoop)
			select {
			case <-p.loopDone:
			case <-ctx.Done():
				// A hand-off is stuck in the next consumer; abandon it (its
				// batch goes back to the buffer) and flush with ctx below.
				cancelLoop()
				<-p.loopDone
			}
			cancelLoop()
		}
		err = p.flushFinal(ctx)
		p.telemetry.Shutdown()
	})
	return err
}

func (p *sessionProcessor) flushLoop(ctx context.Context) {
	defer close(p.loopDone)
	ticker := time.NewTicker(p.cfg.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-p.stopLoop:
			return
		case <-ticker.C:
		case <-p.flushNow:
		}
		// select picks randomly among ready cases; do not start another
		// hand-off once Shutdown has asked the loop to stop.
		select {
		case <-p.stopLoop:
			return
		default:
		}
		p.flushRetrying(ctx)
	}
}

// takePending empties the buffer and returns its former contents.
func (p *sessionProcessor) takePending() (plog.Logs, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	batch, count := p.pending, p.pendingCount
	p.pending, p.pendingCount = plog.NewLogs(), 0
	return batch, count
}

// requeue puts a batch whose hand-off failed back in front of the records that
// arrived meanwhile, keeping the original order.
func (p *sessionProcessor) requeue(batch plog.Logs, count int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending.ResourceLogs().MoveAndAppendTo(batch.ResourceLogs())
	p.pending = batch
	p.pendingCount += count
}

// flushRetrying hands the buffer to the next consumer; on a retryable error
// the batch stays buffered for the next flush.
func (p *sessionProcessor) flushRetrying(ctx context.Context) {
	batch, count := p.takePending()
	if count == 0 {
		return
	}
	err := p.next.ConsumeLogs(ctx, batch)
	if err == nil {
		return
	}
	p.telemetry.FlushFailures.Add(ctx, 1)
	if consumererror.IsPermanent(err) {
		p.drop(ctx, count, dropReasonPermanent, err)
		return
	}
	p.logger.Warn("handing logs to the next consumer failed; keeping them for the next flush",
		zap.Int("records", count), zap.Error(err))
	p.requeue(batch, count)
}

// flushFinal is the last hand-off at Shutdown; there is no later flush to
// retry in, so a failure drops the batch.
func (p *sessionProcessor) flushFinal(ctx context.Context) error {
	batch, count := p.takePending()
	if count == 0 {
		return nil
	}
	if err := p.next.ConsumeLogs(ctx, batch); err != nil {
		p.telemetry.FlushFailures.Add(ctx, 1)
		p.drop(ctx, count, dropReasonShutdown, err)
		return fmt.Errorf("flushing %d buffered log records at shutdown: %w", count, err)
	}
	return nil
}

func (p *sessionProcessor) drop(ctx context.Context, count int, reason string, err error) {
	p.telemetry.RecordsDropped.Add(ctx, int64(count), metric.WithAttributes(attribute.String("reason", reason)))
	p.logger.Error("dropping log records the next consumer refused",
		zap.Int("records", count), zap.String("reason", reason), zap.Error(err))
}

func (p *sessionProcessor) pendingRecords() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(p.pendingCount)
}
