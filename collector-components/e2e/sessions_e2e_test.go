package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Short cadence for the sessions tests: heartbeats every second, lost after
// three missed ones.
var sessionOverrides = []string{
	"processors::session::heartbeat_interval=1s",
	"processors::session::lost_after_heartbeats=3",
}

// TestCollectorSessionsIndex sends a PostgreSQL session that drops a table and
// changes a role password over OTLP and follows its document in
// pamtrail-sessions: active while it runs, ended with findings and a rules
// summary after it. A second session that stops heartbeating becomes lost.
func TestCollectorSessionsIndex(t *testing.T) {
	esURL := elasticsearchURL(t)
	es := newESClient(t, esURL)
	col := startCollector(t, esURL, sessionOverrides...)
	sender := newOTLPSender(t, col.OTLPAddr)

	live := "e2e-live-" + randomHex(t)
	table := "payroll_" + randomHex(t)
	g := newSessionGen(live)
	sender.send(g.records(
		g.event(schema.EventSessionStart, nil),
		g.event(schema.EventDBQuery, map[string]any{schema.AttrDBQueryText: "SELECT count(*) FROM " + table + " WHERE id = 1"}),
		g.event(schema.EventDBQuery, map[string]any{schema.AttrDBQueryText: "DROP TABLE " + table}),
		g.event(schema.EventDBQuery, map[string]any{schema.AttrDBQueryText: "ALTER ROLE x PASSWORD '[REDACTED]'"}),
	))
	stopHeartbeats := g.heartbeat(t, sender, 300*time.Millisecond)

	doc := es.waitSessionDoc(t, live, func(d map[string]any) (bool, string) {
		return d[schema.SessionStatus] == schema.StatusActive && d[schema.SessionRiskLevel] == "high",
			fmt.Sprintf("status %v risk %v", d[schema.SessionStatus], d[schema.SessionRiskLevel])
	})
	findings := map[string]float64{}
	for _, f := range doc[schema.SessionRiskFindings].([]any) {
		f := f.(map[string]any)
		findings[f["rule_id"].(string)] = f["seq"].(float64)
	}
	if findings["sql.drop_object"] != 2 || findings["sql.role_change"] != 3 {
		t.Errorf("risk_findings = %v; want sql.drop_object at seq 2 and sql.role_change at seq 3", doc[schema.SessionRiskFindings])
	}
	// The findings are also on the events themselves.
	es.waitHits(indexTimeout, and(term(fieldSessionID, live), term("attributes."+schema.AttrRiskSeverity, "high")), 2)

	stopHeartbeats()
	sender.send(g.records(g.event(schema.EventSessionEnd, map[string]any{
		schema.AttrEndReason: schema.EndClientQuit, schema.AttrQueryCount: int64(3),
	})))
	doc = es.waitSessionDoc(t, live, func(d map[string]any) (bool, string) {
		return d[schema.SessionStatus] == schema.StatusEnded && d[schema.SessionSummary] != nil,
			fmt.Sprintf("status %v summary %v", d[schema.SessionStatus], d[schema.SessionSummary])
	})
	summary := doc[schema.SessionSummary].(map[string]any)
	if summary["provider"] != "rules" || !strings.Contains(summary["text"].(string), table) {
		t.Errorf("summary = %v; want a rules summary naming the dropped table %s", summary, table)
	}
	if doc[schema.SessionRiskLevel] != "high" || doc[schema.SessionQueries] != float64(3) {
		t.Errorf("final document: risk_level %v count_queries %v", doc[schema.SessionRiskLevel], doc[schema.SessionQueries])
	}

	// A session whose gateway died: no end, no more heartbeats.
	silent := "e2e-silent-" + randomHex(t)
	sg := newSessionGen(silent)
	sender.send(sg.records(sg.event(schema.EventSessionStart, nil)))
	start := time.Now()
	es.waitSessionDoc(t, silent, func(d map[string]any) (bool, string) {
		return d[schema.SessionStatus] == schema.StatusLost, fmt.Sprintf("status %v", d[schema.SessionStatus])
	})
	// 3 s window + half a heartbeat of sweep granularity + writer + refresh.
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the silent session became lost after %s; the window is 3 s", took)
	}
}

// sessionGen numbers the records of one synthetic session.
type sessionGen struct {
	mu  sync.Mutex
	id  string
	seq int64
}

func newSessionGen(id string) *sessionGen { return &sessionGen{id: id} }

type genRecord struct {
	event string
	seq   int64
	attrs map[string]any
}

func (g *sessionGen) event(name string, attrs map[string]any) genRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := genRecord{event: name, seq: g.seq, attrs: attrs}
	g.seq++
	return r
}

