package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/pamtrail/pamtrail/gateway/schema"
	"github.com/pamtrail/pamtrail/gateway/setup"
)

// esClient is a thin test client over the Elasticsearch REST API.
type esClient struct {
	t         *testing.T
	es        *elasticsearch.Client
	transport *http.Transport
}

// newESClient connects to url and installs pamtrail's templates, as
// `pamtrail setup elasticsearch` does before a collector first runs.
func newESClient(t *testing.T, url string) *esClient {
	t.Helper()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Idle keep-alive connections would outlive the test and trip goleak.
	t.Cleanup(transport.CloseIdleConnections)
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}, Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := setup.InstallElasticsearch(ctx, es, setup.ElasticsearchOptions{}); err != nil {
		t.Fatalf("Elasticsearch at %s is not usable (start it with `deploy/local/services.sh up elasticsearch`): %v", url, err)
	}
	return &esClient{t: t, es: es, transport: transport}
}

// hit is one search hit: its id and source.
type hit struct {
	ID     string         `json:"_id"`
	Source map[string]any `json:"_source"`
}

// search refreshes the events data stream and runs query on it.
func (c *esClient) search(query map[string]any) ([]hit, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	refresh, err := c.es.Indices.Refresh(c.es.Indices.Refresh.WithIndex(schema.EventsIndexPattern),
		c.es.Indices.Refresh.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, refresh.Body)
	refresh.Body.Close()

	body, err := json.Marshal(map[string]any{"query": query, "size": 1000})
	if err != nil {
		return nil, err
	}
	res, err := c.es.Search(
		c.es.Search.WithIndex(schema.EventsIndexPattern),
		c.es.Search.WithBody(bytes.NewReader(body)),
		c.es.Search.WithIgnoreUnavailable(true),
		c.es.Search.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.IsError() {
		return nil, fmt.Errorf("search: %s: %s", res.Status(), raw)
	}
	var parsed struct {
		Hits struct {
			Hits []hit `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(raw, &parsed); err != nil {
		return nil, err
	}
	return parsed.Hits.Hits, nil
}

// waitHits polls until query matches exactly want documents.
func (c *esClient) waitHits(timeout time.Duration, query map[string]any, want int) []hit {
	c.t.Helper()
	var hits []hit
	waitFor(c.t, timeout, func() (bool, string) {
		var err error
		hits, err = c.search(query)
		if err != nil {
			return false, err.Error()
		}
		return len(hits) == want, fmt.Sprintf("%d documents match %v, want %d", len(hits), query, want)
	})
	return hits
}

func term(field string, value any) map[string]any {
	return map[string]any{"term": map[string]any{field: value}}
}

func match(field, text string) map[string]any {
	return map[string]any{"match": map[string]any{field: text}}
}

func and(queries ...map[string]any) map[string]any {
	return map[string]any{"bool": map[string]any{"filter": queries}}
}
