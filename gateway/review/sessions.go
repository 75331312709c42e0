package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// ErrNoSession is returned (wrapped) by Session for an unknown session id.
var ErrNoSession = errors.New("no session")

// Session is one document of the sessions index, written by the collector's
// session processor (field names: the schema.Session* constants).
type Session struct {
	ID            string        `json:"session_id"`
	User          string        `json:"user,omitempty"`
	Account       string        `json:"account,omitempty"`
	ResourceType  string        `json:"resource_type,omitempty"`
	ClientAddress string        `json:"client_address,omitempty"`
	GatewayID     string        `json:"gateway_id,omitempty"`
	Status        string        `json:"status,omitempty"`
	Start         Time          `json:"start_time,omitzero"`
	End           Time          `json:"end_time,omitzero"`
	LastSeen      Time          `json:"last_seen,omitzero"`
	LastActivity  Time          `json:"last_activity,omitzero"`
	DurationMs    float64       `json:"duration_ms,omitempty"`
	EndReason     string        `json:"end_reason,omitempty"`
	Queries       int64         `json:"count_queries"`
	Commands      int64         `json:"count_commands"`
	Errors        int64         `json:"count_errors"`
	BytesIn       int64         `json:"bytes_in"`
	BytesOut      int64         `json:"bytes_out"`
	RiskLevel     string        `json:"risk_level,omitempty"`
	RiskFindings  []RiskFinding `json:"risk_findings,omitempty"`
	Summary       *Summary      `json:"summary,omitempty"`
	Updated       Time          `json:"updated_at,omitzero"`
}

// RiskFinding is one matched risk rule, pointing at its event.
type RiskFinding struct {
	RuleID   string `json:"rule_id"`
	Severity string `json:"severity"`
	Reason   string `json:"reason"`
	Seq      int64  `json:"seq"`
}

// Summary is the AI (or rules) summary written when a session ends.
type Summary struct {
	Text           string           `json:"text"`
	Provider       string           `json:"provider,omitempty"`
	Warnings       []SummaryWarning `json:"warnings,omitempty"`
	FallbackReason string           `json:"fallback_reason,omitempty"`
	GeneratedAt    Time             `json:"generated_at,omitzero"`
}

// SummaryWarning is one action the summary flags for review.
type SummaryWarning struct {
	Text string `json:"text"`
	Seq  int64  `json:"seq"`
}

// Time decodes the date forms a pamtrail document may carry: RFC 3339,
// epoch milliseconds as a number, or epoch milliseconds as a string (what
// the exporter writes for date_nanos fields). It encodes as RFC 3339.
type Time struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		t.Time = parseTimestamp(s)
		return nil
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("date %s: neither a string nor epoch milliseconds", b)
	}
	t.Time = time.UnixMicro(int64(ms * 1000)).UTC()
	return nil
}

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// SessionFilter selects sessions; zero fields do not filter.
type SessionFilter struct {
	Status  string
	User    string
	Account string
	// MinRisk keeps sessions whose risk level is MinRisk or higher
	// (schema.RiskLevels order): "high" also lists critical sessions.
	MinRisk string
	// Since keeps sessions active at or after Since: started or last seen.
	Since time.Time
	Limit int // default 50
}

// Validate names the field holding a value no session can have.
func (f SessionFilter) Validate() error {
	statuses := []string{schema.StatusActive, schema.StatusEnded, schema.StatusFailed, schema.StatusLost}
	if f.Status != "" && !slices.Contains(statuses, f.Status) {
		return fmt.Errorf("status: %q is not one of %v", f.Status, statuses)
	}
	if f.MinRisk != "" && !slices.Contains(schema.RiskLevels, f.MinRisk) {
		return fmt.Errorf("risk: %q is not one of %v", f.MinRisk, schema.RiskLevels)
	}
	if f.Limit < 0 {
		return fmt.Errorf("limit: %d is negative", f.Limit)
	}
	return nil
}

func (f SessionFilter) query() map[string]any {
	var filter []any
	term := func(field, v string) {
		if v != "" {
			filter = append(filter, map[string]any{"term": map[string]any{field: v}})
		}
	}
	term(schema.SessionStatus, f.Status)
	term(schema.SessionUser, f.User)
	term(schema.SessionAccount, f.Account)
	if f.MinRisk != "" {
		levels := schema.RiskLevels[slices.Index(schema.RiskLevels, f.MinRisk):]
		filter = append(filter, map[string]any{"terms": map[string]any{schema.SessionRiskLevel: levels}})
	}
	if !f.Since.IsZero() {
		since := f.Since.UTC().Format(time.RFC3339Nano)
		filter = append(filter, map[string]any{"bool": map[string]any{
			"minimum_should_match": 1,
			"should": []any{
				map[string]any{"range": map[string]any{schema.SessionStart: map[string]any{"gte": since}}},
				map[string]any{"range": map[string]any{schema.SessionLastSeen: map[string]any{"gte": since}}},
			},
		}})
	}
	if len(filter) == 0 {
		return map[string]any{"match_all": map[string]any{}}
	}
	return map[string]any{"bool": map[string]any{"filter": filter}}
}

// Sessions returns matching sessions, newest start first, and the total
// number of matches.
func (c *Client) Sessions(ctx context.Context, f SessionFilter) ([]Session, int, error) {
	if err := f.Validate(); err != nil {
		return nil, 0, err
	}
	size := f.Limit
	if size == 0 {
		size = 50
	}
	body := map[string]any{
		"query":            f.query(),
		"size":             size,
		"track_total_hits": true,
		"sort": []any{
			map[string]any{schema.SessionStart: map[string]any{"order": "desc", "unmapped_type": "date"}},
			map[string]any{schema.SessionID: map[string]any{"order": "desc", "unmapped_type": "keyword"}},
		},
	}
	res, err := searchHits[Session](ctx, c, schema.SessionsIndexPattern, body)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Session, 0, len(res.Hits.Hits))
	for _, h := range res.Hits.Hits {
		out = append(out, h.Source)
	}
	return out, res.Hits.Total.Value, nil
}

// Session returns the document of one session. It searches the index
// pattern rather than GETting one index by _id so that sessions kept in
// several indices (one per month, a restored archive) are all found; the
// most recently updated copy wins.
func (c *Client) Session(ctx context.Context, id string) (Session, error) {
	if id == "" {
		return Session{}, errors.New("session id: empty")
	}
	body := map[string]any{
		"query": map[string]any{"term": map[string]any{schema.SessionID: id}},
		"size":  1,
		"sort":  []any{map[string]any{schema.SessionUpdated: map[string]any{"order": "desc", "unmapped_type": "date"}}},
	}
	res, err := searchHits[Session](ctx, c, schema.SessionsIndexPattern, body)
	if err != nil {
		return Session{}, err
	}
	if len(res.Hits.Hits) == 0 {
		return Session{}, fmt.Errorf("%w %s", ErrNoSession, id)
	}
	return res.Hits.Hits[0].Source, nil
}
