// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
)

// TestMergeBatchCoalescesConcurrentRequests: while one update runs, the
// merges that arrive wait and go together in the next one; each caller gets
// the outcome of the update that carried its observations.
func TestMergeBatchCoalescesConcurrentRequests(t *testing.T) {
	tests := []struct {
		name    string
		second  error // outcome of the coalesced update
		wantErr bool
	}{
		{name: "success"},
		{name: "failure reaches every waiter", second: errors.New("sessions index unavailable"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const waiting = 5
			release := make(chan struct{})
			var mu sync.Mutex
			var updates []map[string][]state.Observation
			m := &mergeBatch{apply: func(_ context.Context, batch map[string][]state.Observation) error {
				mu.Lock()
				updates = append(updates, batch)
				first := len(updates) == 1
				mu.Unlock()
				if first {
					<-release
					return nil
				}
				return tt.second
			}}
			obs := func(seq int64) map[string][]state.Observation {
				return map[string][]state.Observation{"s1": {{Seq: seq}}, "s2": {{Seq: seq}}}
			}
			firstDone := make(chan error, 1)
			go func() { firstDone <- m.merge(context.Background(), obs(0)) }()
			require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(updates) == 1 }, eventuallyTimeout, eventuallyTick)

			errs := make(chan error, waiting)
			for i := range waiting {
				go func() { errs <- m.merge(context.Background(), obs(int64(i+1))) }()
			}
			require.Eventually(t, func() bool { m.mu.Lock(); defer m.mu.Unlock(); return len(m.waiters) == waiting }, eventuallyTimeout, eventuallyTick)
			close(release)
			require.NoError(t, <-firstDone)
			for range waiting {
				select {
				case err := <-errs:
					assert.Equal(t, tt.wantErr, err != nil, "error %v", err)
				case <-time.After(eventuallyTimeout):
					t.Fatal("a waiting merge never returned")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, updates, 2, "the waiting merges go in one update")
			assert.Len(t, updates[1]["s1"], waiting)
			assert.Len(t, updates[1]["s2"], waiting)
		})
	}
}

func TestMergeBatchCallerDeadline(t *testing.T) {
	release := make(chan struct{})
	m := &mergeBatch{apply: func(context.Context, map[string][]state.Observation) error { <-release; return nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := m.merge(ctx, map[string][]state.Observation{"s1": {{Seq: 1}}})
	require.ErrorIs(t, err, context.DeadlineExceeded, "a caller gives up at its deadline; the update goes on")
	close(release)
	require.Eventually(t, func() bool { m.mu.Lock(); defer m.mu.Unlock(); return !m.running }, eventuallyTimeout, eventuallyTick)
}
