package review

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// TestSearchRefusesPartialResults: a search with a failed shard is an
// error, not the other shards' hits as if they were all: `sessions show`
// would show the session with events missing. One of the two indices maps
// session.id as a number, so the session's term query fails on its shard.
func TestSearchRefusesPartialResults(t *testing.T) {
	url := testenv.Elasticsearch(t)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{ES: es}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	query := Filter{SessionID: "01session"}.query()
	tests := []struct {
		name    string
		types   map[string]string
		wantErr bool
	}{
		{"every shard answers", map[string]string{"a": "keyword", "b": "keyword"}, false},
		{"one shard fails", map[string]string{"a": "keyword", "b": "long"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pattern := testenv.SessionIndices(t, url, tt.types)
			_, err := searchHits[map[string]any](ctx, c, pattern, map[string]any{"query": query})
			if gotErr := err != nil; gotErr != tt.wantErr || (gotErr && !strings.Contains(err.Error(), "shard")) {
				t.Fatalf("search over %v: err %v, want an error naming a shard: %v", tt.types, err, tt.wantErr)
			}
		})
	}
}
