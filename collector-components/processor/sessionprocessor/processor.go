// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"
)

// finalWriteTimeout bounds the last sessions-index write at shutdown.
const finalWriteTimeout = 5 * time.Second

var (
	// errShutdown is returned to senders once the processor has been shut down.
	errShutdown = errors.New("session processor is shut down")
	// errNotStarted is returned before Start: nothing would flush the data.
	errNotStarted = errors.New("session processor is not started")
)

// pendingBatch is the buffer of one flush. Every ConsumeLogs call whose
// records are in it waits for done and returns err: the sender learns the
// outcome of the hand-off that actually carried its records.
type pendingBatch struct {
	logs  plog.Logs
	count int
	done  chan struct{}
	err   error
}

// sessionProcessor runs the record hooks (document ids, risk rules, session
// state) over incoming logs, batches them and hands each batch to the next
// consumer every flush_interval or when send_batch_size records are pending.
// ConsumeLogs returns only after the batch holding its records was accepted
// by the next consumer (the exporter's persistent queue) and the session
// state it changed was persisted, so what the gateway treats as acknowledged
// survives a collector crash.
type sessionProcessor struct {
	id        component.ID
	cfg       *Config
	next      consumer.Logs
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	hooks     []recordHook
	tracker   *tracker
	now       func() time.Time

	store      *stateStore // nil without a storage extension
	writer     *sessionsWriter
	summarizer *summarizer
	// openaiTransport is closed at shutdown so no keep-alive outlives us.
	openaiTransport *http.Transport

	mu      sync.Mutex
	batch   *pendingBatch // nil when empty
	stopped bool
	started bool

	flushNow   chan struct{} // capacity 1: a pending size-triggered flush
	stopLoop   chan struct{} // closed by Shutdown
	loops      sync.WaitGroup
	cancelBg   context.CancelFunc // stops the background goroutines
	bgLoops    sync.WaitGroup
	startOnce  sync.Once
	stopOnce   sync.Once
	cancelLoop context.CancelFunc
}

func newSessionProcessor(set processor.Settings, cfg *Config, next consumer.Logs) (*sessionProcessor, error) {
	telemetry, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("creating telemetry: %w", err)
	}
	rules, err := loadRuleSet(cfg.Risk)
	if err != nil {
		return nil, fmt.Errorf("risk: %w", err)
	}
	p := &sessionProcessor{
		id:        set.ID,
		cfg:       cfg,
		next:      next,
		logger:    set.Logger,
		telemetry: telemetry,
		now:       time.Now,
		flushNow:  make(chan struct{}, 1),
		stopLoop:  make(chan struct{}),
	}
	p.tracker = newTracker(cfg, rules, func() time.Time { return p.now() })
	p.hooks = []recordHook{newSessionKeyHook(set.Logger, telemetry), p.tracker}
	if err := telemetry.RegisterPendingRecordsCallback(p.pendingRecords); err != nil {
		return nil, fmt.Errorf("creating telemetry: %w", err)
	}
	set.Logger.Info("session processor risk rules loaded",
		zap.Int("builtin_version", rules.version), zap.Int("rules", rules.ruleCount()))
	return p, nil
}

// Capabilities reports that the processor rewrites records in place (document
// ids, risk attributes, violation flags).
func (p *sessionProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

// Start restores persisted session state and launches the flush loop, lost
// detection, the summarizer and the sessions writer.
func (p *sessionProcessor) Start(ctx context.Context, host component.Host) error {
	var err error
	p.startOnce.Do(func() { err = p.start(ctx, host) })
	return err
}

func (p *sessionProcessor) start(ctx context.Context, host component.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped { // Shutdown came first: there is nothing to flush into
		return nil
	}
	if p.cfg.Storage != nil {
		store, err := openStateStore(ctx, host, *p.cfg.Storage, p.id)
		if err != nil {
			return err
		}
		sessions, err := store.load(ctx)
		if err != nil {
			_ = store.close(ctx)
			return fmt.Errorf("storage: %w", err)
		}
		p.store = store
		p.tracker.restore(sessions)
	}
	var openai *openAIClient
	if p.cfg.Summary.Provider == providerOpenAI {
		key := os.Getenv(p.cfg.Summary.OpenAI.APIKeyEnv)
		if key == "" {
			p.logger.Warn("the openai API key variable is empty; sending requests without a key",
				zap.String("api_key_env", p.cfg.Summary.OpenAI.APIKeyEnv))
		}
		p.openaiTransport = http.DefaultTransport.(*http.Transport).Clone()
		openai = newOpenAIClient(p.cfg.Summary.OpenAI, key, &http.Client{Transport: p.openaiTransport})
	}
	if p.cfg.Sessions.Endpoint != "" {
		w, err := newSessionsWriter(p.cfg.Sessions, p.tracker, p.now, p.logger, func(ctx context.Context) {
			p.telemetry.SessionWriteFailures.Add(ctx, 1)
		})
		if err != nil {
			return err
		}
		p.writer = w
	}
	p.summarizer = newSummarizer(p.tracker, openai, p.now, p.logger, p.stateChanged)

	bgCtx, cancelBg := context.WithCancel(context.Background())
	loopCtx, cancelLoop := context.WithCancel(context.Background())
	p.started, p.cancelBg, p.cancelLoop = true, cancelBg, cancelLoop
	p.loops.Add(1)
	go p.flushLoop(loopCtx)
	p.goBackground(func() { p.sweepLoop(bgCtx) })
	p.goBackground(func() { p.summarizer.run(bgCtx) })
	if p.writer != nil {
		p.goBackground(func() { p.writer.run(bgCtx) })
	}
	// Re-emit restored state: documents whose last write was lost in a crash
	// are written again, summaries interrupted by it are produced again.
	p.summarizer.notify()
	p.notifyWriter()
	return nil
}

func (p *sessionProcessor) goBackground(f func()) {
	p.bgLoops.Add(1)
	go func() {
		defer p.bgLoops.Done()
		f()
	}()
}

// ConsumeLogs applies the record hooks, adds ld to the pending batch and
// waits until that batch has been handed on. It takes ownership of ld.
func (p *sessionProcessor) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	count := ld.LogRecordCount()
	if count == 0 {
		return nil
	}
	p.mu.Lock()
	switch {
	case p.stopped:
		p.mu.Unlock()
		return errShutdown
	case !p.started:
		p.mu.Unlock()
		return errNotStarted
	case p.batch != nil && p.batch.count+count > p.cfg.MaxPendingRecords:
		// An empty buffer always accepts, so a request larger than the cap
		// cannot be refused forever.
		pending := p.batch.count
		p.mu.Unlock()
		return fmt.Errorf("session processor buffer is full (%d records pending, max_pending_records %d); retry later",
			pending, p.cfg.MaxPendingRecords)
	}
	p.mu.Unlock()

	applyHooks(ctx, p.hooks, ld)

	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return errShutdown
	}
	if p.batch == nil {
		p.batch = &pendingBatch{logs: plog.NewLogs(), done: make(chan struct{})}
	}
	b := p.batch
	ld.ResourceLogs().MoveAndAppendTo(b.logs.ResourceLogs())
	b.count += count
	if b.count >= p.cfg.SendBatchSize {
		select {
		case p.flushNow <- struct{}{}:
		default: // a flush is already requested
		}
	}
	p.mu.Unlock()

	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		// The records may still be delivered; the sender retries and the
		// document ids make the retry idempotent.
		return fmt.Errorf("waiting for the session processor's flush: %w", ctx.Err())
	}
}

