package review_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/review/reviewtest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Integration tests against the real Elasticsearch: fixtures are written
// exactly as the collector's exporter and session processor write them.

func newClient(t *testing.T) (*reviewtest.Fixture, *review.Client) {
	t.Helper()
	f := reviewtest.New(t)
	return f, &review.Client{ES: f.ES}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func seqs(evs []review.Event) []int64 {
	out := make([]int64, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Int(schema.AttrSeq))
	}
	return out
}

func TestSessionsFilters(t *testing.T) {
	f, c := newClient(t)
	user := reviewtest.UniqueID("u")
	ids := map[string]string{} // status -> session id
	for i, status := range []string{schema.StatusEnded, schema.StatusActive, schema.StatusLost} {
		id := reviewtest.UniqueID(fmt.Sprintf("s%d-", i))
		_, _, doc := reviewtest.SampleSession(id, user, status)
		// Later sessions start later: the list is newest first.
		doc[schema.SessionStart] = reviewtest.SampleStart.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano)
		if status == schema.StatusLost {
			doc[schema.SessionRiskLevel] = "critical"
		}
		if status == schema.StatusActive {
			doc[schema.SessionRiskLevel] = "low"
		}
		f.PutSession(doc)
		ids[status] = id
	}
	tests := []struct {
		name string
		f    review.SessionFilter
		want []string
	}{
		{"user, newest first", review.SessionFilter{User: user}, []string{ids["lost"], ids["active"], ids["ended"]}},
		{"status", review.SessionFilter{User: user, Status: schema.StatusActive}, []string{ids["active"]}},
		{"risk high or above", review.SessionFilter{User: user, MinRisk: "high"}, []string{ids["lost"], ids["ended"]}},
		{"risk critical", review.SessionFilter{User: user, MinRisk: "critical"}, []string{ids["lost"]}},
		{"account", review.SessionFilter{User: user, Account: "other"}, nil},
		{"limit", review.SessionFilter{User: user, Limit: 1}, []string{ids["lost"]}},
		{"since", review.SessionFilter{User: user, Since: reviewtest.SampleStart.Add(90 * time.Second)}, []string{ids["lost"]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total, err := c.Sessions(testContext(t), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []string
			for _, s := range got {
				gotIDs = append(gotIDs, s.ID)
			}
			if !slices.Equal(gotIDs, tt.want) {
				t.Errorf("sessions %v, want %v", gotIDs, tt.want)
			}
			if total < len(tt.want) {
				t.Errorf("total %d < %d", total, len(tt.want))
			}
		})
	}
}

func TestSessionDecodesDocument(t *testing.T) {
	f, c := newClient(t)
	id := reviewtest.UniqueID("s-")
	_, _, doc := reviewtest.SampleSession(id, "alice", schema.StatusEnded)
	f.PutSession(doc)
	s, err := c.Session(testContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != id || s.Status != schema.StatusEnded || s.Queries != 5 || s.Errors != 1 || s.BytesOut != 1337 ||
		!s.Start.Equal(reviewtest.SampleStart) || s.End.IsZero() || s.DurationMs != 5000 {
		t.Errorf("decoded %+v", s)
	}
	if len(s.RiskFindings) != 2 || s.RiskFindings[1].Seq != 4 || s.RiskFindings[0].RuleID != "sql.drop" {
		t.Errorf("risk findings %+v", s.RiskFindings)
	}
	if s.Summary == nil || s.Summary.Provider != "rules" || len(s.Summary.Warnings) != 2 || s.Summary.Warnings[0].Seq != 3 {
		t.Errorf("summary %+v", s.Summary)
	}

	_, err = c.Session(testContext(t), "no-such-"+id)
	if !errors.Is(err, review.ErrNoSession) || !strings.Contains(err.Error(), "no session no-such-"+id) {
		t.Errorf("unknown session: %v, want ErrNoSession naming it", err)
	}
}

func TestSessionEvents(t *testing.T) {
	f, c := newClient(t)
	id := reviewtest.UniqueID("s-")
	m, events, _ := reviewtest.SampleSession(id, reviewtest.UniqueID("u"), schema.StatusEnded)
	heartbeat := reviewtest.Event{Seq: 6, Time: reviewtest.SampleStart.Add(10 * time.Second), Name: schema.EventHeartbeat}
	f.IndexEvents(m, append(events, heartbeat)...)

	tests := []struct {
		name   string
		grep   string
		minSeq int64
		page   int
		want   []int64
	}{
		{"all in seq order, no heartbeat", "", 0, 1000, []int64{0, 1, 2, 3, 4, 5}},
		{"paged", "", 0, 2, []int64{0, 1, 2, 3, 4, 5}},
		{"from seq", "", 4, 1000, []int64{4, 5}},
		{"grep statement", "payroll_archive", 0, 1000, []int64{3}},
		{"grep response", "division by zero", 0, 1000, []int64{2}},
		{"grep nothing", "no such text anywhere", 0, 1000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			review.SetSessionEventsPage(t, tt.page)
			got, err := c.SessionEvents(testContext(t), id, review.TranscriptSelection(tt.grep, false), tt.minSeq)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqs(got), tt.want) {
				t.Errorf("seqs %v, want %v", seqs(got), tt.want)
			}
		})
	}
}

