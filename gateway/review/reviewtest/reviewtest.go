// Package reviewtest writes fixture sessions into the real Elasticsearch for
// tests of `pamtrail sessions` and its review package: events shaped exactly
// like the collector's exporter writes them (otel mapping mode, into the
// pamtrail-events data stream) and session documents like the session
// processor's.
package reviewtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/schema"
	"github.com/pamtrail/pamtrail/gateway/setup"
)

// SessionsIndex is where fixture session documents go. It matches
// schema.SessionsIndexPattern, so readers find it like the real index; the
// explicit mapping below makes the tests independent of whether the
// sessions template is installed yet (an installed template merges in).
const SessionsIndex = schema.SessionsIndex + "-reviewtest"

// sessionsMapping types the fields the review package sorts and filters on
// as the sessions template does.
const sessionsMapping = `{"mappings": {"properties": {
  "session_id": {"type": "keyword"}, "user": {"type": "keyword"}, "account": {"type": "keyword"},
  "resource_type": {"type": "keyword"}, "client_address": {"type": "keyword"}, "gateway_id": {"type": "keyword"},
  "status": {"type": "keyword"}, "end_reason": {"type": "keyword"}, "risk_level": {"type": "keyword"},
  "start_time": {"type": "date"}, "end_time": {"type": "date"}, "last_seen": {"type": "date"}, "last_activity": {"type": "date"}, "updated_at": {"type": "date"},
  "duration_ms": {"type": "double"},
  "count_queries": {"type": "long"}, "count_commands": {"type": "long"}, "count_errors": {"type": "long"},
  "bytes_in": {"type": "long"}, "bytes_out": {"type": "long"},
  "risk_findings": {"properties": {"rule_id": {"type": "keyword"}, "severity": {"type": "keyword"}, "reason": {"type": "text"}, "seq": {"type": "long"}}},
  "summary": {"properties": {"text": {"type": "text"}, "provider": {"type": "keyword"}, "fallback_reason": {"type": "keyword"},
    "generated_at": {"type": "date"}, "warnings": {"properties": {"text": {"type": "text"}, "seq": {"type": "long"}}}}}
}}}`

// Fixture writes fixtures into the real Elasticsearch.
type Fixture struct {
	t   testing.TB
	URL string
	ES  *elasticsearch.Client
	// transport is closed at cleanup so that goleak-checked packages do
	// not see idle keep-alive goroutines.
	transport *http.Transport
}

// New installs pamtrail's templates (so pamtrail-events is a data stream
// with the real mappings) and makes sure the fixture sessions index exists.
func New(t testing.TB) *Fixture {
	t.Helper()
	url := testenv.Elasticsearch(t)
	tr := &http.Transport{}
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	f := &Fixture{t: t, URL: url, ES: es, transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	ctx := f.ctx()
	if err := setup.InstallElasticsearch(ctx, es, setup.ElasticsearchOptions{}); err != nil {
		t.Fatalf("installing pamtrail templates into %s: %v", url, err)
	}
	res, err := es.Indices.Create(SessionsIndex, es.Indices.Create.WithBody(strings.NewReader(sessionsMapping)),
		es.Indices.Create.WithContext(ctx))
	if err != nil {
		t.Fatalf("creating %s: %v", SessionsIndex, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.IsError() && !strings.Contains(string(body), "resource_already_exists_exception") {
		t.Fatalf("creating %s: %s: %s", SessionsIndex, res.Status(), body)
	}
	return f
}

func (f *Fixture) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	f.t.Cleanup(cancel)
	return ctx
}

// UniqueID returns prefix followed by random hex: ids and user names that
// no other test (or earlier run) has written.
func UniqueID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Event is one fixture record: the session attributes are added by
// IndexEvents.
type Event struct {
	Seq   int64
	Time  time.Time
	Name  string
	Body  string
	Attrs map[string]any
}

// SessionMeta is what every record of a fixture session carries.
type SessionMeta struct {
	ID, User, Account, ResourceType, GatewayID, ClientAddress string
}

// ExporterDocument renders e as the elasticsearch exporter writes a log
// record in otel mapping mode: epoch-millisecond timestamps as strings,
// dotted attribute keys kept flat, the body under body.text.
func ExporterDocument(m SessionMeta, e Event) map[string]any {
	attrs := map[string]any{
		schema.AttrSessionID: m.ID, schema.AttrSeq: e.Seq, schema.AttrUserName: m.User,
		schema.AttrAccount: m.Account, schema.AttrResourceType: m.ResourceType,
		schema.AttrGatewayID: m.GatewayID, schema.AttrClientAddr: m.ClientAddress,
	}
	for k, v := range e.Attrs {
		attrs[k] = v
	}
	ts := epochMillis(e.Time)
	doc := map[string]any{
		"@timestamp":         ts,
		"observed_timestamp": ts,
		"severity_text":      "INFO",
		"severity_number":    9,
		"event_name":         e.Name,
		"attributes":         attrs,
		"resource":           map[string]any{"attributes": map[string]any{"service.name": "pamtrail-gateway", "pam.gateway.id": m.GatewayID}},
		"scope":              map[string]any{"name": "github.com/pamtrail/pamtrail/gateway/recorder"},
	}
	if e.Body != "" {
		doc["body"] = map[string]any{"text": e.Body}
	}
	return doc
}

func epochMillis(t time.Time) string {
	ns := t.UnixNano()
	return strconv.FormatInt(ns/1e6, 10) + "." + fmt.Sprintf("%06d", ns%1e6)
}

// IndexEvents creates the events in the pamtrail-events data stream with
// the exporter's document ids (<session.id>:<pam.seq>) and makes them
// searchable.
func (f *Fixture) IndexEvents(m SessionMeta, events ...Event) {
	f.t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range events {
		_ = enc.Encode(map[string]any{"create": map[string]any{"_id": fmt.Sprintf("%s:%d", m.ID, e.Seq)}})
		if err := enc.Encode(ExporterDocument(m, e)); err != nil {
			f.t.Fatal(err)
		}
	}
	ctx := f.ctx()
	res, err := f.ES.Bulk(&buf, f.ES.Bulk.WithIndex(schema.EventsIndex), f.ES.Bulk.WithRefresh("true"),
		f.ES.Bulk.WithRequireDataStream(true), f.ES.Bulk.WithContext(ctx))
	if err != nil {
		f.t.Fatalf("bulk into %s: %v", schema.EventsIndex, err)
	}
	defer res.Body.Close()
	var out struct {
		Errors bool             `json:"errors"`
		Items  []map[string]any `json:"items"`
	}
	raw, _ := io.ReadAll(res.Body)
	if res.IsError() || json.Unmarshal(raw, &out) != nil || out.Errors {
		f.t.Fatalf("bulk into %s: %s: %.2000s", schema.EventsIndex, res.Status(), raw)
	}
}

// PutSession writes (or replaces) a session document, _id = session id, as
// the session processor does, and makes it searchable.
func (f *Fixture) PutSession(doc map[string]any) {
	f.t.Helper()
	id, _ := doc[schema.SessionID].(string)
	body, err := json.Marshal(doc)
	if err != nil {
		f.t.Fatal(err)
	}
	res, err := f.ES.Index(SessionsIndex, bytes.NewReader(body), f.ES.Index.WithDocumentID(id),
		f.ES.Index.WithRefresh("true"), f.ES.Index.WithContext(f.ctx()))
	if err != nil {
		f.t.Fatalf("indexing session %s: %v", id, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		raw, _ := io.ReadAll(res.Body)
		f.t.Fatalf("indexing session %s: %s: %s", id, res.Status(), raw)
	}
}
