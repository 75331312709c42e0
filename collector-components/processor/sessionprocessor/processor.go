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
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/rules"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/sessionsindex"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/summary"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

var (
	// errShutdown is returned to senders once the processor has been shut down.
	errShutdown = errors.New("session processor is shut down")
	// errNotStarted is returned before Start: there is no store to merge into.
	errNotStarted = errors.New("session processor is not started")
)

// sessionProcessor wires the parts together: for every request it sets the
// document ids (record_hooks.go), runs the risk rules and extracts what each
// record tells about its session (internal/state), hands the records to the
// next consumer, and merges the observations into the shared session state
// (internal/sessionsindex). ConsumeLogs returns only after both succeeded,
// so nothing the gateway treats as acknowledged lives only in this
// collector: any collector can take any record, and one may die at any time.
// Background loops mark silent sessions lost and write summaries
// (internal/summary) that could not be written inline.
type sessionProcessor struct {
	id        component.ID
	cfg       *Config
	next      consumer.Logs
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	keyHook   *sessionKeyHook
	rules     *rules.Set
	now       func() time.Time

	store      sessionsindex.Store // set by Start
	summarizer *summary.Summarizer
	async      *asyncSummaries // nil when summaries are written inline
	// openaiTransport is closed at shutdown so no keep-alive outlives us.
	openaiTransport *http.Transport

	merges mergeBatch // one sessions-index update at a time for all requests

	mu      sync.Mutex
	stopped bool
	started bool
	// handingOn counts records between arrival and their acknowledgement;
	// inFlight lets Shutdown wait for those requests.
	handingOn int64
	inFlight  sync.WaitGroup

	cancelBg  context.CancelFunc // stops the background goroutines
	bgLoops   sync.WaitGroup
	startOnce sync.Once
	stopOnce  sync.Once
}

func newSessionProcessor(set processor.Settings, cfg *Config, next consumer.Logs) (*sessionProcessor, error) {
	telemetry, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("creating telemetry: %w", err)
	}
	ruleSet, err := rules.Load(cfg.Risk.Config)
	if err != nil {
		return nil, fmt.Errorf("risk: %w", err)
	}
	p := &sessionProcessor{
		id:        set.ID,
		cfg:       cfg,
		next:      next,
		logger:    set.Logger,
		telemetry: telemetry,
		keyHook:   newSessionKeyHook(set.Logger, telemetry),
		rules:     ruleSet,
		now:       time.Now,
	}
	p.merges.apply = p.merge
	if err := telemetry.RegisterPamtrailProcessorPendingRecordsCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(p.pendingRecords())
		return nil
	}); err != nil {
		return nil, fmt.Errorf("creating telemetry: %w", err)
	}
	set.Logger.Info("session processor risk rules loaded",
		zap.Int("builtin_version", ruleSet.Version), zap.Int("rules", ruleSet.Count()))
	return p, nil
}

// Capabilities reports that the processor rewrites records in place (document
// ids, risk attributes, violation flags).
func (p *sessionProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

// Start opens the session store and launches lost detection and, for a
// model-backed summary, the summarizer.
func (p *sessionProcessor) Start(ctx context.Context, host component.Host) error {
	var err error
	p.startOnce.Do(func() { err = p.start(ctx, host) })
	return err
}

func (p *sessionProcessor) start(ctx context.Context, _ component.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped { // Shutdown came first
		return nil
	}
	store := p.store // set in advance by tests sharing one store
	if store == nil {
		var err error
		if store, err = p.openStore(ctx); err != nil {
			return err
		}
	}
	var openai *summary.OpenAI
	if p.cfg.Summary.Provider == summary.ProviderOpenAI {
		transcripts, ok := store.(summary.Transcripts)
		if !ok {
			return errors.New("summary::provider: openai reads transcripts from the events index; set sessions_index::endpoints")
		}
		key := os.Getenv(p.cfg.Summary.OpenAI.APIKeyEnv)
		if key == "" {
			p.logger.Warn("the openai API key variable is empty; sending requests without a key",
				zap.String("api_key_env", p.cfg.Summary.OpenAI.APIKeyEnv))
		}
		p.openaiTransport = http.DefaultTransport.(*http.Transport).Clone()
		oc := p.cfg.Summary.OpenAI
		openai = summary.NewOpenAI(summary.OpenAIConfig{
			BaseURL: oc.BaseURL, Model: oc.Model, APIKey: key, Timeout: oc.Timeout, MaxInputChars: oc.MaxInputChars,
		}, &http.Client{Transport: p.openaiTransport}, transcripts)
	}
	p.store = store
	p.summarizer = summary.New(p.cfg.Summary.Provider, openai, p.logger)

	bgCtx, cancelBg := context.WithCancel(context.Background())
	p.started, p.cancelBg = true, cancelBg
	if !p.summarizer.Inline() && p.summarizer.Enabled() {
		p.async = newAsyncSummaries(p)
		p.goBackground(func() { p.async.run(bgCtx) })
	}
	p.goBackground(func() { p.sweepLoop(bgCtx) })
	return nil
}

func (p *sessionProcessor) openStore(ctx context.Context) (sessionsindex.Store, error) {
	c := p.cfg.Sessions
	if len(c.urls()) == 0 {
		return sessionsindex.NewMemory(p.cfg.Retention, p.now), nil
	}
	tlsCfg, err := c.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("sessions_index::tls: %w", err)
	}
	store, err := sessionsindex.NewElasticsearch(sessionsindex.ClientConfig{
		Endpoints: c.urls(), User: c.User, Password: string(c.Password), APIKey: string(c.APIKey),
		TLS: tlsCfg, Timeout: c.Timeout, Index: c.Index, EventsIndex: c.EventsIndex,
	}, p.now)
	if err != nil {
		return nil, fmt.Errorf("sessions_index: %w", err)
	}
	return store, nil
}

