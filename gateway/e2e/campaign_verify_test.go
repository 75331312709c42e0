package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

// eventKey identifies a recorded event: the collector derives the document
// id from it, so it is also the unit of "exactly once".
type eventKey struct {
	session string
	seq     int64
}

func (k eventKey) String() string { return fmt.Sprintf("%s:%d", k.session, k.seq) }

func keyOf(e review.Event) eventKey {
	return eventKey{session: e.Str(schema.AttrSessionID), seq: e.Int(schema.AttrSeq)}
}

// allEvents returns every event document of this stack's gateway, however
// many (a scroll, not one page of 10,000), with the fields the campaigns
// check.
func (s *stack) allEvents() ([]review.Event, error) {
	c, err := review.NewClient(s.esURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_ = c.Refresh(ctx, schema.EventsIndexPattern)
	fields := []string{review.FieldEventName, review.Attr(schema.AttrSessionID), review.Attr(schema.AttrSeq),
		review.Attr(schema.AttrDBQueryText), review.Attr(schema.AttrDBCommandTag)}
	body, _ := json.Marshal(map[string]any{
		"size":    5000,
		"sort":    []string{"_doc"},
		"_source": false,
		"fields":  fields,
		"query":   map[string]any{"term": map[string]any{review.Attr(schema.AttrGatewayID): s.gatewayID}},
	})
	res, err := c.ES.Search(c.ES.Search.WithContext(ctx), c.ES.Search.WithIndex(schema.EventsIndexPattern),
		c.ES.Search.WithBody(bytes.NewReader(body)), c.ES.Search.WithScroll(time.Minute),
		c.ES.Search.WithIgnoreUnavailable(true), c.ES.Search.WithAllowNoIndices(true))
	var out []review.Event
	for {
		if err != nil {
			return nil, fmt.Errorf("reading events: %w", err)
		}
		page, scrollID, perr := decodeScrollPage(res.Body, res.IsError(), res.Status())
		res.Body.Close()
		if perr != nil {
			return nil, fmt.Errorf("reading events: %w", perr)
		}
		out = append(out, page...)
		if len(page) == 0 || scrollID == "" {
			if scrollID != "" {
				if r, err := c.ES.ClearScroll(c.ES.ClearScroll.WithScrollID(scrollID)); err == nil {
					r.Body.Close()
				}
			}
			return out, nil
		}
		res, err = c.ES.Scroll(c.ES.Scroll.WithContext(ctx), c.ES.Scroll.WithScrollID(scrollID), c.ES.Scroll.WithScroll(time.Minute))
	}
}

func decodeScrollPage(body io.Reader, isError bool, status string) ([]review.Event, string, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, "", err
	}
	if isError {
		return nil, "", fmt.Errorf("%s: %s", status, strings.TrimSpace(string(raw)))
	}
	var res struct {
		ScrollID string `json:"_scroll_id"`
		Hits     struct {
			Hits []struct {
				ID     string           `json:"_id"`
				Fields map[string][]any `json:"fields"`
			} `json:"hits"`
		} `json:"hits"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, "", fmt.Errorf("decoding search response: %w", err)
	}
	out := make([]review.Event, 0, len(res.Hits.Hits))
	for _, h := range res.Hits.Hits {
		e := review.Event{DocID: h.ID, Attributes: map[string]any{}}
		for field, values := range h.Fields {
			if len(values) == 0 {
				continue
			}
			if field == review.FieldEventName {
				e.EventName, _ = values[0].(string)
				continue
			}
			e.Attributes[strings.TrimPrefix(field, review.Attr(""))] = values[0]
		}
		out = append(out, e)
	}
	return out, res.ScrollID, nil
}

// queryEventCount is how many statement events of this gateway Elasticsearch
// can find right now.
func (s *stack) queryEventCount() int {
	s.t.Helper()
	c, err := review.NewClient(s.esURL)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = c.Refresh(ctx, schema.EventsIndexPattern)
	_, total, err := c.Events(ctx, review.Filter{GatewayID: s.gatewayID, EventName: schema.EventDBQuery, Size: 1})
	if err != nil {
		s.t.Fatalf("counting events: %v", err)
	}
	return total
}

// snapshotSpool reads what a killed gateway left on disk: a copy of the
// spool directory is opened (and recovered) as the restarted gateway will
// open the original, and every record still pending upload is returned.
// These records were durable before the kill, so they must all reach
// Elasticsearch. It returns the lost-at-recovery count too.
func (s *stack) snapshotSpool() (map[eventKey]bool, uint64) {
	s.t.Helper()
	ring, err := keys.Load(filepath.Join(s.dir, "spool.keys"))
	if err != nil {
		s.t.Fatal(err)
	}
	snap := filepath.Join(s.t.TempDir(), "spool")
	if err := os.MkdirAll(snap, 0o700); err != nil {
		s.t.Fatal(err)
	}
	entries, err := os.ReadDir(s.spoolDir)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "lock" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.spoolDir, e.Name()))
		if err != nil {
			s.t.Fatal(err)
		}
		writeFile(s.t, filepath.Join(snap, e.Name()), string(b))
	}
	sp, err := spool.Open(snap, spool.Options{Keys: ring})
	if err != nil {
		s.t.Fatalf("the spool a killed gateway left does not open: %v", err)
	}
	defer sp.Close()
	out := map[eventKey]bool{}
	for {
		b, err := sp.ReadBatch(1000, 16<<20)
		if err != nil {
			s.t.Fatalf("reading the spool a killed gateway left: %v", err)
		}
		if b.Len() == 0 {
			break
		}
		for _, payload := range b.Records {
			out[recordKey(s.t, payload)] = true
		}
		if err := sp.Ack(b.Cursor); err != nil {
			s.t.Fatal(err)
		}
	}
	return out, sp.Stats().RecoveredLost
}

// recordKey decodes a spooled OTLP log record's session id and sequence.
func recordKey(t *testing.T, payload []byte) eventKey {
	var rec logspb.LogRecord
	if err := proto.Unmarshal(payload, &rec); err != nil {
		t.Fatalf("a spooled record is not an OTLP log record: %v", err)
	}
	var k eventKey
	for _, kv := range rec.Attributes {
		switch kv.Key {
		case schema.AttrSessionID:
			k.session = kv.Value.GetStringValue()
		case schema.AttrSeq:
			if _, ok := kv.Value.Value.(*commonpb.AnyValue_IntValue); ok {
				k.seq = kv.Value.GetIntValue()
			}
		}
	}
	return k
}

// faultLog is what a campaign knows about its faults.
type faultLog struct {
	kills        []time.Time       // when the gateway was SIGKILLed, in order
	onDisk       map[eventKey]bool // records found in the spool after a kill
	recoveryLost uint64            // records recovery counted lost, over all kills
}

// durabilityBound is how long before a kill a statement must have been
// acknowledged for its event to be guaranteed recorded. Zero in strict mode:
// a response is released only once its event is fsynced. Under the interval
// policy the event is buffered before the response is released and written
// at the next group commit, so the documented bound is fsync_interval; the
// margin covers scheduling delay of the flusher on a loaded two-core
// machine. DURABILITY.md states the same bound.
func durabilityBound(strict bool, fsyncInterval time.Duration) time.Duration {
	if strict {
		return 0
	}
	return fsyncInterval + 250*time.Millisecond
}

var insertRow = regexp.MustCompile(`^insert into (campaign_[0-9a-f]+) \(n, client\) values \((\d+), (\d+)\)$`)

// verifyCampaign waits until Elasticsearch holds everything the campaign
// must not lose, then checks for duplicates, gaps and false records:
//   - every statement acknowledged more than bound before the next kill (or
//     with no kill after it) has its event;
//   - every record found on disk after a kill has its event;
//   - no (session, seq) and no row number is indexed twice;
//   - sessions the clients ended cleanly are complete: seq 0..end, no gap;
//   - every acknowledged row is committed in PostgreSQL, and every event
//     recording a successful insert names a committed row.
func verifyCampaign(t *testing.T, s *stack, w *workload, faults faultLog, bound time.Duration, timeout time.Duration) {
	t.Helper()
	stmts := w.statements()
	sort.Slice(faults.kills, func(i, j int) bool { return faults.kills[i].Before(faults.kills[j]) })
	must := map[int64]statement{}
	window := map[int64]statement{} // acknowledged too close to a kill to be guaranteed
	for _, st := range stmts {
		if st.acked.IsZero() {
			continue
		}
		i, _ := slices.BinarySearchFunc(faults.kills, st.acked, func(k, a time.Time) int { return k.Compare(a) })
		if i < len(faults.kills) && !st.acked.Before(faults.kills[i].Add(-bound)) {
			window[st.row] = st
			continue
		}
		must[st.row] = st
	}
	if len(must) == 0 {
		t.Fatal("the workload acknowledged no statement: the campaign proved nothing")
	}

	var evs []review.Event
	var rows map[int64][]review.Event
	var keys map[eventKey]int
	testenv.Eventually(t, timeout, time.Second, func() (bool, string) {
		var err error
		if evs, err = s.allEvents(); err != nil {
			return false, err.Error() // polled again: a transient search failure is no verdict
		}
		rows, keys = indexEvents(t, evs, w.table)
		var missing []string
		for n := range must {
			if len(rows[n]) == 0 {
				missing = append(missing, strconv.FormatInt(n, 10))
			}
		}
		var missingDisk []string
		for k := range faults.onDisk {
			if keys[k] == 0 {
				missingDisk = append(missingDisk, k.String())
			}
		}
		ends := 0
		for _, e := range evs {
			if e.EventName == schema.EventSessionEnd {
				ends++
			}
		}
		wantEnds := int(w.ended.Load())
		return len(missing) == 0 && len(missingDisk) == 0 && ends >= wantEnds,
			fmt.Sprintf("%d events; acknowledged statements missing: %d of %d (%s); spooled records missing: %d of %d (%s); session ends %d/%d",
				len(evs), len(missing), len(must), firstFew(missing), len(missingDisk), len(faults.onDisk), firstFew(missingDisk), ends, wantEnds)
	})

	var dups []string
	for k, n := range keys {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s x%d", k, n))
		}
	}
	for n, list := range rows {
		if len(list) > 1 {
			dups = append(dups, fmt.Sprintf("row %d x%d", n, len(list)))
		}
	}
	if len(dups) > 0 {
		sort.Strings(dups)
		t.Errorf("%d duplicates in Elasticsearch: %s", len(dups), firstFew(dups))
	}

	// Sessions that ended cleanly lost nothing: contiguous from the start.
	var complete []review.Event
	for _, list := range bySession(evs) {
		if list[len(list)-1].EventName == schema.EventSessionEnd {
			complete = append(complete, list...)
		}
	}
	if got := len(bySession(complete)); got < int(w.ended.Load()) {
		t.Errorf("%d sessions ended cleanly but only %d are complete in Elasticsearch", w.ended.Load(), got)
	}
	checkExactlyOnce(t, complete, true)

	committed := w.committedRows()
	sent := map[int64]bool{}
	for _, st := range stmts {
		sent[st.row] = true
		if !st.acked.IsZero() && !committed[st.row] {
			t.Errorf("row %d was acknowledged to the client but is not in PostgreSQL", st.row)
		}
	}
	unrecorded := 0
	for n := range committed {
		if len(rows[n]) == 0 {
			unrecorded++
		}
	}
	for n, list := range rows {
		if !sent[n] {
			t.Errorf("Elasticsearch records row %d, which no client sent", n)
		}
		if tag := list[0].Str(schema.AttrDBCommandTag); tag == "INSERT 0 1" && !committed[n] {
			t.Errorf("Elasticsearch records row %d as inserted, but PostgreSQL does not hold it", n)
		}
	}

	// The measured loss window: how long before its kill the oldest lost
	// acknowledged statement was acknowledged. The bound is what is promised.
	inWindowRecorded, lostWindow := 0, time.Duration(0)
	for n, st := range window {
		if len(rows[n]) > 0 {
			inWindowRecorded++
			continue
		}
		i, _ := slices.BinarySearchFunc(faults.kills, st.acked, func(k, a time.Time) int { return k.Compare(a) })
		lostWindow = max(lostWindow, faults.kills[i].Sub(st.acked))
	}
	t.Logf("campaign: %d statements sent, %d acknowledged; %d guaranteed and all recorded; %d acknowledged within %v of a kill, %d of them recorded, "+
		"the oldest lost one acknowledged %v before its kill; %d records on disk after %d kills all recorded (recovery counted %d lost); "+
		"%d committed rows without an event; %d events, %d duplicates",
		len(stmts), len(must)+len(window), len(must), len(window), bound, inWindowRecorded, lostWindow.Round(time.Millisecond),
		len(faults.onDisk), len(faults.kills), faults.recoveryLost, unrecorded, len(evs), len(dups))
}

// indexEvents maps the campaign table's statement events by row number and
// every event by key.
func indexEvents(t *testing.T, evs []review.Event, table string) (map[int64][]review.Event, map[eventKey]int) {
	rows := map[int64][]review.Event{}
	keys := map[eventKey]int{}
	for _, e := range evs {
		keys[keyOf(e)]++
		if e.EventName != schema.EventDBQuery {
			continue
		}
		m := insertRow.FindStringSubmatch(e.Str(schema.AttrDBQueryText))
		if m == nil || m[1] != table {
			continue
		}
		n, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			t.Fatalf("row number in %q: %v", e.Str(schema.AttrDBQueryText), err)
		}
		rows[n] = append(rows[n], e)
	}
	return rows, keys
}

func firstFew(list []string) string {
	if len(list) > 8 {
		return strings.Join(list[:8], ", ") + ", ..."
	}
	return strings.Join(list, ", ")
}