func TestEventsSearchAcrossSessions(t *testing.T) {
	f, c := newClient(t)
	user := reviewtest.UniqueID("u")
	token := reviewtest.UniqueID("tok")
	for i := range 2 {
		m, _, _ := reviewtest.SampleSession(reviewtest.UniqueID("s-"), user, schema.StatusEnded)
		f.IndexEvents(m, reviewtest.Event{Seq: 1, Time: reviewtest.SampleStart.Add(time.Duration(i) * time.Second),
			Name: schema.EventSSHCommand, Attrs: map[string]any{schema.AttrSSHCommand: "cat notes", schema.AttrSSHOutput: "secret plan " + token}})
	}
	evs, total, err := c.Events(testContext(t), review.Filter{Text: token, User: user, NewestFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || len(evs) != 2 || !evs[0].Timestamp.After(evs[1].Timestamp) {
		t.Fatalf("search for output text found %d (total %d), newest first? %+v", len(evs), total, evs)
	}
}

// TestFollow drives a live session: events and the session document are
// updated while Follow polls, and Follow must deliver each new event once,
// in order, and stop when the session ends.
func TestFollow(t *testing.T) {
	f, c := newClient(t)
	id := reviewtest.UniqueID("s-")
	m, events, doc := reviewtest.SampleSession(id, reviewtest.UniqueID("u"), schema.StatusActive)
	f.PutSession(doc)
	f.IndexEvents(m, events[:2]...)

	var mu sync.Mutex
	var got []int64
	delivered := func() []int64 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	type result struct {
		s   review.Session
		err error
	}
	done := make(chan result, 1)
	ctx := testContext(t)
	go func() {
		s, err := c.Follow(ctx, id, review.FollowOptions{Interval: 50 * time.Millisecond, OnEvents: func(evs []review.Event) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, seqs(evs)...)
			return nil
		}})
		done <- result{s, err}
	}()
	waitFor := func(want []int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !slices.Equal(delivered(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("delivered %v, want %v", delivered(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor([]int64{0, 1})
	f.IndexEvents(m, events[2:4]...)
	waitFor([]int64{0, 1, 2, 3})
	select {
	case r := <-done:
		t.Fatalf("Follow returned while the session is active: %+v", r)
	default:
	}

	f.IndexEvents(m, events[4:]...)
	_, _, ended := reviewtest.SampleSession(id, m.User, schema.StatusEnded)
	f.PutSession(ended)
	select {
	case r := <-done:
		if r.err != nil || r.s.Status != schema.StatusEnded {
			t.Fatalf("Follow = %+v, want the ended session", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Follow did not stop after the session ended")
	}
	if want := []int64{0, 1, 2, 3, 4, 5}; !slices.Equal(delivered(), want) {
		t.Errorf("delivered %v, want %v (each once, in order)", delivered(), want)
	}
}

func TestFollowStopsOnCancel(t *testing.T) {
	f, c := newClient(t)
	id := reviewtest.UniqueID("s-")
	_, _, doc := reviewtest.SampleSession(id, "alice", schema.StatusActive)
	f.PutSession(doc)
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() {
		_, err := c.Follow(ctx, id, review.FollowOptions{Interval: 20 * time.Millisecond, OnEvents: func([]review.Event) error { return nil }})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Follow after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Follow ignored cancellation")
	}
	if _, err := c.Follow(testContext(t), "no-such-"+id, review.FollowOptions{Interval: time.Millisecond}); !errors.Is(err, review.ErrNoSession) {
		t.Errorf("Follow of an unknown session = %v, want ErrNoSession", err)
	}
}
