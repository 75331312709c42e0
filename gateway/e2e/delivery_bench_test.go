package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"
	"github.com/jackc/pgx/v5"

	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// exporterParallelism is sending_queue::num_consumers of the shipped
// collector configs: the direct bulk baseline uses as many parallel
// requests.
const exporterParallelism = 4

// esWarmUpDocs is how many documents Elasticsearch indexes, unmeasured,
// before the baseline.
const esWarmUpDocs = 200_000

// BenchmarkDelivery measures the whole delivery path on this machine, side
// by side with Elasticsearch's own limit (issue #10), in one run:
//
//  1. Elasticsearch direct: the event documents of this run, bulk-indexed
//     with go-elasticsearch's BulkIndexer into the same template with the
//     exporter's parallelism and bulk size; then (1') again into a second
//     fresh index with each copy's per-statement values made distinct and
//     the index searched every 250 ms, as the pipeline's documents and
//     index are (see distinctCopy and directBulkRate);
//  2. end to end, sustained: pgbench through the gateway (10 s cadence),
//     statements searchable per second, and the oldest unacknowledged record;
//  3. drain of a backlog (PAMTRAIL_BENCH_BACKLOG records, default 1,000,000)
//     recorded while the collector was down;
//  4. event -> searchable p50/p99 at half the sustained rate, 10 s and 1 s
//     cadence;
//  5. collector and gateway peak RSS during the drain;
//  6. CPU per record of each process, per phase;
//  7. Elasticsearch's own counters per phase (bulk sizes, indexing, merge
//     and refresh time per document), to compare the exporter's requests
//     with the baseline's.
//
// The baseline runs after an unmeasured warm-up of esWarmUpDocs documents.
//
// PAMTRAIL_BENCH_DIRECT_DOCS (default: the backlog's size, so both indexes
// grow alike) sizes the baseline. Run with -benchtime 1x (make bench).
func BenchmarkDelivery(b *testing.B) {
	backlog := benchCount(b, "PAMTRAIL_BENCH_BACKLOG", 1_000_000)
	directDocs := benchCount(b, "PAMTRAIL_BENCH_DIRECT_DOCS", backlog)
	for range b.N {
		s := newStack(b, stackOptions{uploadInterval: "10s"})
		// This run's events go to a fresh backing index, as the baseline's
		// go to a fresh index: merging into a data stream that earlier runs
		// grew to millions of documents costs Elasticsearch about twice the
		// CPU per document (measured), whichever way the documents come.
		// The benchmark counts this run's statements in that index alone,
		// as the baseline's index is searched alone: the events pattern
		// spans every earlier run's backing index, and polling it four times
		// a second was a hundred shard searches a second during the drain.
		s.countIndex = rolloverEvents(b, s.esURL)
		s.start()

		// Documents exactly as the exporter writes them, for the baseline.
		warm, _ := s.runPgbench(b, pgbenchLoad{clients: 4, transactions: 5000})
		s.waitStatements(b, warm, 2*time.Minute)
		docs := s.sampleDocuments(b, 10_000)
		esPID := elasticsearchPID(b)
		// Unmeasured: Elasticsearch compiles its indexing path during its
		// first minutes of load, and the first baseline after a start ran
		// at two thirds of the rate of the same documents a minute later.
		directBulkRate(b, s.esURL, docs, min(directDocs, esWarmUpDocs), false)
		esDirect := newCPUMeter([]string{"Elasticsearch"}, []int{esPID})
		esDirectWork := newESWorkMeter(b, s.esURL)
		direct := directBulkRate(b, s.esURL, docs, directDocs, false)
		esDirectCPU, _ := esDirect.perItem(directDocs)
		directWork := esDirectWork.describe(b)
		esLikePipeline := newCPUMeter([]string{"Elasticsearch"}, []int{esPID})
		esLikePipelineWork := newESWorkMeter(b, s.esURL)
		directLikePipeline := directBulkRate(b, s.esURL, docs, directDocs, true)
		esLikePipelineCPU, _ := esLikePipeline.perItem(directDocs)
		likePipelineWork := esLikePipelineWork.describe(b)

		const window = 60 * time.Second
		before := s.statementCount(b)
		var ageMax atomic.Int64 // milliseconds
		stopAge := s.sampleOldestUnacked(b, &ageMax)
		sustainedCPU := newCPUMeter([]string{"gateway", "collector", "Elasticsearch"}, []int{s.gateway.pid(), s.collector.pid(), esPID})
		sustainedWork := newESWorkMeter(b, s.esURL)
		// The rate is the slope of searchable statements once the pipeline
		// is full (from 20 s on): counting from the start would charge the
		// run its first ~15 s of fixed latency (the upload interval) as if
		// delivery were slow.
		const settle = 20 * time.Second
		settled := make(chan int, 1)
		time.AfterFunc(settle, func() { settled <- s.statementCount(b) })
		ran, tps := s.runPgbench(b, pgbenchLoad{clients: 4, duration: window})
		stopAge()
		sustained := float64(s.statementCount(b)-<-settled) / (window - settle).Seconds()
		s.waitStatements(b, before+ran, 10*time.Minute)
		_, sustainedCPUText := sustainedCPU.perItem(ran)
		sustainedESWork := sustainedWork.describe(b)

		probeRate := sustained / 2
		p10, ran10 := s.visibilityUnderLoad(b, probeRate, 45*time.Second)
		s.setUploadInterval(b, "1s")
		p1, ran1 := s.visibilityUnderLoad(b, probeRate, 45*time.Second)
		s.setUploadInterval(b, "10s")
		// Every statement so far is searchable before the outage, so the
		// drain counts exactly the backlog's.
		base := before + ran + ran10 + ran1
		s.waitStatements(b, base, 10*time.Minute)

		// The backlog: recorded with the collector down, drained after.
		s.collector.stop()
		perClient := backlog / 4
		s.runPgbench(b, pgbenchLoad{clients: 4, transactions: perClient})
		spoolBytes, _ := s.metric(b, "pamtrail_spool_bytes")
		backlogPending, _ := s.metric(b, "pamtrail_spool_records_pending")
		start := time.Now()
		s.startCollector()
		firstAck := s.firstAcknowledgement(b, backlogPending)
		var gwPeak, colPeak atomic.Int64
		stopRSS := sampleRSS([]*proc{s.gateway, s.collector}, []*atomic.Int64{&gwPeak, &colPeak})
		drainCPU := newCPUMeter([]string{"gateway", "collector", "Elasticsearch"}, []int{s.gateway.pid(), s.collector.pid(), esPID})
		drainWork := newESWorkMeter(b, s.esURL)
		s.waitStatements(b, base+4*perClient, 30*time.Minute)
		drainTime := time.Since(start)
		stopRSS()
		collectorUpToFirstAck := <-firstAck
		drainCPUPer, drainCPUText := drainCPU.perItem(4 * perClient)
		drainESWork := drainWork.describe(b)
		drain := float64(4*perClient) / drainTime.Seconds()

		fmt.Printf("\ndelivery (one run, this machine):\n")
		fmt.Printf("  (1) Elasticsearch direct bulk, %d parallel: %.0f docs/s (%.0f µs CPU/doc); (1') with distinct per-statement values and searched every 250 ms, as the pipeline's documents and index are: %.0f docs/s (%.0f µs CPU/doc)\n",
			exporterParallelism, direct, esDirectCPU[0], directLikePipeline, esLikePipelineCPU[0])
		fmt.Printf("  (2) end to end sustained, 10 s cadence: %.0f statements/s searchable from %v to %v (ratio %.2f; to (1') %.2f); pgbench offered %.0f tps; oldest unacked max %.1f s (goal <= 20 s)\n",
			sustained, settle, window, sustained/direct, sustained/directLikePipeline, tps, float64(ageMax.Load())/1000)
		fmt.Printf("  (3) drain of %d records (%.0f MiB spool) after a collector outage: %.0f records/s in %v from the collector's start (ratio %.2f; to (1') %.2f); the gateway's first acknowledgement %.1f s after the collector was up\n",
			4*perClient, spoolBytes/(1<<20), drain, drainTime.Round(time.Second), drain/direct, drain/directLikePipeline, collectorUpToFirstAck.Seconds())
		fmt.Printf("  (4) event -> searchable at %.0f statements/s load: 10 s cadence p50 %.2f s p99 %.2f s; 1 s cadence p50 %.2f s p99 %.2f s\n",
			probeRate, p10[0], p10[1], p1[0], p1[1])
		fmt.Printf("  (5) peak RSS during the drain: collector %d MiB, gateway %d MiB\n", colPeak.Load()>>20, gwPeak.Load()>>20)
		fmt.Printf("  (6) CPU per record (where the time goes): Elasticsearch direct %.0f µs; sustained: %s (pgbench and PostgreSQL not counted); drain: %s\n",
			esDirectCPU[0], sustainedCPUText, drainCPUText)
		fmt.Printf("  (7) Elasticsearch's own counters: (1) %s; (1') %s; (2) %s; (3) %s\n\n", directWork, likePipelineWork, sustainedESWork, drainESWork)
		b.ReportMetric(direct, "direct-docs/s")
		b.ReportMetric(sustained, "sustained-rec/s")
		b.ReportMetric(sustained/direct, "sustained/direct")
		b.ReportMetric(drain, "drain-rec/s")
		b.ReportMetric(drain/direct, "drain/direct")
		b.ReportMetric(collectorUpToFirstAck.Seconds(), "drain-first-ack-s")
		b.ReportMetric(directLikePipeline, "direct-distinct-searched-docs/s")
		b.ReportMetric(drain/directLikePipeline, "drain/direct-distinct-searched")
		b.ReportMetric(sustained/directLikePipeline, "sustained/direct-distinct-searched")
		b.ReportMetric(p10[1], "p99-10s-cadence-s")
		b.ReportMetric(p1[1], "p99-1s-cadence-s")
		b.ReportMetric(float64(colPeak.Load()>>20), "collector-peak-MiB")
		b.ReportMetric(float64(gwPeak.Load()>>20), "gateway-peak-MiB")
		b.ReportMetric(esDirectCPU[0], "es-direct-cpu-µs/doc")
		b.ReportMetric(drainCPUPer[0], "drain-gateway-cpu-µs/rec")
		b.ReportMetric(drainCPUPer[1], "drain-collector-cpu-µs/rec")
		b.ReportMetric(drainCPUPer[2], "drain-es-cpu-µs/rec")
	}
}

