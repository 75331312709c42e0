// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

// Package sessionsindex keeps session state where every collector can reach
// it: one document per session in the sessions index, changed only by
// read-merge-write cycles under Elasticsearch's optimistic concurrency
// control (if_seq_no / if_primary_term). A write that lost a race is
// answered 409; the collector reads the winner's state, merges its own
// records into it again and retries. Merging is exact and idempotent
// (state.Merge counts each pam.seq once), so the order in which collectors
// win does not change the result.
//
// Memory is the same contract in one process, for a collector without a
// sessions index and for tests.
package sessionsindex // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/sessionsindex"

import (
	"context"
	"time"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
)

// Mutate changes s, a private copy of a session's current state (or a new
// state for an unknown session), and reports whether it changed anything.
// It may be called several times for one id when a write loses a race, each
// time with the then current state, so it must derive its change from s
// alone.
type Mutate func(s *state.Session) bool

// Store holds the sessions' shared state.
type Store interface {
	// Update applies mutate to the current state of every id and stores
	// the results; it returns once all of them are stored or it failed.
	Update(ctx context.Context, ids []string, mutate Mutate) error
	// Get returns a copy of the stored state, nil if there is none.
	Get(ctx context.Context, id string) (*state.Session, error)
	// ActiveBefore lists active sessions no collector has heard from since
	// before: candidates for lost.
	ActiveBefore(ctx context.Context, before time.Time) ([]string, error)
	// SummaryPendingBefore lists finished sessions still waiting for their
	// summary whose last record arrived before before.
	SummaryPendingBefore(ctx context.Context, before time.Time) ([]string, error)
	// TroubleFree is how long the store has answered without errors (since
	// it was opened at most): sessions are judged silent only over a span in
	// which this collector could have heard of their records.
	TroubleFree(now time.Time) time.Duration
	// Close releases connections.
	Close()
}

// findLimit bounds one sweep's search; what is left is found next sweep.
const findLimit = 1000
