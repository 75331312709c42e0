package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pamtrail/pamtrail/gateway/porttest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Field paths of the exporter's otel mapping mode, as documented in
// dashboards/elasticsearch/README.md.
const (
	fieldSessionID = "attributes." + schema.AttrSessionID
	fieldSeq       = "attributes." + schema.AttrSeq
	fieldQueryText = "attributes." + schema.AttrDBQueryText
	fieldViolation = "attributes.pam.schema.violation"
	fieldBody      = "body.text"
	fieldEventName = "event_name"
	fieldTimestamp = "@timestamp"
)

// indexTimeout bounds the wait for documents: a 1 s processor flush, the
// exporter's 1 s batch and an index refresh, with room for a slow machine.
const indexTimeout = 60 * time.Second

func TestCollectorIndexesEachRecordOnce(t *testing.T) {
	esURL := elasticsearchURL(t)
	es := newESClient(t, esURL)
	col := startCollector(t, esURL)
	sender := newOTLPSender(t, col.OTLPAddr)

	sessionID := "e2e-" + randomHex(t)
	token := "tok" + randomHex(t) // a word no other test run indexes
	const records = 5
	first := sessionRecords(sessionID, token, 0, records)
	sender.send(first)

	hits := es.waitHits(indexTimeout, term(fieldSessionID, sessionID), records)
	for _, h := range hits {
		seq, ok := h.Source["attributes"].(map[string]any)[schema.AttrSeq].(float64)
		if !ok {
			t.Fatalf("document %s has no numeric %s: %v", h.ID, fieldSeq, h.Source)
		}
		if want := fmt.Sprintf("%s:%d", sessionID, int64(seq)); h.ID != want {
			t.Errorf("document _id = %q, want %q (session.id:pam.seq)", h.ID, want)
		}
		if _, ok := h.Source["attributes"].(map[string]any)[schema.AttrDocumentID]; ok {
			t.Errorf("document %s carries %s in its source; the exporter should strip it", h.ID, schema.AttrDocumentID)
		}
	}

	// Replay the whole batch, as a gateway does after a lost acknowledgement,
	// together with one new record in the same request: once the new record
	// is searchable, the replayed ones went through the same bulk request.
	replay := sessionRecords(sessionID, token, 0, records+1)
	sender.send(replay)
	hits = es.waitHits(indexTimeout, term(fieldSessionID, sessionID), records+1)
	seen := map[string]int{}
	for _, h := range hits {
		seen[h.ID]++
	}
	for seq := 0; seq <= records; seq++ {
		if id := fmt.Sprintf("%s:%d", sessionID, seq); seen[id] != 1 {
			t.Errorf("document %s indexed %d times, want exactly once", id, seen[id])
		}
	}

	t.Run("full-text search of query text", func(t *testing.T) {
		// Only seq 3's query text contains the word <token>3.
		hits, err := es.search(and(term(fieldSessionID, sessionID), match(fieldQueryText, token+"3")))
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 1 || hits[0].ID != sessionID+":3" {
			t.Fatalf("full-text search for %q: got %d hits %v, want only %s:3", token+"3", len(hits), hits, sessionID)
		}
		hits, err = es.search(and(term(fieldSessionID, sessionID), match(fieldBody, token+"3")))
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 1 {
			t.Fatalf("full-text search of %s: got %d hits, want 1", fieldBody, len(hits))
		}
	})

	t.Run("documented field paths", func(t *testing.T) {
		hits, err := es.search(and(term(fieldSessionID, sessionID), term(fieldSeq, 0), term(fieldEventName, schema.EventSessionStart)))
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 1 {
			t.Fatalf("term queries on %s, %s and %s: got %d hits, want 1", fieldSessionID, fieldSeq, fieldEventName, len(hits))
		}
		src := hits[0].Source
		if ts, _ := src[fieldTimestamp].(string); ts == "" {
			t.Errorf("%s missing from %v", fieldTimestamp, src)
		}
		if got := src["resource"].(map[string]any)["attributes"].(map[string]any)["service.name"]; got != "pamtrail-gateway" {
			t.Errorf("resource.attributes.service.name = %v", got)
		}
	})
}

