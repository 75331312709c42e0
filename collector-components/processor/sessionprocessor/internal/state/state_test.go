// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package state

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

func TestStatusForEndReason(t *testing.T) {
	tests := map[string]string{
		schema.EndClientQuit:     schema.StatusEnded,
		schema.EndUpstreamClosed: schema.StatusEnded,
		schema.EndIdleTimeout:    schema.StatusEnded,
		schema.EndMaxDuration:    schema.StatusEnded,
		schema.EndShutdown:       schema.StatusEnded,
		"":                       schema.StatusEnded,
		schema.EndProtocolError:  schema.StatusFailed,
		schema.EndNetworkError:   schema.StatusFailed,
		schema.EndRecordingError: schema.StatusFailed,
	}
	for reason, want := range tests {
		assert.Equal(t, want, StatusForEndReason(reason), "reason %q", reason)
	}
}

func TestObjectScanners(t *testing.T) {
	tests := []struct {
		text            string
		tables, dropped ObjectSet
		files, hosts    ObjectSet
	}{
		{text: "SELECT * FROM public.orders o JOIN customers c ON true", tables: ObjectSet{"customers", "public.orders"}},
		{text: "DROP TABLE IF EXISTS old_data; TRUNCATE TABLE staging", tables: ObjectSet{"old_data", "staging"}, dropped: ObjectSet{"old_data"}},
		{text: "SELECT * FROM (SELECT 1) AS x", tables: nil},
		{text: "INSERT INTO audit VALUES (1)", tables: ObjectSet{"audit"}},
		{text: "scp /etc/hosts eve@203.0.113.9:/tmp/", files: ObjectSet{"/etc/hosts"}, hosts: ObjectSet{"203.0.113.9"}},
		{text: "curl -s https://user@api.example.com:8443/v1 -o ~/out.json", files: ObjectSet{"~/out.json"}, hosts: ObjectSet{"api.example.com"}},
		{text: "rsync -a data/ backup:/srv/", hosts: ObjectSet{"backup"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			var tables, dropped, files, hosts ObjectSet
			sqlTables(tt.text, &tables, &dropped)
			if tt.files == nil && tt.hosts == nil {
				assert.Equal(t, tt.tables, tables)
				assert.Equal(t, tt.dropped, dropped)
				return
			}
			shellObjects(tt.text, &files, &hosts)
			assert.Equal(t, tt.files, files)
			assert.Equal(t, tt.hosts, hosts)
		})
	}
}

// sessionRecords is a session as a gateway records it: start, queries (one
// failing, one risky), heartbeats, end.
func sessionRecords() []Observation {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	obs := []Observation{{Seq: 0, Event: schema.EventSessionStart, Time: t0, User: "alice", ServerAddress: "db:5432"}}
	for seq := int64(1); seq < 60; seq++ {
		o := Observation{Seq: seq, Event: schema.EventDBQuery, Time: t0.Add(time.Duration(seq) * time.Second), Query: true,
			User: "alice", Tables: []string{"t" + strconv.FormatInt(seq%25, 10)}}
		switch {
		case seq%10 == 0:
			// A heartbeat repeats the seq of the latest event, and may
			// come before it.
			obs = append(obs, Observation{Seq: seq, Event: schema.EventHeartbeat, Time: o.Time.Add(time.Second / 2),
				Reported: Counts{Queries: seq, BytesIn: 10 * seq, BytesOut: 100 * seq}})
		case seq%7 == 0:
			o.Error = true
		case seq%13 == 0:
			o.RiskLevel = 3
			o.Findings = []Finding{{RuleID: "sql.drop_object", Severity: "high", Seq: seq}}
		}
		obs = append(obs, o)
	}
	return append(obs, Observation{Seq: 60, Event: schema.EventSessionEnd, Time: t0.Add(time.Minute),
		End: &EndInfo{Reason: schema.EndClientQuit, DurationMs: 60000}})
}

