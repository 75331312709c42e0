package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
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

// scrollFault passes requests to Elasticsearch except the ones reading a
// scroll's next page, which fail as fail says; it notes the scroll ids
// Elasticsearch hands out.
type scrollFault struct {
	next   http.RoundTripper
	fail   func() error
	mu     sync.Mutex
	opened []string
}

func (f *scrollFault) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/_search/scroll" && req.Method != http.MethodDelete {
		return nil, f.fail()
	}
	res, err := f.next.RoundTrip(req)
	if err != nil || req.URL.Query().Get("scroll") == "" {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	var page struct {
		ScrollID string `json:"_scroll_id"`
	}
	if json.Unmarshal(body, &page) == nil && page.ScrollID != "" {
		f.mu.Lock()
		f.opened = append(f.opened, page.ScrollID)
		f.mu.Unlock()
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}

// TestEventsClearsScrollOnFailure: a read that fails or is cancelled after
// its scroll opened clears the scroll, instead of leaving its context on
// every shard until the keep-alive ends.
func TestEventsClearsScrollOnFailure(t *testing.T) {
	es, pattern := testIndices(t, map[string]string{"a": "keyword"})
	index := strings.TrimSuffix(pattern, "*") + "a"
	indexEvents(t, es, index, "s", pageSize+1)
	tests := []struct {
		name string
		fail func(cancel context.CancelFunc) error
	}{
		{"next page fails", func(context.CancelFunc) error { return errors.New("injected: connection reset") }},
		{"read cancelled", func(cancel context.CancelFunc) error { cancel(); return context.Canceled }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			fault := &scrollFault{next: http.DefaultTransport, fail: func() error { return tt.fail(cancel) }}
			faulty, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{testenv.Elasticsearch(t)}, Transport: fault, MaxRetries: 1})
			if err != nil {
				t.Fatal(err)
			}
			if docs, err := (Store{ES: faulty, Index: pattern}).Events(ctx, "s"); err == nil {
				t.Fatalf("read %d documents although the second page failed", len(docs))
			}
			if len(fault.opened) == 0 {
				t.Fatal("the read opened no scroll: the test does not reach the failing page")
			}
			for _, id := range fault.opened {
				res, err := es.Scroll(es.Scroll.WithScrollID(id))
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusNotFound {
					t.Errorf("scroll %.12s… is still open after the failed read (status %d)", id, res.StatusCode)
				}
			}
		})
	}
}
