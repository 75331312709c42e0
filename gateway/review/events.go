package review

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Client reads pamtrail indices.
type Client struct {
	ES *elasticsearch.Client
}

// NewClient connects to Elasticsearch at url.
func NewClient(url string) (*Client, error) {
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch %s: %w", url, err)
	}
	return &Client{ES: es}, nil
}

// Event is one recorded event document.
type Event struct {
	DocID     string    `json:"doc_id"`
	Timestamp time.Time `json:"timestamp"`
	// Observed is when the gateway recorded the event: the order of
	// recording across a client's sessions (Timestamp is when it happened).
	Observed   time.Time      `json:"observed,omitzero"`
	EventName  string         `json:"event_name"`
	Body       string         `json:"body,omitempty"`
	Attributes map[string]any `json:"attributes"`
}

// Str returns a string attribute ("" if absent).
func (e Event) Str(key string) string {
	s, _ := e.Attributes[key].(string)
	return s
}

// Int returns a numeric attribute (-1 if absent).
func (e Event) Int(key string) int64 {
	switch v := e.Attributes[key].(type) {
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return -1
}

// Filter selects events; zero fields do not filter.
type Filter struct {
	SessionID string
	GatewayID string
	User      string
	EventName string
	Text      string // full-text search of statements, commands and responses
	Since     time.Time
	Size      int // default 1000
	// MinSeq keeps events whose pam.seq is at least MinSeq (0: all); with
	// OrderBySeq it pages through one session and lets a live view ask
	// only for what it has not printed yet.
	MinSeq int64
	// OrderBySeq sorts by pam.seq alone: the recorded order within one
	// session, which timestamps (statement start times) need not follow.
	OrderBySeq bool
	// NewestFirst sorts by @timestamp descending (cross-session search).
	NewestFirst bool
	// EventNames keeps only these events (nil: every event).
	EventNames []string
	// ExcludeEventNames drops these events (heartbeats are noise in a log).
	ExcludeEventNames []string
}

func (f Filter) query() map[string]any {
	var must []any
	term := func(field, v string) {
		if v != "" {
			must = append(must, map[string]any{"term": map[string]any{field: v}})
		}
	}
	term(Attr(schema.AttrSessionID), f.SessionID)
	term(Attr(schema.AttrGatewayID), f.GatewayID)
	term(Attr(schema.AttrUserName), f.User)
	term(FieldEventName, f.EventName)
	if len(f.EventNames) > 0 {
		must = append(must, map[string]any{"terms": map[string]any{FieldEventName: f.EventNames}})
	}
	if f.Text != "" {
		must = append(must, map[string]any{"multi_match": map[string]any{
			"query": f.Text, "fields": TextFields, "type": "phrase", "lenient": true}})
	}
	if !f.Since.IsZero() {
		must = append(must, map[string]any{"range": map[string]any{FieldTimestamp: map[string]any{"gte": f.Since.UTC().Format(time.RFC3339Nano)}}})
	}
	if f.MinSeq > 0 {
		must = append(must, map[string]any{"range": map[string]any{Attr(schema.AttrSeq): map[string]any{"gte": f.MinSeq}}})
	}
	var mustNot []any
	if len(f.ExcludeEventNames) > 0 {
		mustNot = append(mustNot, map[string]any{"terms": map[string]any{FieldEventName: f.ExcludeEventNames}})
	}
	if len(must) == 0 && len(mustNot) == 0 {
		return map[string]any{"match_all": map[string]any{}}
	}
	b := map[string]any{"filter": must}
	if len(mustNot) > 0 {
		b["must_not"] = mustNot
	}
	return map[string]any{"bool": b}
}

func (f Filter) sort() []any {
	order := "asc"
	if f.NewestFirst && !f.OrderBySeq {
		order = "desc"
	}
	seq := map[string]any{Attr(schema.AttrSeq): map[string]any{"order": order, "unmapped_type": "long"}}
	if f.OrderBySeq {
		return []any{seq}
	}
	return []any{map[string]any{FieldTimestamp: map[string]any{"order": order}}, seq}
}

// Events returns matching events ordered by session and sequence number,
// and the total number of matches.
func (c *Client) Events(ctx context.Context, f Filter) ([]Event, int, error) {
	size := f.Size
	if size <= 0 {
		size = 1000
	}
	body := map[string]any{
		"query":            f.query(),
		"size":             size,
		"track_total_hits": true,
		"sort":             f.sort(),
	}
	res, err := searchHits[map[string]any](ctx, c, schema.EventsIndexPattern, body)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Event, 0, len(res.Hits.Hits))
	for _, h := range res.Hits.Hits {
		out = append(out, eventFromSource(h.ID, h.Source))
	}
	return out, res.Hits.Total.Value, nil
}

// sessionEventsPage is how many events one SessionEvents request asks for;
// a variable so that tests can exercise paging with a small session.
var sessionEventsPage = 1000

// Selection says which of a session's events to read.
type Selection struct {
	// Grep keeps only events whose statement, command or response
	// contains this text.
	Grep string
	// Only keeps these events (nil: every event but those in Exclude).
	Only []string
	// Exclude drops these events.
	Exclude []string
}

