// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionsindex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pamtrail/pamtrail/collector-components/internal/esenv"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

func newTestStore(t *testing.T, url, index string) *Elasticsearch {
	t.Helper()
	s, err := NewElasticsearch(ClientConfig{
		Endpoints: []string{url}, Timeout: time.Minute, Index: index, EventsIndex: schema.EventsIndexPattern,
	}, time.Now)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// sessionRecords is one session: start, 150 queries (every 9th failing,
// every 31st risky), end.
func sessionRecords() []state.Observation {
	obs := []state.Observation{{Seq: 0, Event: schema.EventSessionStart, User: "alice"}}
	for seq := int64(1); seq <= 150; seq++ {
		o := state.Observation{Seq: seq, Event: schema.EventDBQuery, Query: true, Error: seq%9 == 0}
		if seq%31 == 0 {
			o.RiskLevel = 3
			o.Findings = []state.Finding{{RuleID: "sql.drop_object", Severity: "high", Seq: seq}}
		}
		obs = append(obs, o)
	}
	return append(obs, state.Observation{Seq: 151, Event: schema.EventSessionEnd, End: &state.EndInfo{Reason: schema.EndClientQuit}})
}

// TestCollectorsMergeIntoOneExactState has four "collectors" (stores with
// their own version caches) merge random, partly repeated requests of six
// sessions concurrently into one real index: the stored state of each
// session must equal merging its records once, in order.
func TestCollectorsMergeIntoOneExactState(t *testing.T) {
	url := esenv.URL(t)
	index := esenv.SessionsIndex(t, url)
	const collectors, sessions = 4, 6
	stores := make([]*Elasticsearch, collectors)
	for i := range stores {
		stores[i] = newTestStore(t, url, index)
	}
	records := sessionRecords()
	now := time.Now()

	type request struct {
		id  string
		obs []state.Observation
	}
	work := make(chan request)
	var wg sync.WaitGroup
	for _, store := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				assert.NoError(t, store.Update(context.Background(), []string{r.id}, func(s *state.Session) bool {
					state.Merge(s, r.obs, now, 200)
					return true
				}))
			}
		}()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var requests []request
	for n := range sessions {
		id := fmt.Sprintf("s%d", n)
		for i := 0; i < len(records); {
			size := 1 + rng.IntN(12)
			r := request{id: id, obs: records[i:min(i+size, len(records))]}
			requests = append(requests, r)
			if rng.IntN(3) == 0 {
				requests = append(requests, r) // a retried upload
			}
			i += size
		}
	}
	rng.Shuffle(len(requests), func(i, j int) { requests[i], requests[j] = requests[j], requests[i] })
	for _, r := range requests {
		work <- r
	}
	close(work)
	wg.Wait()

	want := state.New("s0")
	state.Merge(want, records, now, 200)
	for n := range sessions {
		id := fmt.Sprintf("s%d", n)
		got, err := newTestStore(t, url, index).Get(context.Background(), id)
		require.NoError(t, err)
		require.NotNil(t, got, id)
		want.ID = id
		assert.Equal(t, want.Queries, got.Queries, id)
		assert.Equal(t, want.Errors, got.Errors, id)
		assert.Equal(t, want.Findings, got.Findings, id)
		assert.Equal(t, want.Status, got.Status, id)
		assert.True(t, got.Complete(), id)
	}
}

// TestFindersSeeTheSharedState: a session another collector keeps fresh is
// not a lost candidate; one nobody heard from is; a finished session waiting
// for its summary is found for it.
func TestFindersSeeTheSharedState(t *testing.T) {
	url := esenv.URL(t)
	index := esenv.SessionsIndex(t, url)
	store := newTestStore(t, url, index)
	ctx := context.Background()
	now := time.Now()
	merge := func(id string, at time.Time, obs ...state.Observation) {
		require.NoError(t, store.Update(ctx, []string{id}, func(s *state.Session) bool {
			state.Merge(s, obs, at, 200)
			return true
		}))
	}
	merge("fresh", now, state.Observation{Seq: 0, Event: schema.EventSessionStart})
	merge("silent", now.Add(-time.Minute), state.Observation{Seq: 0, Event: schema.EventSessionStart})
	merge("ended", now.Add(-time.Minute), state.Observation{Seq: 1, Event: schema.EventSessionEnd, End: &state.EndInfo{}})
	esenv.Request(t, http.MethodPost, url+"/"+index+"/_refresh", nil)

	lost, err := store.ActiveBefore(ctx, now.Add(-30*time.Second))
	require.NoError(t, err)
	assert.Equal(t, []string{"silent"}, lost)
	pending, err := store.SummaryPendingBefore(ctx, now.Add(-30*time.Second))
	require.NoError(t, err)
	assert.Equal(t, []string{"ended"}, pending)
	assert.Positive(t, store.TroubleFree(time.Now()))
}

// TestUnreachableClusterIsTrouble: a failed request resets the trouble-free
// span that lost detection waits for.
func TestUnreachableClusterIsTrouble(t *testing.T) {
	store, err := NewElasticsearch(ClientConfig{
		Endpoints: []string{"http://127.0.0.1:1"}, Timeout: time.Second, Index: "x", EventsIndex: "y",
	}, time.Now)
	require.NoError(t, err)
	defer store.Close()
	before := time.Now()
	err = store.Update(context.Background(), []string{"s"}, func(*state.Session) bool { return true })
	require.Error(t, err)
	assert.Less(t, store.TroubleFree(time.Now()), time.Since(before)+time.Millisecond)
}

// TestIndexOfAnOlderTemplateIsUpgraded: an index created before the store's
// fields existed (dynamic: false, no last_received) gets them on first use,
// so lost detection finds its sessions.
func TestIndexOfAnOlderTemplateIsUpgraded(t *testing.T) {
	url := esenv.URL(t)
	index := esenv.SessionsIndex(t, url)
	esenv.Request(t, http.MethodDelete, url+"/"+index, nil)
	esenv.Request(t, http.MethodPut, url+"/"+index,
		[]byte(`{"mappings": {"dynamic": false, "properties": {"session_id": {"type": "keyword"}, "status": {"type": "keyword"}}}}`))
	store := newTestStore(t, url, index)
	ctx := context.Background()
	require.NoError(t, store.Update(ctx, []string{"old"}, func(s *state.Session) bool {
		state.Merge(s, []state.Observation{{Seq: 0, Event: schema.EventSessionStart}}, time.Now().Add(-time.Minute), 200)
		return true
	}))
	esenv.Request(t, http.MethodPost, url+"/"+index+"/_refresh", nil)
	lost, err := store.ActiveBefore(ctx, time.Now().Add(-30*time.Second))
	require.NoError(t, err)
	assert.Equal(t, []string{"old"}, lost)
}

// TestFirstWriteCreatesTheIndex: on a cluster that has no sessions index yet
// the first update reads "no such index" as "no such session" and creates
// it.
func TestFirstWriteCreatesTheIndex(t *testing.T) {
	url := esenv.URL(t)
	index := esenv.SessionsIndex(t, url)
	esenv.Request(t, http.MethodDelete, url+"/"+index, nil)
	store := newTestStore(t, url, index)
	require.NoError(t, store.Update(context.Background(), []string{"first"}, func(s *state.Session) bool {
		state.Merge(s, []state.Observation{{Seq: 0, Event: schema.EventSessionStart}}, time.Now(), 200)
		return true
	}))
	got, err := newTestStore(t, url, index).Get(context.Background(), "first")
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, schema.StatusActive, got.Status)
}