func (g *sessionGen) records(recs ...genRecord) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "pamtrail-gateway")
	sl := rl.ScopeLogs().AppendEmpty()
	for _, r := range recs {
		rec := sl.LogRecords().AppendEmpty()
		rec.SetEventName(r.event)
		rec.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		a := rec.Attributes()
		a.PutStr(schema.AttrSessionID, g.id)
		a.PutInt(schema.AttrSeq, r.seq)
		a.PutStr(schema.AttrUserName, "alice")
		a.PutStr(schema.AttrAccount, "demo-postgres")
		a.PutStr(schema.AttrResourceType, schema.ResourcePostgres)
		a.PutStr(schema.AttrClientAddr, "127.0.0.1")
		for k, v := range r.attrs {
			switch v := v.(type) {
			case string:
				a.PutStr(k, v)
			case int64:
				a.PutInt(k, v)
			}
		}
		if q, ok := r.attrs[schema.AttrDBQueryText].(string); ok {
			rec.Body().SetStr(q)
		}
	}
	return ld
}

// heartbeat sends a heartbeat every period, as the gateway's uploader does,
// until the returned function is called.
func (g *sessionGen) heartbeat(t *testing.T, sender *otlpSender, period time.Duration) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ticker := time.NewTicker(period)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := sender.client.Export(ctx, plogotlp.NewExportRequestFromLogs(g.records(g.event(schema.EventHeartbeat, nil))))
				cancel()
				if err != nil {
					t.Errorf("heartbeat export: %v", err)
					return
				}
			}
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { close(done); <-stopped }) }
	t.Cleanup(stop)
	return stop
}

// waitSessionDoc polls pamtrail-sessions/_doc/<id> until cond holds.
func (c *esClient) waitSessionDoc(t *testing.T, id string, cond func(map[string]any) (bool, string)) map[string]any {
	t.Helper()
	var doc map[string]any
	waitFor(t, indexTimeout, func() (bool, string) {
		res, err := c.es.Get(schema.SessionsIndex, id)
		if err != nil {
			return false, err.Error()
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode == http.StatusNotFound {
			return false, "no document " + id + " in " + schema.SessionsIndex
		}
		if res.IsError() {
			return false, res.Status() + ": " + string(raw)
		}
		var got struct {
			Source map[string]any `json:"_source"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			return false, err.Error()
		}
		doc = got.Source
		ok, msg := cond(doc)
		return ok, "session document " + id + ": " + msg
	})
	return doc
}

// TestCollectorSessionStateSurvivesCrash: a collector is SIGKILLed in the
// middle of a session; the rest of the session goes through another
// collector (its own home, nothing shared but Elasticsearch), and one of the
// first records is retried through it too. The session document holds every
// part: counts once, both findings, ended, one summary naming both tables.
func TestCollectorSessionStateSurvivesCrash(t *testing.T) {
	esURL := elasticsearchURL(t)
	es := newESClient(t, esURL)
	id := "e2e-crash-" + randomHex(t)
	first, second := "ledger_"+randomHex(t), "archive_"+randomHex(t)
	g := newSessionGen(id)
	start := g.event(schema.EventSessionStart, nil)
	truncate := g.event(schema.EventDBQuery, map[string]any{schema.AttrDBQueryText: "TRUNCATE " + first})

	down := startCollector(t, esURL, sessionOverrides...)
	// send returns once the records are in the exporter's queue and the
	// session state they changed is in the sessions index.
	newOTLPSender(t, down.OTLPAddr).send(g.records(start, truncate))
	down.crash()

	other := startCollector(t, esURL, sessionOverrides...)
	newOTLPSender(t, other.OTLPAddr).send(g.records(
		truncate, // the gateway's retry of a request whose answer it never got
		g.event(schema.EventDBQuery, map[string]any{schema.AttrDBQueryText: "DROP TABLE " + second}),
		g.event(schema.EventSessionEnd, map[string]any{schema.AttrEndReason: schema.EndClientQuit}),
	))
	doc := es.waitSessionDoc(t, id, func(d map[string]any) (bool, string) {
		return d[schema.SessionStatus] == schema.StatusEnded && d[schema.SessionSummary] != nil,
			fmt.Sprintf("status %v summary %v", d[schema.SessionStatus], d[schema.SessionSummary])
	})
	text := doc[schema.SessionSummary].(map[string]any)["text"].(string)
	if doc[schema.SessionQueries] != float64(2) || len(doc[schema.SessionRiskFindings].([]any)) != 2 ||
		!strings.Contains(text, first) || !strings.Contains(text, second) {
		t.Errorf("document after the crash: count_queries %v, risk_findings %v, summary %q",
			doc[schema.SessionQueries], doc[schema.SessionRiskFindings], text)
	}
}
