package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// events returns every event this stack's gateway recorded, as currently
// searchable in Elasticsearch.
func (s *stack) events(f review.Filter) []review.Event {
	s.t.Helper()
	c, err := review.NewClient(s.esURL)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = c.Refresh(ctx, schema.EventsIndexPattern)
	f.GatewayID = s.gatewayID
	f.Size = 10000
	evs, _, err := c.Events(ctx, f)
	if err != nil {
		s.t.Fatalf("searching events: %v", err)
	}
	return evs
}

// waitEvents polls Elasticsearch until cond holds for this stack's events.
func (s *stack) waitEvents(timeout time.Duration, f review.Filter, cond func([]review.Event) (bool, string)) []review.Event {
	s.t.Helper()
	var last []review.Event
	testenv.Eventually(s.t, timeout, 500*time.Millisecond, func() (bool, string) {
		last = s.events(f)
		return cond(last)
	})
	return last
}

// bySession groups events by session id, each ordered by sequence number.
func bySession(evs []review.Event) map[string][]review.Event {
	m := map[string][]review.Event{}
	for _, e := range evs {
		id := e.Str(schema.AttrSessionID)
		m[id] = append(m[id], e)
	}
	for _, list := range m {
		sort.Slice(list, func(i, j int) bool { return list[i].Int(schema.AttrSeq) < list[j].Int(schema.AttrSeq) })
	}
	return m
}

// checkExactlyOnce fails on a duplicate or a gap in a session's sequence
// numbers: every recorded event must arrive once.
func checkExactlyOnce(t testing.TB, evs []review.Event, wantEnd bool) {
	t.Helper()
	for id, list := range bySession(evs) {
		seen := map[int64]int{}
		for _, e := range list {
			seen[e.Int(schema.AttrSeq)]++
		}
		maxSeq := list[len(list)-1].Int(schema.AttrSeq)
		for seq := int64(0); seq <= maxSeq; seq++ {
			if seen[seq] != 1 {
				t.Errorf("session %s: seq %d present %d times (want exactly once)", id, seq, seen[seq])
			}
		}
		if wantEnd && list[len(list)-1].EventName != schema.EventSessionEnd && list[0].EventName != schema.EventAuthFailure {
			t.Errorf("session %s: last event %s, want %s", id, list[len(list)-1].EventName, schema.EventSessionEnd)
		}
	}
}

func countQueries(evs []review.Event) int {
	n := 0
	for _, e := range evs {
		if e.EventName == schema.EventDBQuery {
			n++
		}
	}
	return n
}

func describe(evs []review.Event) string {
	s := fmt.Sprintf("%d events:", len(evs))
	for i, e := range evs {
		if i == 12 {
			return s + " ..."
		}
		s += fmt.Sprintf(" [%s seq=%d %q]", e.EventName, e.Int(schema.AttrSeq), e.Body)
	}
	return s
}
