// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// Storage layout: one key per session ("session/<id>", JSON sessionState) and
// an index key listing the ids, because storage.Client cannot enumerate keys.
const (
	storageIndexKey     = "sessions.index"
	storageSessionKeyNS = "session/"
	storageName         = "sessions"
)

// stateStore persists the tracker through a storage extension client.
// Writes are serialised: the flush path and the background loops both call
// persist.
type stateStore struct {
	client storage.Client
	mu     sync.Mutex
	// index is the set of ids last written to storageIndexKey.
	index map[string]bool
}

// openStateStore gets a client from the configured storage extension.
func openStateStore(ctx context.Context, host component.Host, storageID component.ID, self component.ID) (*stateStore, error) {
	ext, ok := host.GetExtensions()[storageID]
	if !ok {
		return nil, fmt.Errorf("storage: extension %q is not configured (add it under extensions: and service::extensions)", storageID)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("storage: extension %q is not a storage extension", storageID)
	}
	client, err := se.GetClient(ctx, component.KindProcessor, self, storageName)
	if err != nil {
		return nil, fmt.Errorf("storage: getting a client from %q: %w", storageID, err)
	}
	return &stateStore{client: client, index: map[string]bool{}}, nil
}

// load reads every persisted session.
func (st *stateStore) load(ctx context.Context) (map[string]*sessionState, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	raw, err := st.client.Get(ctx, storageIndexKey)
	if err != nil {
		return nil, fmt.Errorf("reading the session index: %w", err)
	}
	var ids []string
	if raw != nil {
		if err := json.Unmarshal(raw, &ids); err != nil {
			return nil, fmt.Errorf("decoding the session index: %w", err)
		}
	}
	sessions := make(map[string]*sessionState, len(ids))
	for _, id := range ids {
		raw, err := st.client.Get(ctx, storageSessionKeyNS+id)
		if err != nil {
			return nil, fmt.Errorf("reading session %q: %w", id, err)
		}
		if raw == nil {
			continue // deleted between index writes
		}
		s := new(sessionState)
		if err := json.Unmarshal(raw, s); err != nil {
			return nil, fmt.Errorf("decoding session %q: %w", id, err)
		}
		sessions[id] = s
		st.index[id] = true
	}
	return sessions, nil
}

// persist writes the tracker's dirty sessions and deletes removed ones in one
// batch. On failure the sessions stay dirty for the next attempt.
func (st *stateStore) persist(ctx context.Context, t *tracker) error {
	st.mu.Lock()
	defer st.mu.Unlock()

	t.mu.Lock()
	var ops []*storage.Operation
	written := make([]string, 0, len(t.dirty))
	revisions := make(map[string]int64, len(t.dirty))
	for id := range t.dirty {
		s, ok := t.sessions[id]
		if !ok {
			continue
		}
		raw, err := json.Marshal(s)
		if err != nil {
			t.mu.Unlock()
			return fmt.Errorf("encoding session %q: %w", id, err)
		}
		ops = append(ops, storage.SetOperation(storageSessionKeyNS+id, raw))
		written = append(written, id)
		revisions[id] = s.Revision
	}
	removed := make([]string, 0, len(t.removed))
	for id := range t.removed {
		ops = append(ops, storage.DeleteOperation(storageSessionKeyNS+id))
		removed = append(removed, id)
	}
	newIndex := make([]string, 0, len(t.sessions))
	for id := range t.sessions {
		newIndex = append(newIndex, id)
	}
	t.mu.Unlock()

	indexChanged := len(newIndex) != len(st.index)
	for _, id := range newIndex {
		indexChanged = indexChanged || !st.index[id]
	}
	if indexChanged {
		slices.Sort(newIndex)
		raw, _ := json.Marshal(newIndex)
		ops = append(ops, storage.SetOperation(storageIndexKey, raw))
	}
	if len(ops) == 0 {
		return nil
	}
	if err := st.client.Batch(ctx, ops...); err != nil {
		return fmt.Errorf("persisting session state: %w", err)
	}
	if indexChanged {
		st.index = make(map[string]bool, len(newIndex))
		for _, id := range newIndex {
			st.index[id] = true
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range written {
		// A session changed again while we wrote stays dirty.
		if s, ok := t.sessions[id]; !ok || s.Revision == revisions[id] {
			delete(t.dirty, id)
		}
	}
	for _, id := range removed {
		if _, back := t.sessions[id]; !back {
			delete(t.removed, id)
		}
	}
	return nil
}

func (st *stateStore) close(ctx context.Context) error {
	return st.client.Close(ctx)
}
