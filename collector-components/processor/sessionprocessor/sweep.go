// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
)

// sweepLoop runs lost detection and late summaries twice per heartbeat
// interval. Every collector sweeps the shared store; the optimistic
// concurrency of each update makes one of them win and the others see the
// result.
func (p *sessionProcessor) sweepLoop(ctx context.Context) {
	ticker := time.NewTicker(max(p.cfg.HeartbeatInterval/2, 10*time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := p.sweep(ctx); err != nil && ctx.Err() == nil {
			p.telemetry.PamtrailProcessorSessionWriteFailures.Add(ctx, 1)
			p.logger.Warn("sweeping the session state failed; retrying next sweep", zap.Error(err))
		}
	}
}

// sweep marks lost the active sessions no collector heard from for the lost
// window, and summarizes finished sessions that waited too long for their
// last records. Sessions are judged silent only after this collector could
// reach the store for a whole window: its own outage, or a store outage that
// held every record back, is not the sessions' silence.
func (p *sessionProcessor) sweep(ctx context.Context) error {
	now := p.now()
	lostAfter := p.cfg.lostAfter()
	if p.store.TroubleFree(now) >= lostAfter {
		ids, err := p.store.ActiveBefore(ctx, now.Add(-lostAfter))
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			asyncDue := newIDSet()
			err := p.store.Update(ctx, ids, func(s *state.Session) bool {
				if !state.MarkLost(s, now, lostAfter) {
					return false
				}
				p.finish(ctx, s, now, asyncDue)
				return true
			})
			if err != nil {
				return err
			}
			p.requestSummaries(asyncDue)
		}
	}
	if !p.summarizer.Enabled() {
		return nil
	}
	ids, err := p.store.SummaryPendingBefore(ctx, now.Add(-p.quietFor()))
	if err != nil || len(ids) == 0 {
		return err
	}
	asyncDue := newIDSet()
	err = p.store.Update(ctx, ids, func(s *state.Session) bool {
		if !state.SummaryDue(s, now, p.quietFor()) {
			return false
		}
		p.finish(ctx, s, now, asyncDue)
		return !s.SummaryPending // written inline
	})
	p.requestSummaries(asyncDue)
	return err
}

// asyncSummaries runs a slow provider (a model) off the request path: the
// update that finishes a session only queues it here, and the summary is
// stored by a later update once the model answered. If this collector dies
// meanwhile, another one's sweep finds the session still pending.
type asyncSummaries struct {
	p    *sessionProcessor
	mu   sync.Mutex
	ids  map[string]bool
	wake chan struct{} // capacity 1
}

func newAsyncSummaries(p *sessionProcessor) *asyncSummaries {
	return &asyncSummaries{p: p, ids: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// request queues a session; it never blocks.
func (a *asyncSummaries) request(id string) {
	a.mu.Lock()
	a.ids[id] = true
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *asyncSummaries) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]string, 0, len(a.ids))
	for id := range a.ids {
		ids = append(ids, id)
	}
	clear(a.ids)
	return ids
}

func (a *asyncSummaries) run(ctx context.Context) {
	p := a.p
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		}
		for _, id := range a.take() {
			s, err := p.store.Get(ctx, id)
			if err != nil || s == nil || s.Summary != nil || !s.Finished() {
				continue // gone, done, or back alive; a failed read is found again by the sweep
			}
			result := p.summarizer.Summarize(ctx, s, p.now())
			if ctx.Err() != nil {
				return
			}
			err = p.store.Update(ctx, []string{id}, func(s *state.Session) bool { return state.SetSummary(s, result) })
			if err != nil {
				p.logger.Warn("storing a summary failed; the sweep retries it",
					zap.String("session.id", id), zap.Error(err))
			}
		}
	}
}
