// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"context"
	"sync"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
)

// mergeBatch coalesces the session-state merges of concurrent requests: one
// store update runs at a time and carries every observation that arrived
// while the previous one ran (group commit). Without it, the requests a
// gateway has in flight, which touch the same sessions, each wrote those
// sessions' documents and lost the optimistic-concurrency races to each
// other, one sessions-index round trip after another: under a backlog every
// request waited out its deadline (measured: 30 s timeouts, ~150 records/s).
// Every caller still returns only once an update holding its observations
// succeeded, with that update's error otherwise.
type mergeBatch struct {
	apply func(context.Context, map[string][]state.Observation) error

	mu      sync.Mutex
	pending map[string][]state.Observation
	waiters []chan error
	running bool
}

// merge adds obs to the next update and waits for that update's outcome.
func (m *mergeBatch) merge(ctx context.Context, obs map[string][]state.Observation) error {
	if len(obs) == 0 {
		return nil
	}
	done := make(chan error, 1)
	m.mu.Lock()
	if m.pending == nil {
		m.pending = map[string][]state.Observation{}
	}
	for id, o := range obs {
		m.pending[id] = append(m.pending[id], o...)
	}
	m.waiters = append(m.waiters, done)
	lead := !m.running
	m.running = true
	m.mu.Unlock()
	if lead {
		// The update outlives a waiter that gives up: the others wait for it.
		go m.run(context.WithoutCancel(ctx))
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The observations may still be merged; the sender's retry merges
		// them again, which the once-per-seq merge absorbs.
		return ctx.Err()
	}
}

// run applies pending updates until none is left.
func (m *mergeBatch) run(ctx context.Context) {
	for {
		m.mu.Lock()
		batch, waiters := m.pending, m.waiters
		m.pending, m.waiters = nil, nil
		if len(waiters) == 0 {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		err := m.apply(ctx, batch)
		for _, w := range waiters {
			w <- err
		}
	}
}