// Shutdown flushes what is pending, stops the background work and persists
// the final state. It is safe to call before Start and more than once.
func (p *sessionProcessor) Shutdown(ctx context.Context) error {
	var err error
	p.stopOnce.Do(func() { err = p.shutdown(ctx) })
	return err
}

func (p *sessionProcessor) shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.stopped = true
	started := p.started
	p.mu.Unlock()
	defer p.telemetry.Shutdown()
	if !started {
		return nil
	}
	close(p.stopLoop)
	done := make(chan struct{})
	go func() { p.loops.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// A hand-off is stuck in the next consumer; abandon it.
		p.cancelLoop()
		<-done
	}
	p.cancelLoop()
	errs := p.flush(ctx)
	if errs != nil {
		errs = fmt.Errorf("flushing buffered log records at shutdown: %w", errs)
	}

	// One last attempt to bring the sessions index up to date, bounded by
	// ctx; whatever is not written is re-emitted after the restart.
	p.cancelBg()
	p.bgLoops.Wait()
	if p.openaiTransport != nil {
		p.openaiTransport.CloseIdleConnections()
	}
	if p.writer != nil {
		// Bounded: a document not written now is re-emitted after the
		// restart, so an unreachable Elasticsearch must not hold up the stop.
		writeCtx, cancel := context.WithTimeout(ctx, finalWriteTimeout)
		err := p.writer.writePending(writeCtx)
		cancel()
		if err != nil {
			p.logger.Warn("session documents not written at shutdown; they are re-sent after the restart", zap.Error(err))
		}
		p.writer.transport.CloseIdleConnections()
	}
	if p.store != nil {
		errs = errors.Join(errs, p.store.persist(ctx, p.tracker), p.store.close(ctx))
	}
	return errs
}

func (p *sessionProcessor) flushLoop(ctx context.Context) {
	defer p.loops.Done()
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
		_ = p.flush(ctx)
	}
}

// flush persists the session state the pending records changed, hands the
// records to the next consumer and releases their senders with the outcome.
// A failure is returned to the senders, which keep the records and retry;
// nothing is dropped here.
func (p *sessionProcessor) flush(ctx context.Context) error {
	p.mu.Lock()
	b := p.batch
	p.batch = nil
	p.mu.Unlock()
	if b == nil {
		return nil
	}
	var err error
	if p.store != nil {
		err = p.store.persist(ctx, p.tracker)
	}
	if err == nil {
		err = p.next.ConsumeLogs(ctx, b.logs)
	}
	if err != nil {
		p.telemetry.FlushFailures.Add(ctx, 1)
		p.telemetry.RecordsRefused.Add(ctx, int64(b.count))
		p.logger.Warn("handing logs on failed; the senders get the error and retry",
			zap.Int("records", b.count), zap.Error(err))
	}
	b.err = err
	close(b.done)
	p.summarizer.notify()
	p.notifyWriter()
	return err
}

// sweepLoop runs lost detection and retention twice per heartbeat interval.
func (p *sessionProcessor) sweepLoop(ctx context.Context) {
	ticker := time.NewTicker(max(p.cfg.HeartbeatInterval/2, 10*time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if p.tracker.sweep() {
			p.stateChanged()
		}
	}
}

// stateChanged persists state changed outside the flush path (lost
// detection, summaries) and wakes the summarizer and the writer.
func (p *sessionProcessor) stateChanged() {
	if p.store != nil {
		if err := p.store.persist(context.Background(), p.tracker); err != nil {
			p.logger.Warn("persisting session state failed; retrying with the next change", zap.Error(err))
		}
	}
	p.summarizer.notify()
	p.notifyWriter()
}

func (p *sessionProcessor) notifyWriter() {
	if p.writer != nil {
		p.writer.notify()
	}
}

func (p *sessionProcessor) pendingRecords() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.batch == nil {
		return 0
	}
	return int64(p.batch.count)
}
