// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionsindex // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/sessionsindex"

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Memory keeps state in this process only: a collector without a sessions
// index still annotates risk and tracks status, and tests see the documents
// an Elasticsearch store would write. Finished sessions are forgotten
// retention after their last record, once summarized.
type Memory struct {
	retention time.Duration
	now       func() time.Time
	opened    time.Time

	mu       sync.Mutex
	sessions map[string]*state.Session
}

// NewMemory returns an empty in-memory store.
func NewMemory(retention time.Duration, now func() time.Time) *Memory {
	return &Memory{retention: retention, now: now, opened: now(), sessions: map[string]*state.Session{}}
}

// Update implements Store.
func (m *Memory) Update(_ context.Context, ids []string, mutate Mutate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		s, ok := m.sessions[id]
		if !ok {
			s = state.New(id)
		} else {
			s = s.Clone()
		}
		if mutate(s) {
			m.sessions[id] = s
		}
	}
	return nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, id string) (*state.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[id]; ok {
		return s.Clone(), nil
	}
	return nil, nil
}

// ActiveBefore implements Store; it also forgets finished sessions past
// their retention.
func (m *Memory) ActiveBefore(_ context.Context, before time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var ids []string
	for id, s := range m.sessions {
		switch {
		case s.Status == schema.StatusActive && s.LastReceived.Before(before):
			ids = append(ids, id)
		case s.Finished() && s.Summary != nil && now.Sub(s.LastReceived) >= m.retention:
			delete(m.sessions, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// SummaryPendingBefore implements Store.
func (m *Memory) SummaryPendingBefore(_ context.Context, before time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, s := range m.sessions {
		if s.SummaryPending && s.LastReceived.Before(before) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// TroubleFree implements Store: memory never fails.
func (m *Memory) TroubleFree(now time.Time) time.Duration { return now.Sub(m.opened) }

// Close implements Store.
func (*Memory) Close() {}

// Documents renders every session as the sessions index would hold it.
func (m *Memory) Documents(now time.Time) map[string]map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	docs := make(map[string]map[string]any, len(m.sessions))
	for id, s := range m.sessions {
		docs[id] = s.Document(now)
	}
	return docs
}