func (p *sessionProcessor) goBackground(f func()) {
	p.bgLoops.Add(1)
	go func() {
		defer p.bgLoops.Done()
		f()
	}()
}

// ConsumeLogs annotates ld, hands it to the next consumer and merges what
// it tells about its sessions into their shared state, returning the first
// failure. A failure goes back to the sender, which keeps the records and
// retries; document ids and the once-per-seq merge make the retry
// idempotent. Several requests run at once. It takes ownership of ld.
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
	}
	p.inFlight.Add(1)
	p.handingOn += int64(count)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.handingOn -= int64(count)
		p.mu.Unlock()
		p.inFlight.Done()
	}()

	observations := p.observe(ctx, ld)
	dropHeartbeats(ld)
	// The work goes on when the sender goes away (a balancer cut its
	// connection, its deadline passed): its retry, through this collector or
	// another, then finds the events indexed and the state merged and is
	// answered at once, instead of starting over and being cut again. The
	// exporter's and the store's own timeouts bound it.
	work := context.WithoutCancel(ctx)
	var err error
	if ld.LogRecordCount() > 0 {
		err = p.next.ConsumeLogs(work, ld)
	}
	if err == nil {
		err = p.merges.merge(work, observations)
	}
	if err != nil {
		p.telemetry.PamtrailProcessorFlushFailures.Add(ctx, 1)
		p.telemetry.PamtrailProcessorRecordsRefused.Add(ctx, int64(count))
		p.logger.Warn("handing logs on failed; the sender gets the error and retries",
			zap.Int("records", count), zap.Error(err))
	}
	return err
}

// observe runs the record hooks over ld and groups what each record tells
// by session.
func (p *sessionProcessor) observe(ctx context.Context, ld plog.Logs) map[string][]state.Observation {
	bySession := map[string][]state.Observation{}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			records := sls.At(j).LogRecords()
			for k := 0; k < records.Len(); k++ {
				record := records.At(k)
				p.keyHook.processRecord(ctx, rl.Resource(), record)
				if o, id, ok := state.Observe(p.rules, record); ok {
					bySession[id] = append(bySession[id], o)
				}
			}
		}
	}
	return bySession
}

// dropHeartbeats removes pam.session.heartbeat records once they are
// observed: they keep the session's liveness and reported counts current,
// and one events-index document per live session per upload cycle would
// only bury the real events.
func dropHeartbeats(ld plog.Logs) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sls.At(j).LogRecords().RemoveIf(func(r plog.LogRecord) bool {
				return r.EventName() == schema.EventHeartbeat
			})
		}
	}
}

// merge applies the observations to the shared state of their sessions.
func (p *sessionProcessor) merge(ctx context.Context, bySession map[string][]state.Observation) error {
	if len(bySession) == 0 {
		return nil
	}
	ids := make([]string, 0, len(bySession))
	for id := range bySession {
		ids = append(ids, id)
	}
	now := p.now()
	asyncDue := newIDSet()
	err := p.store.Update(ctx, ids, func(s *state.Session) bool {
		state.Merge(s, bySession[s.ID], now, p.cfg.Risk.MaxFindings)
		p.finish(ctx, s, now, asyncDue)
		return true // liveness (last_received) changed at least
	})
	if err != nil {
		p.telemetry.PamtrailProcessorSessionWriteFailures.Add(ctx, 1)
		return fmt.Errorf("updating session state: %w", err)
	}
	p.requestSummaries(asyncDue)
	return nil
}

// finish writes the summary of a finished session in the same update, when
// it is due and the provider is inline; otherwise it leaves the session
// pending and adds it to asyncDue, for the summarizer once the update is
// stored.
func (p *sessionProcessor) finish(ctx context.Context, s *state.Session, now time.Time, asyncDue idSet) {
	switch {
	case !p.summarizer.Enabled():
		s.SummaryPending = false
	case !state.SummaryDue(s, now, p.quietFor()):
	case p.summarizer.Inline():
		state.SetSummary(s, p.summarizer.Summarize(ctx, s, now))
	default:
		asyncDue.add(s.ID)
	}
}

// requestSummaries hands stored sessions to the model-backed summarizer.
func (p *sessionProcessor) requestSummaries(ids idSet) {
	for id := range ids.ids {
		p.async.request(id)
	}
}

// idSet collects session ids inside an update's mutate function, which
// may run more than once per id and from the store's goroutine.
type idSet struct {
	mu  *sync.Mutex
	ids map[string]bool
}

func newIDSet() idSet { return idSet{mu: &sync.Mutex{}, ids: map[string]bool{}} }

func (s idSet) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[id] = true
}

// quietFor is how long a finished session whose records did not all arrive
// waits before it is summarized anyway.
func (p *sessionProcessor) quietFor() time.Duration {
	if p.cfg.Summary.Provider == summary.ProviderOpenAI {
		// The collector that requested the summary may still be waiting
		// for the model; only then does another one take over.
		return p.cfg.lostAfter() + p.cfg.Summary.OpenAI.Timeout
	}
	return p.cfg.lostAfter()
}

// Shutdown waits for the requests in progress and stops the background
// work. Nothing else needs saving: all state is in the store. It is safe to
// call before Start and more than once.
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
	var errs error
	done := make(chan struct{})
	go func() { p.inFlight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = fmt.Errorf("waiting for requests in progress: %w (their senders retry)", ctx.Err())
	}
	p.cancelBg()
	p.bgLoops.Wait()
	if p.openaiTransport != nil {
		p.openaiTransport.CloseIdleConnections()
	}
	p.store.Close()
	return errs
}

func (p *sessionProcessor) pendingRecords() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.handingOn
}
