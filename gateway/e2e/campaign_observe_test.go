package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

// What the campaigns observe: every event document in Elasticsearch, and the
// records a killed gateway left in its spool.

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
	// A soak campaign holds over half a million events: reading them all
	// from a busy Elasticsearch takes minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
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
		c.ES.Search.WithIgnoreUnavailable(true), c.ES.Search.WithAllowNoIndices(true), c.ES.Search.WithAllowPartialSearchResults(false))
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
		Shards   struct {
			Failed   int             `json:"failed"`
			Failures json.RawMessage `json:"failures"`
		} `json:"_shards"`
		Hits struct {
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
	if res.Shards.Failed > 0 {
		return nil, "", fmt.Errorf("%d shards failed, the page would be partial: %s", res.Shards.Failed, res.Shards.Failures)
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
	// Opened as the gateway opens its spool: the config's values.
	sp, err := spool.Open(snap, config.Default().Spool.Options(ring, nil))
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
func recordKey(t testing.TB, payload []byte) eventKey {
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
