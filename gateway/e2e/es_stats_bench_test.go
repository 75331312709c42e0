package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// esWork is what an Elasticsearch node has done so far, from its own
// counters (_nodes/_local/stats): the benchmark prints the difference over a
// phase to say where Elasticsearch's time per document goes, and how the
// exporter's bulk requests compare with the baseline's.
type esWork struct {
	Bulk struct {
		Operations int64 `json:"total_operations"`
		Millis     int64 `json:"total_time_in_millis"`
		Bytes      int64 `json:"total_size_in_bytes"`
	} `json:"bulk"`
	Indexing struct {
		Docs   int64 `json:"index_total"`
		Millis int64 `json:"index_time_in_millis"`
	} `json:"indexing"`
	Merges struct {
		Total  int64 `json:"total"`
		Millis int64 `json:"total_time_in_millis"`
		Docs   int64 `json:"total_docs"`
	} `json:"merges"`
	Refresh struct {
		Total  int64 `json:"total"`
		Millis int64 `json:"total_time_in_millis"`
	} `json:"refresh"`
	Flush struct {
		Total int64 `json:"total"`
	} `json:"flush"`
	Search struct {
		Queries int64 `json:"query_total"`
	} `json:"search"`
}

// readESWork reads the local node's counters.
func readESWork(t testing.TB, url string) esWork {
	t.Helper()
	res, err := http.Get(url + "/_nodes/_local/stats/indices/bulk,indexing,merge,refresh,flush,search")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Nodes map[string]struct {
			Indices esWork `json:"indices"`
		} `json:"nodes"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out.Nodes) != 1 {
		t.Fatalf("_nodes/_local/stats: %v (%d nodes)", err, len(out.Nodes))
	}
	for _, n := range out.Nodes {
		return n.Indices
	}
	panic("unreachable")
}

// esWorkMeter is a phase's Elasticsearch work: start it before, call
// describe after.
type esWorkMeter struct {
	url   string
	start esWork
}

func newESWorkMeter(t testing.TB, url string) *esWorkMeter {
	return &esWorkMeter{url: url, start: readESWork(t, url)}
}

// describe says, for the documents indexed since the meter started: bulk
// requests and their average size, indexing and merge time per document,
// refreshes, flushes and searches.
func (m *esWorkMeter) describe(t testing.TB) string {
	t.Helper()
	end := readESWork(t, m.url)
	bulks := end.Bulk.Operations - m.start.Bulk.Operations
	docs := end.Indexing.Docs - m.start.Indexing.Docs
	if bulks == 0 || docs == 0 {
		return "no bulk requests"
	}
	perDoc := func(millis int64) float64 { return float64(millis) * 1000 / float64(docs) }
	return fmt.Sprintf("%d bulks of %.0f docs / %.0f KiB avg (%.1f ms each), index %.0f µs/doc, merge %.0f µs/doc (%d merges), refresh %.0f µs/doc (%d), %d flushes, %d searches",
		bulks, float64(docs)/float64(bulks), float64(end.Bulk.Bytes-m.start.Bulk.Bytes)/float64(bulks)/1024,
		float64(end.Bulk.Millis-m.start.Bulk.Millis)/float64(bulks),
		perDoc(end.Indexing.Millis-m.start.Indexing.Millis),
		perDoc(end.Merges.Millis-m.start.Merges.Millis), end.Merges.Total-m.start.Merges.Total,
		perDoc(end.Refresh.Millis-m.start.Refresh.Millis), end.Refresh.Total-m.start.Refresh.Total,
		end.Flush.Total-m.start.Flush.Total, end.Search.Queries-m.start.Search.Queries)
}

// rolloverEvents starts a new backing index of the events data stream and
// returns its name, or the events index pattern when there is no data
// stream yet (the first write makes a fresh one).
func rolloverEvents(t testing.TB, url string) string {
	t.Helper()
	es := newES(t, url)
	res, err := es.Indices.Rollover(schema.EventsIndex)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == 404 {
		return schema.EventsIndexPattern
	}
	var out struct {
		NewIndex string `json:"new_index"`
	}
	if res.IsError() || json.NewDecoder(res.Body).Decode(&out) != nil || out.NewIndex == "" {
		t.Fatalf("rolling over %s: %s", schema.EventsIndex, res.String())
	}
	// A benchmark's index holds up to a million documents: it is rolled
	// away from and deleted at the end, so that runs do not pile backing
	// indices into the events pattern every review search spans.
	t.Cleanup(func() {
		if res, err := es.Indices.Rollover(schema.EventsIndex); err == nil {
			res.Body.Close()
		}
		if res, err := es.Indices.Delete([]string{out.NewIndex}); err == nil {
			res.Body.Close()
		}
	})
	return out.NewIndex
}
