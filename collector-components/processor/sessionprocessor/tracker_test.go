// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

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
		assert.Equal(t, want, statusForEndReason(reason), "reason %q", reason)
	}
}

func TestObjectScanners(t *testing.T) {
	tests := []struct {
		text            string
		tables, dropped objectSet
		files, hosts    objectSet
	}{
		{text: "SELECT * FROM public.orders o JOIN customers c ON true", tables: objectSet{"public.orders", "customers"}},
		{text: "DROP TABLE IF EXISTS old_data; TRUNCATE TABLE staging", tables: objectSet{"old_data", "staging"}, dropped: objectSet{"old_data"}},
		{text: "SELECT * FROM (SELECT 1) AS x", tables: nil},
		{text: "INSERT INTO audit VALUES (1)", tables: objectSet{"audit"}},
		{text: "scp /etc/hosts eve@203.0.113.9:/tmp/", files: objectSet{"/etc/hosts"}, hosts: objectSet{"203.0.113.9"}},
		{text: "curl -s https://user@api.example.com:8443/v1 -o ~/out.json", files: objectSet{"~/out.json"}, hosts: objectSet{"api.example.com"}},
		{text: "rsync -a data/ backup:/srv/", hosts: objectSet{"backup"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			var tables, dropped, files, hosts objectSet
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

func TestSweepRetention(t *testing.T) {
	clock := newTestClock()
	cfg := createDefaultConfig().(*Config)
	tr := newTracker(cfg, builtinRules(t), clock.Now)
	tr.sessions["done"] = &sessionState{ID: "done", Status: schema.StatusEnded, LastReceived: clock.Now()}
	tr.sessions["unwritten"] = &sessionState{ID: "unwritten", Status: schema.StatusEnded, LastReceived: clock.Now()}
	tr.unwritten["unwritten"] = true
	tr.sessions["summarizing"] = &sessionState{ID: "summarizing", Status: schema.StatusFailed, LastReceived: clock.Now(), SummaryPending: true}
	tr.sessions["live"] = &sessionState{ID: "live", Status: schema.StatusActive, LastReceived: clock.Now()}

	clock.advance(cfg.lostAfter() - time.Nanosecond)
	assert.False(t, tr.sweep(), "nothing is due before the lost window")

	clock.advance(cfg.Retention)
	assert.True(t, tr.sweep())
	assert.NotContains(t, tr.sessions, "done", "finished, written and summarized: forgotten")
	assert.True(t, tr.removed["done"], "and deleted from storage at the next persist")
	assert.Contains(t, tr.sessions, "unwritten", "kept until its document is written")
	assert.Contains(t, tr.sessions, "summarizing", "kept until its summary is stored")
	assert.Equal(t, schema.StatusLost, tr.sessions["live"].Status)
	assert.True(t, tr.toSummarize["live"], "a lost session gets a summary")
}