// benchCount reads a count from the environment, or returns def.
func benchCount(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1000 {
		b.Fatalf("%s=%q: want a count >= 1000", name, v)
	}
	return n
}

// sampleDocuments returns up to n event documents of this stack's gateway
// as stored (_source), with their ids.
func (s *stack) sampleDocuments(t testing.TB, n int) []bulkDoc {
	t.Helper()
	es := newES(t, s.esURL)
	body, _ := json.Marshal(map[string]any{
		"size":  n,
		"query": map[string]any{"term": map[string]any{review.Attr(schema.AttrGatewayID): s.gatewayID}},
	})
	res, err := es.Search(es.Search.WithIndex(schema.EventsIndexPattern), es.Search.WithBody(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Hits struct {
			Hits []struct {
				ID     string          `json:"_id"`
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if res.IsError() || json.NewDecoder(res.Body).Decode(&out) != nil || len(out.Hits.Hits) == 0 {
		t.Fatalf("sampling event documents: %s", res.String())
	}
	docs := make([]bulkDoc, len(out.Hits.Hits))
	for i, h := range out.Hits.Hits {
		docs[i] = bulkDoc{id: h.ID, source: h.Source}
	}
	return docs
}

type bulkDoc struct {
	id     string
	source []byte
}

func newES(t testing.TB, url string) *elasticsearch.Client {
	t.Helper()
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}, CompressRequestBody: true})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// directBulkRate indexes total copies of docs (new ids) into an index with
// the events template's settings and mappings, as the exporter does (create, gzip, ~1 MB bulks,
// exporterParallelism requests at once), and returns documents per second.
// likePipeline makes each copy's per-statement values distinct and searches
// the index while it fills, as the pipeline's documents and index are.
func directBulkRate(t testing.TB, url string, docs []bulkDoc, total int, likePipeline bool) float64 {
	t.Helper()
	es := newES(t, url)
	index := templateIndex(t, es)
	// Deleted once measured: the merges Elasticsearch runs on a freshly
	// filled index for minutes after the last bulk would otherwise be
	// charged to the pipeline's phases that follow.
	defer func() {
		if res, err := es.Indices.Delete([]string{index}); err == nil {
			res.Body.Close()
		}
	}()
	if likePipeline {
		// Searched every 250 ms, as the pipeline's index is while the
		// benchmark (or a user's live view) follows it: a searched index is
		// refreshed every second, an unsearched one goes search-idle and
		// skips refreshes, making fewer and larger segments to merge.
		stop := every(250*time.Millisecond, func() {
			if res, err := es.Count(es.Count.WithIndex(index)); err == nil {
				res.Body.Close()
			}
		})
		defer stop()
	}
	var failed atomic.Int64
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client: es, Index: index, NumWorkers: exporterParallelism, FlushBytes: 1e6, FlushInterval: 200 * time.Millisecond,
		OnError: func(_ context.Context, err error) { t.Errorf("bulk: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if likePipeline && bytes.Equal(distinctCopy(docs[0].source, 1), docs[0].source) {
		t.Fatalf("distinctCopy found none of its fields in %s", docs[0].source)
	}
	ctx := context.Background()
	start := time.Now()
	for i := range total {
		d := docs[i%len(docs)]
		source := d.source
		if likePipeline {
			source = distinctCopy(d.source, i)
		}
		err := bi.Add(ctx, esutil.BulkIndexerItem{
			Action: "create", DocumentID: d.id + "-" + strconv.Itoa(i/len(docs)), Body: bytes.NewReader(source),
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				if failed.Add(1) == 1 {
					t.Logf("first failed direct bulk document: %v %s: %s", err, res.Error.Type, res.Error.Reason)
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bi.Close(ctx); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d direct bulk documents failed", n, total)
	}
	return float64(total) / elapsed.Seconds()
}

// distinctCopy is document source with the values that are unique per
// statement in a real recording (the chain link, the start time, the
// timestamp's sub-millisecond digits) made unique for copy i, at the same
// length: a baseline that repeats a few thousand sampled documents would
// otherwise index each of those values hundreds of times, which costs
// Elasticsearch less than as many distinct values.
func distinctCopy(source []byte, i int) []byte {
	out := bytes.Clone(source)
	if v := jsonStringValue(out, "pam.chain"); len(v) >= 8 {
		copy(v, fmt.Sprintf("%08x", uint32(i)))
	}
	// Only digits after the point change: the sub-millisecond part of
	// "<ms>.<ns>" and of the RFC 3339 fraction (both of any length, written
	// without padding), so the document stays valid for its mapping. The
	// last six of them take i's low decimal digits.
	for _, key := range []string{"pam.start_time", "@timestamp"} {
		v := jsonStringValue(out, key)
		dot := bytes.LastIndexByte(v, '.')
		if dot < 0 {
			continue
		}
		frac := bytes.TrimSuffix(v[dot+1:], []byte("Z"))
		for k, n := len(frac)-1, i; k >= max(0, len(frac)-6); k, n = k-1, n/10 {
			frac[k] = byte('0' + n%10)
		}
	}
	return out
}

// jsonStringValue is key's string value in the compact JSON doc, sharing
// doc's bytes, or nil when doc has none.
func jsonStringValue(doc []byte, key string) []byte {
	marker := []byte(`"` + key + `":"`)
	at := bytes.Index(doc, marker)
	if at < 0 {
		return nil
	}
	v := doc[at+len(marker):]
	end := bytes.IndexByte(v, '"')
	if end < 0 {
		return nil
	}
	return v[:end]
}

// templateIndex creates an index with the settings and mappings the events
// template gives pamtrail-events, and deletes it at the end. It is a plain
// index rather than a data stream because this Elasticsearch distribution
// has no API to delete a data stream; the indexing work is the same.
func templateIndex(t testing.TB, es *elasticsearch.Client) string {
	t.Helper()
	res, err := es.Indices.SimulateIndexTemplate(schema.EventsIndex)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var sim struct {
		Template struct {
			Settings map[string]any `json:"settings"`
			Mappings map[string]any `json:"mappings"`
		} `json:"template"`
	}
	if res.IsError() || json.NewDecoder(res.Body).Decode(&sim) != nil || sim.Template.Mappings == nil {
		t.Fatalf("simulating the events template: %s", res.String())
	}
	delete(sim.Template.Mappings, "_data_stream_timestamp") // data streams only
	body, _ := json.Marshal(map[string]any{"settings": sim.Template.Settings, "mappings": sim.Template.Mappings})
	index := "pamtrail-benchdirect-" + randomHex(4)
	created, err := es.Indices.Create(index, es.Indices.Create.WithBody(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer created.Body.Close()
	if created.IsError() {
		t.Fatalf("creating %s with the events template's mappings: %s", index, created.String())
	}
	t.Cleanup(func() { _, _ = es.Indices.Delete([]string{index}) })
	return index
}

// firstAcknowledgement returns, at once, a channel that receives how long
// after the call the gateway's pending records first fell below pending:
// how soon a backlog starts moving once the collector is up.
func (s *stack) firstAcknowledgement(t testing.TB, pending float64) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	from := time.Now()
	go func() {
		deadline := from.Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			if v, ok := s.metric(t, "pamtrail_spool_records_pending"); ok && v < pending {
				out <- time.Since(from)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		out <- time.Since(from)
	}()
	return out
}

// sampleOldestUnacked records the largest oldest-unacknowledged age the
// gateway reports, until the returned stop is called.
func (s *stack) sampleOldestUnacked(t testing.TB, maxMillis *atomic.Int64) (stop func()) {
	return every(500*time.Millisecond, func() {
		if v, ok := s.metric(t, "pamtrail_spool_oldest_unacked_age_seconds"); ok && int64(v*1000) > maxMillis.Load() {
			maxMillis.Store(int64(v * 1000))
		}
	})
}

// sampleRSS records each process's largest resident set, in bytes.
func sampleRSS(procs []*proc, peaks []*atomic.Int64) (stop func()) {
	return every(250*time.Millisecond, func() {
		for i, p := range procs {
			if rss := p.rss(); rss > peaks[i].Load() {
				peaks[i].Store(rss)
			}
		}
	})
}

// every runs f on a ticker until the returned stop is called (and waits).
func every(d time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				f()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// setUploadInterval restarts the gateway with another upload cadence; the
// spool carries over.
func (s *stack) setUploadInterval(t testing.TB, interval string) {
	t.Helper()
	raw, err := os.ReadFile(s.gwConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := regexp.MustCompile(`(?m)^  interval: .*$`).ReplaceAllString(string(raw), "  interval: "+interval)
	writeFile(t, s.gwConfig, cfg)
	s.gateway.stop()
	s.startGateway()
}

// visibilityUnderLoad runs pgbench at rate statements/s for d while a probe
// session runs one statement every 100 ms, and returns the p50 and p99 (in
// seconds) of the time from each probe statement's completion to its event
// being searchable. Searches poll every 100 ms, which bounds the error. It
// also returns how many statements it ran, pgbench's and the probes.
func (s *stack) visibilityUnderLoad(t testing.TB, rate float64, d time.Duration) (latency [2]float64, statements int) {
	t.Helper()
	token := "probe" + randomHex(4)
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn("alice", alicePassword, "demo-postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var acked sync.Map // probe index -> completion time
	var sent atomic.Int64
	sending := atomic.Bool{}
	sending.Store(true)
	seen := map[int]time.Duration{}
	var wg sync.WaitGroup
	var loadRan int
	wg.Add(2)
	go func() {
		defer wg.Done()
		loadRan, _ = s.runPgbench(t, pgbenchLoad{clients: 4, duration: d, rate: rate})
	}()
	go func() {
		defer wg.Done()
		seen = s.pollProbes(ctx, t, token, &acked, &sent, &sending)
	}()
	deadline := time.Now().Add(d)
	for tick := time.NewTicker(100 * time.Millisecond); time.Now().Before(deadline); <-tick.C {
		i := int(sent.Load())
		if _, err := conn.Exec(ctx, fmt.Sprintf("select '%s %d'", token, i), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
		acked.Store(i, time.Now())
		sent.Add(1)
	}
	sending.Store(false)
	wg.Wait()
	probes := int(sent.Load())
	if len(seen) < probes {
		t.Fatalf("%d of %d probe statements searchable", len(seen), probes)
	}
	lat := make([]float64, 0, len(seen))
	for _, d := range seen {
		lat = append(lat, d.Seconds())
	}
	slices.Sort(lat)
	return [2]float64{lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]}, loadRan + probes
}

// pollProbes searches for the probe events every 100 ms and returns, per
// probe, how long after its completion it was first found.
func (s *stack) pollProbes(ctx context.Context, t testing.TB, token string, acked *sync.Map, sent *atomic.Int64, sending *atomic.Bool) map[int]time.Duration {
	c, err := review.NewClient(s.esURL)
	if err != nil {
		t.Error(err)
		return nil
	}
	seen := map[int]time.Duration{}
	index := regexp.MustCompile(token + ` ([0-9]+)`)
	for ctx.Err() == nil && (sending.Load() || len(seen) < int(sent.Load())) {
		evs, _, err := c.Events(ctx, review.Filter{GatewayID: s.gatewayID, Text: token, EventName: schema.EventDBQuery, Size: 10000})
		if err != nil {
			t.Error(err)
			return seen
		}
		now := time.Now()
		for _, e := range evs {
			m := index.FindStringSubmatch(e.Str(schema.AttrDBQueryText))
			if m == nil {
				continue
			}
			i, _ := strconv.Atoi(m[1])
			if _, ok := seen[i]; ok {
				continue
			}
			if at, ok := acked.Load(i); ok {
				seen[i] = now.Sub(at.(time.Time))
			}
		}
		time.Sleep(100 * time.Millisecond) // the search poll interval, part of the figure's resolution
	}
	return seen
}

// rss is the process's resident set size in bytes (0 when not running).
func (p *proc) rss() int64 {
	pid := p.pid()
	if pid == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