// TranscriptSelection is what a reviewer reads: what the person did and
// what answered, without heartbeats (no activity) and, unless raw, without
// the raw terminal chunks kept for replay (the command events already hold
// their output as text).
func TranscriptSelection(grep string, raw bool) Selection {
	sel := Selection{Grep: grep, Exclude: []string{schema.EventHeartbeat}}
	if !raw {
		sel.Exclude = append(sel.Exclude, schema.EventSSHOutput)
	}
	return sel
}

// TerminalSelection is the raw terminal stream: output chunks and resizes.
func TerminalSelection() Selection { return Selection{Only: []string{schema.EventSSHOutput}} }

// SessionEvents returns the selected events of one session from seq minSeq
// on, in seq order, paging through sessions larger than one search response.
func (c *Client) SessionEvents(ctx context.Context, sessionID string, sel Selection, minSeq int64) ([]Event, error) {
	page := sessionEventsPage
	var out []Event
	for {
		evs, _, err := c.Events(ctx, Filter{
			SessionID: sessionID, Text: sel.Grep, MinSeq: minSeq, OrderBySeq: true, Size: page,
			EventNames: sel.Only, ExcludeEventNames: sel.Exclude,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
		if len(evs) < page {
			return out, nil
		}
		last := evs[len(evs)-1].Int(schema.AttrSeq)
		if last < minSeq { // documents without pam.seq: cannot page further
			return out, nil
		}
		minSeq = last + 1
	}
}

// searchResponse is the part of a search response pamtrail reads; S is the
// type _source decodes into.
type searchResponse[S any] struct {
	Hits struct {
		Total struct{ Value int } `json:"total"`
		Hits  []struct {
			ID     string `json:"_id"`
			Source S      `json:"_source"`
		} `json:"hits"`
	} `json:"hits"`
}

func searchHits[S any](ctx context.Context, c *Client, index string, body any) (searchResponse[S], error) {
	var res searchResponse[S]
	raw, err := c.search(ctx, index, body)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, fmt.Errorf("decoding search response from %s: %w", index, err)
	}
	return res, nil
}

func eventFromSource(id string, src map[string]any) Event {
	e := Event{DocID: id, Attributes: map[string]any{}}
	if ts, ok := src["observed_timestamp"].(string); ok {
		e.Observed = parseTimestamp(ts)
	}
	if ts, ok := src[FieldTimestamp].(string); ok {
		e.Timestamp = parseTimestamp(ts)
	}
	e.EventName, _ = src[FieldEventName].(string)
	if b, ok := src["body"].(map[string]any); ok {
		e.Body, _ = b["text"].(string)
	}
	if a, ok := src["attributes"].(map[string]any); ok {
		flatten("", a, e.Attributes)
	}
	return e
}

// flatten turns {"session": {"id": x}} and {"session.id": x} alike into
// "session.id": x, whichever way the document was written.
func flatten(prefix string, in map[string]any, out map[string]any) {
	for k, v := range in {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if m, ok := v.(map[string]any); ok {
			flatten(key, m, out)
			continue
		}
		out[key] = v
	}
}

func (c *Client) search(ctx context.Context, index string, body any) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(body); err != nil {
		return nil, err
	}
	res, err := c.ES.Search(
		c.ES.Search.WithContext(ctx),
		c.ES.Search.WithIndex(index),
		c.ES.Search.WithBody(&buf),
		c.ES.Search.WithIgnoreUnavailable(true),
		c.ES.Search.WithAllowNoIndices(true),
		// A failed shard fails the search: its partial answer would show
		// a session with events missing, as if they had been deleted.
		c.ES.Search.WithAllowPartialSearchResults(false),
	)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch search: %w", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.IsError() {
		return nil, fmt.Errorf("elasticsearch search: %s: %s", res.Status(), strings.TrimSpace(string(raw)))
	}
	return raw, nil
}

// Refresh makes recent writes searchable now (tests and the live view).
func (c *Client) Refresh(ctx context.Context, index string) error {
	res, err := c.ES.Indices.Refresh(c.ES.Indices.Refresh.WithContext(ctx), c.ES.Indices.Refresh.WithIndex(index),
		c.ES.Indices.Refresh.WithIgnoreUnavailable(true), c.ES.Indices.Refresh.WithAllowNoIndices(true))
	if err != nil {
		return err
	}
	res.Body.Close()
	return nil
}

// parseTimestamp reads @timestamp as the exporter writes it in otel mode
// (epoch milliseconds with a fraction, "1795777167805.640297") or as an
// RFC 3339 date, which documents indexed by other means may carry.
func parseTimestamp(s string) time.Time {
	if ms, frac, ok := strings.Cut(s, "."); ok || !strings.ContainsAny(s, "-:T") {
		whole, err := strconv.ParseInt(ms, 10, 64)
		if err == nil {
			nanos := int64(0)
			if frac != "" {
				frac = (frac + "000000")[:6] // nanoseconds within the millisecond
				nanos, _ = strconv.ParseInt(frac, 10, 64)
			}
			return time.UnixMilli(whole).Add(time.Duration(nanos)).UTC()
		}
	}
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
