package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// testIndices makes a pattern of this test's own indices in the real
// Elasticsearch (testenv.SessionIndices) and a client.
func testIndices(t *testing.T, types map[string]string) (*elasticsearch.Client, string) {
	t.Helper()
	url := testenv.Elasticsearch(t)
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	return es, testenv.SessionIndices(t, url, types)
}

// indexEvents writes n event documents of session into index.
func indexEvents(t *testing.T, es *elasticsearch.Client, index, session string, n int) {
	t.Helper()
	var body bytes.Buffer
	for seq := range n {
		doc, _ := json.Marshal(map[string]any{"attributes": map[string]any{schema.AttrSessionID: session, schema.AttrSeq: seq}})
		fmt.Fprintf(&body, "{\"create\":{\"_id\":\"%s:%d\"}}\n%s\n", session, seq, doc)
	}
	res, err := es.Bulk(&body, es.Bulk.WithIndex(index), es.Bulk.WithRefresh("true"))
	var out struct {
		Errors bool `json:"errors"`
	}
	if err := decode(res, err, &out); err != nil || out.Errors {
		t.Fatalf("indexing %d events: %v (item errors: %v)", n, err, out.Errors)
	}
}

func TestEventsReadsWholeSessions(t *testing.T) {
	es, pattern := testIndices(t, map[string]string{"a": "keyword"})
	store := Store{ES: es, Index: pattern}
	index := strings.TrimSuffix(pattern, "*") + "a"
	tests := []struct {
		name string
		n    int
	}{
		{"one search", 3},
		{"one full page", pageSize},
		{"a scroll of two pages", pageSize + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			session := fmt.Sprintf("s-%d", tt.n)
			indexEvents(t, es, index, session, tt.n)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			docs, err := store.Events(ctx, session)
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]bool{}
			for _, d := range docs {
				ids[d.ID] = true
			}
			if len(docs) != tt.n || len(ids) != tt.n {
				t.Fatalf("read %d documents (%d distinct), want %d", len(docs), len(ids), tt.n)
			}
		})
	}
}

// TestEventsRefusesPartialResults: when a shard fails, reading a session
// fails, rather than returning the other shards' events as if they were
// all (a verification would then report the rest as deleted). Here one of
// two indices maps session.id as a number, so the session's term query
// fails on that shard alone; Elasticsearch would otherwise answer with the
// other index's documents and one failed shard.
func TestEventsRefusesPartialResults(t *testing.T) {
	es, pattern := testIndices(t, map[string]string{"a": "keyword", "b": "long"})
	store := Store{ES: es, Index: pattern}
	index := strings.TrimSuffix(pattern, "*") + "a"
	for _, n := range []int{3, pageSize + 1} {
		session := fmt.Sprintf("s-%d", n)
		indexEvents(t, es, index, session, n)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		docs, err := store.Events(ctx, session)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "shard") {
			t.Errorf("%d events with one shard failing: read %d documents, err %v; want an error naming the failed shard", n, len(docs), err)
		}
	}
}
