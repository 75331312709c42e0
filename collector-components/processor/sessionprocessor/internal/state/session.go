// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

// Package state is what the session processor knows about one session, and
// how what one collector saw merges into what every collector saw.
//
// A Session is the shared state of a session, stored in its sessions-index
// document. An Observation is what one record contributes. Merge applies
// observations to a Session exactly once per pam.seq, whatever the order and
// however often a record arrives, so any collector can take any record and
// the merged state is the same.
package state // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"

import (
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Session is the state of one session. It is stored as JSON inside its
// document (field `state`, not indexed), so field names are a storage
// format: add fields, never rename them.
type Session struct {
	ID            string `json:"id"`
	User          string `json:"user,omitempty"`
	Account       string `json:"account,omitempty"`
	ResourceType  string `json:"resource_type,omitempty"`
	ClientAddress string `json:"client_address,omitempty"`
	ServerAddress string `json:"server_address,omitempty"`
	GatewayID     string `json:"gateway_id,omitempty"`

	Status   string    `json:"status"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
	LastSeen time.Time `json:"last_seen,omitzero"` // latest record timestamp
	// LastActivity is the latest timestamp of what the person did (not a
	// heartbeat, start or end): an idle live session keeps its last
	// activity while its last_seen moves on.
	LastActivity time.Time `json:"last_activity,omitzero"`
	EndReason    string    `json:"end_reason,omitempty"`
	// DurationMs is the gateway's own figure from the end event, preferred
	// over End-Start because it uses the gateway's monotonic clock.
	DurationMs float64 `json:"duration_ms,omitempty"`
	// LastReceived is the latest collector clock at which any collector
	// merged a record of the session; lost detection compares it with the
	// sweeping collector's clock, so a gateway uploading an old backlog
	// counts as alive.
	LastReceived time.Time `json:"last_received"`

	// Seqs holds every pam.seq merged so far. Each observation is applied
	// once, when its seq first enters the set, so counts and findings are
	// exact however records are spread and replayed.
	Seqs SeqSet `json:"seqs"`

	Queries  int64 `json:"queries,omitempty"`
	Commands int64 `json:"commands,omitempty"`
	Errors   int64 `json:"errors,omitempty"`
	BytesIn  int64 `json:"bytes_in,omitempty"`
	BytesOut int64 `json:"bytes_out,omitempty"`
	// Reported* are the gateway's own counts (heartbeats, end event), kept
	// for the summary of a session whose records did not all arrive.
	Reported Counts `json:"reported,omitzero"`

	RiskLevel       int       `json:"risk_level"` // index in schema.RiskLevels
	Findings        []Finding `json:"findings,omitempty"`
	FindingsDropped int       `json:"findings_dropped,omitempty"`

	Tables  ObjectSet `json:"tables,omitempty"`
	Dropped ObjectSet `json:"dropped,omitempty"`
	Files   ObjectSet `json:"files,omitempty"`
	Hosts   ObjectSet `json:"hosts,omitempty"`

	Summary *Summary `json:"summary,omitempty"`
	// Checkpoint is the latest signed checkpoint (checkpoint.go).
	Checkpoint *schema.Checkpoint `json:"checkpoint,omitempty"`
	// SummaryPending is set while a finished session waits for its summary:
	// until every record up to the end has been merged, or for a provider
	// that runs outside the merge.
	SummaryPending bool `json:"summary_pending,omitempty"`
}

// Counts are a gateway's reported running figures.
type Counts struct {
	Queries  int64 `json:"queries,omitempty"`
	Commands int64 `json:"commands,omitempty"`
	Errors   int64 `json:"errors,omitempty"`
	BytesIn  int64 `json:"bytes_in,omitempty"`
	BytesOut int64 `json:"bytes_out,omitempty"`
}

// Finding is one rule match, kept on the session.
type Finding struct {
	RuleID   string `json:"rule_id"`
	Severity string `json:"severity"`
	Reason   string `json:"reason"`
	Seq      int64  `json:"seq"`
	// Excerpt is the start of the matched text, for summary warnings. It is
	// already redacted by the gateway.
	Excerpt string `json:"excerpt,omitempty"`
}

// Summary is the summary stored on the session document.
type Summary struct {
	Text           string    `json:"text"`
	Provider       string    `json:"provider"`
	Warnings       []Warning `json:"warnings"`
	FallbackReason string    `json:"fallback_reason,omitempty"`
	GeneratedAt    time.Time `json:"generated_at"`
}

// Warning is one action worth reviewing, pointing at its event.
type Warning struct {
	Text string `json:"text"`
	Seq  int64  `json:"seq"`
}

// New is the state of a session nothing is known about yet.
func New(id string) *Session {
	return &Session{ID: id, Status: schema.StatusActive}
}

// Clone returns a deep copy, so that a merge attempt that loses an
// optimistic-concurrency race leaves the state it started from untouched.
func (s *Session) Clone() *Session {
	cp := *s
	cp.Seqs = append(SeqSet(nil), s.Seqs...)
	cp.Findings = append([]Finding(nil), s.Findings...)
	cp.Tables = append(ObjectSet(nil), s.Tables...)
	cp.Dropped = append(ObjectSet(nil), s.Dropped...)
	cp.Files = append(ObjectSet(nil), s.Files...)
	cp.Hosts = append(ObjectSet(nil), s.Hosts...)
	if s.Summary != nil {
		sum := *s.Summary
		sum.Warnings = append([]Warning(nil), s.Summary.Warnings...)
		cp.Summary = &sum
	}
	return &cp
}

// Finished reports whether the session is no longer live.
func (s *Session) Finished() bool {
	return s.Status == schema.StatusEnded || s.Status == schema.StatusFailed || s.Status == schema.StatusLost
}

// Terminal reports whether the session ended for good (ended or failed); a
// lost session may come back.
func (s *Session) Terminal() bool {
	return s.Status == schema.StatusEnded || s.Status == schema.StatusFailed
}

// Complete reports whether every record from the start to the end has been
// merged: the session ended and its seqs are one run from 0.
func (s *Session) Complete() bool {
	return s.Terminal() && len(s.Seqs) == 1 && s.Seqs[0].From == 0
}

// MaxSeq is the highest seq merged, -1 for none.
func (s *Session) MaxSeq() int64 {
	if len(s.Seqs) == 0 {
		return -1
	}
	return s.Seqs[len(s.Seqs)-1].To
}

// StatusForEndReason maps pam.end.reason to ended or failed: a session that
// stopped because something broke (protocol, network, recording) failed;
// every other reason, including idle timeout and gateway shutdown, is an
// orderly end.
func StatusForEndReason(reason string) string {
	switch reason {
	case schema.EndProtocolError, schema.EndNetworkError, schema.EndRecordingError:
		return schema.StatusFailed
	}
	return schema.StatusEnded
}

// DurationMsOrUnknown is the session's length: the gateway's figure once ended,
// otherwise the span from start to the latest record; -1 when unknown.
func (s *Session) DurationMsOrUnknown() float64 {
	switch {
	case s.DurationMs > 0:
		return s.DurationMs
	case s.Start.IsZero():
		return -1
	case !s.End.IsZero():
		return float64(s.End.Sub(s.Start).Milliseconds())
	case !s.LastSeen.IsZero() && s.LastSeen.After(s.Start):
		return float64(s.LastSeen.Sub(s.Start).Milliseconds())
	}
	return 0
}

// TruncateRunes cuts s to at most n bytes on a rune boundary and marks the
// cut with "…".
func TruncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