func TestCollectorFlagsRecordsWithoutSession(t *testing.T) {
	esURL := elasticsearchURL(t)
	es := newESClient(t, esURL)
	col := startCollector(t, esURL)
	sender := newOTLPSender(t, col.OTLPAddr)

	token := "nosession" + randomHex(t)
	ld := sessionRecords("unused", token, 1, 1) // one query record, seq 1
	rec := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	rec.Attributes().Remove(schema.AttrSessionID)
	sender.send(ld)

	// Passed through, not lost: indexed with an Elasticsearch-chosen id and
	// the violation flag.
	hits := es.waitHits(indexTimeout, and(match(fieldQueryText, token+"1"), term(fieldViolation, true)), 1)
	if strings.Contains(hits[0].ID, ":") {
		t.Errorf("a record without session.id got the document id %q; want an Elasticsearch-generated one", hits[0].ID)
	}
	// The processor's own counter reaches the collector's Prometheus endpoint.
	// This collector saw exactly one such record.
	waitFor(t, 30*time.Second, func() (bool, string) {
		body, err := col.metrics()
		if err != nil {
			return false, err.Error()
		}
		if v := metricValue(body, "otelcol_pamtrail_processor_records_without_session"); v != "" {
			return v == "1", "otelcol_pamtrail_processor_records_without_session = " + v
		}
		return false, "otelcol_pamtrail_processor_records_without_session not among the collector's metrics:\n" + body
	})
}

// TestCollectorQueueSurvivesCrash checks the durable path: records the
// collector accepted while Elasticsearch was unreachable are in the fsynced
// persistent queue, and a collector restarted after a crash delivers them.
//
// It crashes the collector rather than stopping it: while Elasticsearch is
// down, the exporter retries its in-flight request for as long as
// retry::max_retries allows and a graceful shutdown waits for that (see
// dashboards/elasticsearch/README.md, "Delivery guarantees").
func TestCollectorQueueSurvivesCrash(t *testing.T) {
	esURL := elasticsearchURL(t)
	es := newESClient(t, esURL)
	home := t.TempDir()
	unreachable := "http://" + porttest.Addr(t) // nothing listens there

	// The session state is merged into the reachable cluster: the
	// acknowledgement needs it, and this test is about the exporter's queue.
	down := startCollectorIn(t, home, unreachable, "processors::session::sessions_index::endpoint="+esURL)
	sessionID := "e2e-" + randomHex(t)
	const records = 3
	newOTLPSender(t, down.OTLPAddr).send(sessionRecords(sessionID, "restart", 0, records))
	// Wait until the processor has handed the batch to the exporter's queue.
	waitFor(t, 30*time.Second, func() (bool, string) {
		body, err := down.metrics()
		if err != nil {
			return false, err.Error()
		}
		return metricValue(body, "otelcol_pamtrail_processor_pending_records") == "0", "records still buffered in the processor"
	})
	down.crash()

	startCollectorIn(t, home, esURL)
	es.waitHits(indexTimeout, term(fieldSessionID, sessionID), records)
}

// metricValue returns the value of the first sample of name in a Prometheus
// exposition, or "" when there is none.
func metricValue(exposition, name string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
			fields := strings.Fields(line)
			return fields[len(fields)-1]
		}
	}
	return ""
}

// sessionRecords builds the records seq first..first+count-1 of one session:
// a session start for seq 0, then queries whose text includes token+seq.
func sessionRecords(sessionID, token string, first, count int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "pamtrail-gateway")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/pamtrail/pamtrail/gateway/recorder")
	start := time.Now().Add(-time.Minute)
	for seq := first; seq < first+count; seq++ {
		rec := sl.LogRecords().AppendEmpty()
		rec.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(seq) * time.Millisecond)))
		attrs := rec.Attributes()
		attrs.PutStr(schema.AttrSessionID, sessionID)
		attrs.PutInt(schema.AttrSeq, int64(seq))
		attrs.PutStr(schema.AttrUserName, "alice")
		attrs.PutStr(schema.AttrResourceType, schema.ResourcePostgres)
		if seq == 0 {
			rec.SetEventName(schema.EventSessionStart)
			rec.Body().SetStr("postgres session started by alice on demo-postgres")
			continue
		}
		query := fmt.Sprintf("SELECT salary FROM payroll WHERE note = '%s%d'", token, seq)
		rec.SetEventName(schema.EventDBQuery)
		rec.Body().SetStr(query)
		attrs.PutStr(schema.AttrDBQueryText, query)
		attrs.PutStr(schema.AttrResponseText, "SELECT 1")
		attrs.PutDouble(schema.AttrDurationMs, 1.25)
	}
	return ld
}

// otlpSender exports logs over OTLP/gRPC the way the gateway's uploader does.
type otlpSender struct {
	t      *testing.T
	client plogotlp.GRPCClient
}

func newOTLPSender(t *testing.T, addr string) *otlpSender {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &otlpSender{t: t, client: plogotlp.NewGRPCClient(conn)}
}

func (s *otlpSender) send(ld plog.Logs) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.client.Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
	if err != nil {
		s.t.Fatalf("OTLP export: %v", err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedLogRecords() != 0 {
		s.t.Fatalf("OTLP export rejected %d records: %s", ps.RejectedLogRecords(), ps.ErrorMessage())
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
