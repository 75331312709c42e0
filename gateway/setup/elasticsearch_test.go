package setup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	templates "github.com/pamtrail/pamtrail/dashboards/elasticsearch"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

func newTestClient(t *testing.T) *elasticsearch.Client {
	t.Helper()
	es, err := NewElasticsearchClient(ClientConfig{URL: testenv.Elasticsearch(t)})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestInstallElasticsearch installs the templates twice into the real
// Elasticsearch, indexes a document shaped like the exporter's otel-mode
// output and checks the field types the dashboards and CLI rely on.
func TestInstallElasticsearch(t *testing.T) {
	es := newTestClient(t)
	ctx := testContext(t)

	for run := 1; run <= 2; run++ {
		var progress bytes.Buffer
		if err := InstallElasticsearch(ctx, es, ElasticsearchOptions{Progress: &progress}); err != nil {
			t.Fatalf("install #%d: %v", run, err)
		}
		for _, want := range []string{"installed component template pamtrail-settings", "installed index template pamtrail-events", "installed index template pamtrail-sessions"} {
			if !strings.Contains(progress.String(), want) {
				t.Errorf("install #%d progress %q lacks %q", run, progress.String(), want)
			}
		}
	}

	sessionID := "setup-test-" + randomHex(t)
	token := "tok" + randomHex(t)
	doc := exporterDocument(t, sessionID, token)
	indexDocument(t, es, sessionID+":3", doc)

	// Replaying the same create is refused, as the exporter relies on.
	res, err := es.Create(schema.EventsIndex, sessionID+":3", bytes.NewReader(doc),
		es.Create.WithRequireDataStream(true), es.Create.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 409 {
		t.Errorf("second create of the same _id answered %s, want 409 Conflict", res.Status())
	}

	wantTypes := map[string]string{
		"@timestamp":                           "date_nanos",
		"event_name":                           "keyword",
		"body.text":                            "text",
		"body.text.keyword":                    "keyword",
		"attributes.session.id":                "keyword",
		"attributes.user.name":                 "keyword",
		"attributes.pam.account":               "keyword",
		"attributes.pam.resource.type":         "keyword",
		"attributes.pam.gateway.id":            "keyword",
		"attributes.client.address":            "keyword",
		"attributes.db.query.text":             "text",
		"attributes.db.query.text.keyword":     "keyword",
		"attributes.pam.response.text":         "text",
		"attributes.pam.seq":                   "long",
		"attributes.db.response.returned_rows": "long",
		"attributes.pam.duration_ms":           "double",
		"attributes.pam.start_time":            "date_nanos",
		"attributes.pam.setup_test.unknown":    "keyword", // dynamic template: strings are keywords
		"resource.attributes.host.name":        "keyword",
	}
	got := fieldTypes(t, es, keys(wantTypes))
	for field, want := range wantTypes {
		if got[field] != want {
			t.Errorf("%s is mapped as %q, want %q", field, got[field], want)
		}
	}

	hits := search(t, es, map[string]any{"bool": map[string]any{"filter": []any{
		map[string]any{"term": map[string]any{"attributes.session.id": sessionID}},
		map[string]any{"match": map[string]any{"attributes.db.query.text": token}},
	}}})
	if len(hits) != 1 {
		t.Fatalf("full-text search for %s in attributes.db.query.text found %d documents, want 1", token, len(hits))
	}
}

// TestMalformedValueDoesNotRejectDocument: a value of the wrong type is
// ignored for its field (index.mapping.ignore_malformed), never a reason to
// lose the whole recorded event.
func TestMalformedValueDoesNotRejectDocument(t *testing.T) {
	es := newTestClient(t)
	if err := InstallElasticsearch(testContext(t), es, ElasticsearchOptions{}); err != nil {
		t.Fatal(err)
	}
	sessionID := "setup-test-" + randomHex(t)
	var doc map[string]any
	if err := json.Unmarshal(exporterDocument(t, sessionID, "malformed"), &doc); err != nil {
		t.Fatal(err)
	}
	doc["attributes"].(map[string]any)["client.port"] = "not-a-port"
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	indexDocument(t, es, sessionID+":3", body)

	hits := search(t, es, map[string]any{"term": map[string]any{"attributes.session.id": sessionID}})
	if len(hits) != 1 {
		t.Fatalf("found %d documents, want 1", len(hits))
	}
	if ignored := hits[0].Ignored; len(ignored) != 1 || ignored[0] != "attributes.client.port" {
		t.Errorf("_ignored = %v, want [attributes.client.port]", ignored)
	}
}

func TestInstallElasticsearchQuotesTheRejection(t *testing.T) {
	es := newTestClient(t)
	bad := templates.Template{
		Name: "pamtrail-setup-test-invalid",
		Kind: templates.IndexTemplate,
		File: "invalid.template.json",
		Body: []byte(`{"index_patterns":["pamtrail-setup-test-invalid*"],"template":{"mappings":{"properties":{"f":{"type":"no_such_type"}}}}}`),
	}
	err := InstallElasticsearch(testContext(t), es, ElasticsearchOptions{Templates: []templates.Template{bad}})
	if err == nil {
		t.Fatal("installing an invalid template succeeded")
	}
	for _, want := range []string{`index template "pamtrail-setup-test-invalid"`, "invalid.template.json", "400", "no_such_type"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// exporterDocument is testdata/exporter_document.json, a document as the
// elasticsearch exporter writes it in otel mapping mode, for sessionID.
func exporterDocument(t *testing.T, sessionID, token string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "exporter_document.json"))
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.ReplaceAll(raw, []byte("SESSION_ID"), []byte(sessionID))
	return bytes.ReplaceAll(raw, []byte("TOKEN"), []byte(token))
}

// indexDocument creates doc in the events data stream the way the exporter
// does: create action, require_data_stream.
func indexDocument(t *testing.T, es *elasticsearch.Client, id string, doc []byte) {
	t.Helper()
	res, err := es.Create(schema.EventsIndex, id, bytes.NewReader(doc),
		es.Create.WithRequireDataStream(true), es.Create.WithRefresh("true"), es.Create.WithContext(testContext(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.IsError() {
		t.Fatalf("indexing %s: %v", id, responseError(res))
	}
}

type searchHit struct {
	ID      string   `json:"_id"`
	Ignored []string `json:"_ignored"`
}

func search(t *testing.T, es *elasticsearch.Client, query map[string]any) []searchHit {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query})
	if err != nil {
		t.Fatal(err)
	}
	res, err := es.Search(es.Search.WithIndex(schema.EventsIndexPattern), es.Search.WithBody(bytes.NewReader(body)),
		es.Search.WithContext(testContext(t)))
	var out struct {
		Hits struct {
			Hits []searchHit `json:"hits"`
		} `json:"hits"`
	}
	decode(t, res, err, &out)
	return out.Hits.Hits
}

// fieldTypes returns the mapped type of each field in the events data stream.
func fieldTypes(t *testing.T, es *elasticsearch.Client, fields []string) map[string]string {
	t.Helper()
	res, err := es.Indices.GetFieldMapping(fields, es.Indices.GetFieldMapping.WithIndex(schema.EventsIndex),
		es.Indices.GetFieldMapping.WithContext(testContext(t)))
	var out map[string]struct {
		Mappings map[string]struct {
			Mapping map[string]struct {
				Type string `json:"type"`
			} `json:"mapping"`
		} `json:"mappings"`
	}
	decode(t, res, err, &out)
	types := map[string]string{}
	for _, index := range out { // one backing index per rollover; all share the template
		for field, m := range index.Mappings {
			for _, leaf := range m.Mapping {
				types[field] = leaf.Type
			}
		}
	}
	return types
}

func decode(t *testing.T, res *esapi.Response, err error, into any) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.IsError() {
		t.Fatal(responseError(res))
	}
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
