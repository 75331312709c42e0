// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/sessionsindex"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// testClock is a settable clock shared by the processor's goroutines.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *testClock) Now() time.Time                    { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) advance(d time.Duration)           { c.ns.Add(int64(d)) }
func (c *testClock) at(offset time.Duration) time.Time { return c.start().Add(offset) }
func (c *testClock) start() time.Time {
	return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
}

// goldenInput is testdata/sessions/input.json.
type goldenInput struct {
	Sessions map[string]map[string]any `json:"sessions"`
	Steps    []struct {
		Advance  string         `json:"advance"`
		Send     []goldenRecord `json:"send"`
		Snapshot string         `json:"snapshot"`
		Restart  bool           `json:"restart"`
	} `json:"steps"`
}

type goldenRecord struct {
	Session string         `json:"s"`
	Seq     int64          `json:"seq"`
	Event   string         `json:"event"`
	At      string         `json:"at"`
	Attrs   map[string]any `json:"attrs"`
}

func putAttrs(t *testing.T, m pcommon.Map, attrs map[string]any) {
	t.Helper()
	for k, v := range attrs {
		switch v := v.(type) {
		case string:
			m.PutStr(k, v)
		case float64:
			if v == math.Trunc(v) && k != schema.AttrDurationMs {
				m.PutInt(k, int64(v))
			} else {
				m.PutDouble(k, v)
			}
		case bool:
			m.PutBool(k, v)
		default:
			t.Fatalf("attribute %s: unsupported JSON value %v", k, v)
		}
	}
}

func (in *goldenInput) logs(t *testing.T, clock *testClock, records []goldenRecord) plog.Logs {
	t.Helper()
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for _, r := range records {
		at, err := time.ParseDuration(r.At)
		require.NoError(t, err)
		rec := sl.LogRecords().AppendEmpty()
		rec.SetEventName(r.Event)
		rec.SetTimestamp(pcommon.NewTimestampFromTime(clock.at(at)))
		rec.Attributes().PutStr(schema.AttrSessionID, r.Session)
		rec.Attributes().PutInt(schema.AttrSeq, r.Seq)
		putAttrs(t, rec.Attributes(), in.Sessions[r.Session])
		putAttrs(t, rec.Attributes(), r.Attrs)
	}
	return ld
}

// startGoldenProcessor starts a processor on store, the state every
// collector shares; a "restart" is a new processor on the same store.
func startGoldenProcessor(t *testing.T, clock *testClock, store *sessionsindex.Memory, sink *consumertest.LogsSink) testProcessor {
	t.Helper()
	p := newTestProcessor(t, createDefaultConfig().(*Config), sink)
	p.now, p.store = clock.Now, store
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	return p
}

// riskAnnotations lists the pam.risk.* attributes of every delivered record
// that has them, by document id.
func riskAnnotations(lds []plog.Logs) []map[string]any {
	var out []map[string]any
	for _, ld := range lds {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, rec := range sl.LogRecords().All() {
					sev, ok := rec.Attributes().Get(schema.AttrRiskSeverity)
					if !ok {
						continue
					}
					id, _ := rec.Attributes().Get(schema.AttrDocumentID)
					rules, _ := rec.Attributes().Get(schema.AttrRiskRules)
					reasons, _ := rec.Attributes().Get(schema.AttrRiskReasons)
					out = append(out, map[string]any{
						"id": id.Str(), schema.AttrRiskSeverity: sev.Str(),
						schema.AttrRiskRules: rules.Slice().AsRaw(), schema.AttrRiskReasons: reasons.Slice().AsRaw(),
					})
				}
			}
		}
	}
	return out
}

// TestSessionsGolden drives the processor through testdata/sessions/input.json
// (status transitions, heartbeats, lost detection, a replay, risk findings,
// summaries, and a restart on the same shared store) and compares the session
// documents at each snapshot and the risk annotations of the delivered events
// with testdata/sessions/expected.json. Regenerate with -update and review
// the diff.
func TestSessionsGolden(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "sessions", "input.json"))
	require.NoError(t, err)
	var in goldenInput
	require.NoError(t, json.Unmarshal(raw, &in))

	clock := newTestClock()
	store := sessionsindex.NewMemory(time.Hour, clock.Now)
	sink := new(consumertest.LogsSink)
	p := startGoldenProcessor(t, clock, store, sink)

	snapshots := map[string]any{}
	var order []string
	for _, step := range in.Steps {
		if step.Advance != "" {
			d, err := time.ParseDuration(step.Advance)
			require.NoError(t, err)
			clock.advance(d)
			// Lost detection as the sweep loop runs it, at a known time.
			require.NoError(t, p.sweep(context.Background()))
		}
		if len(step.Send) > 0 {
			require.NoError(t, p.ConsumeLogs(context.Background(), in.logs(t, clock, step.Send)))
		}
		if step.Restart {
			require.NoError(t, p.Shutdown(context.Background()))
			p = startGoldenProcessor(t, clock, store, new(consumertest.LogsSink))
		}
		if step.Snapshot != "" {
			docs := store.Documents(clock.Now())
			for _, doc := range docs {
				delete(doc, schema.SessionState) // the merge bookkeeping; the visible fields are the contract
			}
			snapshots[step.Snapshot] = docs
			order = append(order, step.Snapshot)
		}
	}
	require.NoError(t, p.Shutdown(context.Background()))
	require.True(t, slices.IsSorted(order), "snapshot names must sort in step order")

	got, err := json.MarshalIndent(map[string]any{
		"snapshots":        snapshots,
		"risk_annotations": riskAnnotations(sink.AllLogs()),
	}, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	golden := filepath.Join("testdata", "sessions", "expected.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o600))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run `go test -run TestSessionsGolden -update` to create it")
	assert.Equal(t, string(want), string(bytes.TrimSpace(got))+"\n")
}