// TestMergeIsExactHoweverRecordsAreSpread splits one session's records over
// three "collectors" in random requests, replays some, and merges them in
// random order: the state must equal merging everything once, in order.
func TestMergeIsExactHoweverRecordsAreSpread(t *testing.T) {
	records := sessionRecords()
	now := time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)
	want := New("s")
	Merge(want, records, now, 200)

	for seed := uint64(0); seed < 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		var requests [][]Observation
		for i := 0; i < len(records); {
			n := 1 + rng.IntN(8)
			requests = append(requests, records[i:min(i+n, len(records))])
			if rng.IntN(4) == 0 { // the gateway retries: the request arrives twice
				requests = append(requests, records[i:min(i+n, len(records))])
			}
			i += n
		}
		rng.Shuffle(len(requests), func(i, j int) { requests[i], requests[j] = requests[j], requests[i] })
		got := New("s")
		for _, r := range requests {
			Merge(got, r, now, 200)
		}
		require.Equal(t, want, got, "seed %d", seed)
	}
	assert.Equal(t, schema.StatusEnded, want.Status)
	assert.True(t, want.Complete())
	assert.Equal(t, int64(59), want.Queries, "a heartbeat repeating a seq must not hide its event")
	assert.Equal(t, int64(500), want.BytesIn, "the latest heartbeat's running total")
	assert.Equal(t, time.Date(2026, 12, 3, 10, 0, 59, 0, time.UTC), want.LastActivity)
	assert.Equal(t, int64(8), want.Errors)
	assert.Len(t, want.Findings, 4)
}

func TestLostAndBack(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	s := New("s")
	Merge(s, []Observation{{Seq: 0, Event: schema.EventSessionStart, Time: t0}}, t0, 10)
	assert.False(t, MarkLost(s, t0.Add(29*time.Second), 30*time.Second), "not silent long enough")
	require.True(t, MarkLost(s, t0.Add(30*time.Second), 30*time.Second))
	assert.True(t, s.SummaryPending)
	assert.True(t, SummaryDue(s, t0.Add(30*time.Second), time.Hour), "a lost session gets its provisional summary")
	require.True(t, SetSummary(s, &Summary{Text: "lost"}))

	Merge(s, []Observation{{Seq: 0, Event: schema.EventSessionStart}}, t0.Add(time.Minute), 10)
	assert.Equal(t, schema.StatusLost, s.Status, "a replay proves nothing about the session")
	Merge(s, []Observation{{Seq: 0, Event: schema.EventHeartbeat, Time: t0}}, t0.Add(time.Minute), 10)
	assert.Equal(t, schema.StatusLost, s.Status, "a replayed heartbeat proves nothing either")
	Merge(s, []Observation{{Seq: 0, Event: schema.EventHeartbeat, Time: t0.Add(time.Minute)}}, t0.Add(time.Minute), 10)
	assert.Equal(t, schema.StatusActive, s.Status, "a new heartbeat brings it back")
	assert.Nil(t, s.Summary, "the provisional summary no longer applies")

	Merge(s, []Observation{{Seq: 2, Event: schema.EventSessionEnd, End: &EndInfo{Reason: schema.EndClientQuit}}}, t0.Add(time.Minute), 10)
	assert.Equal(t, schema.StatusEnded, s.Status)
	assert.False(t, s.Complete(), "seq 1 is missing")
	assert.False(t, SummaryDue(s, t0.Add(time.Minute), 30*time.Second), "waits for seq 1")
	assert.True(t, SummaryDue(s, t0.Add(90*time.Second), 30*time.Second), "or for silence")
	Merge(s, []Observation{{Seq: 1, Event: schema.EventDBQuery, Query: true}}, t0.Add(time.Minute), 10)
	assert.True(t, SummaryDue(s, t0.Add(time.Minute), 30*time.Second), "complete")
	assert.False(t, MarkLost(s, t0.Add(time.Hour), 30*time.Second), "an ended session is never lost")
	require.True(t, SetSummary(s, &Summary{Text: "first"}))
	assert.False(t, SetSummary(s, &Summary{Text: "second"}), "the summary is written once")
}

func TestFindingsCapCountsTheRest(t *testing.T) {
	s := New("s")
	var obs []Observation
	for seq := int64(0); seq < 5; seq++ {
		obs = append(obs, Observation{Seq: seq, Event: schema.EventDBQuery, Findings: []Finding{{RuleID: "r", Seq: seq}}})
	}
	Merge(s, obs, time.Now(), 3)
	Merge(s, obs, time.Now(), 3)
	assert.Len(t, s.Findings, 3)
	assert.Equal(t, 2, s.FindingsDropped)
}

func TestDocumentRoundTrip(t *testing.T) {
	s := New("s")
	Merge(s, sessionRecords(), time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC), 200)
	raw, err := json.Marshal(s.Document(time.Now()))
	require.NoError(t, err)
	back, err := FromDocument("s", raw)
	require.NoError(t, err)
	assert.Equal(t, s, back)
	fresh, err := FromDocument("s", []byte(`{"session_id": "s", "status": "ended"}`))
	require.NoError(t, err)
	assert.Equal(t, New("s"), fresh, "a document without state")
}
