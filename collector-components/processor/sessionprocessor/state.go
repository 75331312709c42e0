// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// sessionState is what the processor knows about one session. It is
// persisted as JSON through the storage extension, so field names are part
// of the on-disk format: add fields, never rename them.
type sessionState struct {
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
	// heartbeat): an idle live session keeps its last activity while its
	// last_seen moves on.
	LastActivity time.Time `json:"last_activity,omitzero"`
	EndReason    string    `json:"end_reason,omitempty"`
	// DurationMs is the gateway's own figure from the end event, preferred
	// over End-Start because it uses the gateway's monotonic clock.
	DurationMs float64 `json:"duration_ms,omitempty"`
	// LastReceived is the collector's clock when the session last sent
	// anything; lost detection uses it, so a gateway uploading an old backlog
	// counts as alive.
	LastReceived time.Time `json:"last_received"`

	// Counts seen by the processor (each seq counted once) and as reported by
	// the gateway on heartbeats and the end event; the document shows the
	// larger, which survives both lost records and replays.
	Queries, Commands, Errors                   int64 `json:",omitempty"`
	ReportedQueries, ReportedCmds, ReportedErrs int64 `json:",omitempty"`
	BytesIn, BytesOut                           int64 `json:",omitempty"`
	// MaxSeq is the highest pam.seq counted; a replayed record (seq <=
	// MaxSeq) does not count twice.
	MaxSeq int64 `json:"max_seq"`

	RiskLevel       int            `json:"risk_level"` // index in schema.RiskLevels
	Findings        []findingState `json:"findings,omitempty"`
	FindingsDropped int            `json:"findings_dropped,omitempty"`

	Tables  objectSet `json:"tables,omitempty"`
	Dropped objectSet `json:"dropped,omitempty"`
	Files   objectSet `json:"files,omitempty"`
	Hosts   objectSet `json:"hosts,omitempty"`

	Summary *summaryResult `json:"summary,omitempty"`
	// SummaryPending is set when the session finished and its summary is not
	// yet stored; after a restart the summary is produced again.
	SummaryPending bool `json:"summary_pending,omitempty"`

	// Revision increases with every change; the sessions writer uses it to
	// tell whether the document it wrote is still the current state.
	Revision int64 `json:"revision"`

	// transcript is the redacted session text for a model-backed summary,
	// capped at summary::openai::max_input_chars. It is kept in memory only
	// (persisting it on every flush would cost more than the summary is
	// worth); after a restart the openai provider falls back to rules.
	transcript []byte
}

// findingState is one rule match, kept on the session.
type findingState struct {
	RuleID   string `json:"rule_id"`
	Severity string `json:"severity"`
	Reason   string `json:"reason"`
	Seq      int64  `json:"seq"`
	// Excerpt is the start of the matched text, for summary warnings. It is
	// already redacted by the gateway.
	Excerpt string `json:"excerpt,omitempty"`
}

// summaryResult is the summary stored on the session document.
type summaryResult struct {
	Text           string           `json:"text"`
	Provider       string           `json:"provider"`
	Warnings       []summaryWarning `json:"warnings"`
	FallbackReason string           `json:"fallback_reason,omitempty"`
	GeneratedAt    time.Time        `json:"generated_at"`
}

// summaryWarning is one action worth reviewing, pointing at its event.
type summaryWarning struct {
	Text string `json:"text"`
	Seq  int64  `json:"seq"`
}

// finished reports whether the session is no longer live.
func (s *sessionState) finished() bool {
	return s.Status == schema.StatusEnded || s.Status == schema.StatusFailed || s.Status == schema.StatusLost
}

// statusForEndReason maps pam.end.reason to ended or failed: a session that
// stopped because something broke (protocol, network, recording) failed;
// every other reason, including idle timeout and gateway shutdown, is an
// orderly end.
func statusForEndReason(reason string) string {
	switch reason {
	case schema.EndProtocolError, schema.EndNetworkError, schema.EndRecordingError:
		return schema.StatusFailed
	}
	return schema.StatusEnded
}

// Local names of session-document fields that gateway/schema does not define
// yet. TODO(lead): move to gateway/schema.
const (
	docServerAddress   = schema.SessionServerAddress
	docFindingsDropped = schema.SessionFindingsDropped
)

// document renders the session as its sessions-index document.
func (s *sessionState) document(now time.Time) map[string]any {
	doc := map[string]any{
		schema.SessionID:            s.ID,
		schema.SessionUser:          s.User,
		schema.SessionAccount:       s.Account,
		schema.SessionResourceType:  s.ResourceType,
		schema.SessionClientAddress: s.ClientAddress,
		schema.SessionGatewayID:     s.GatewayID,
		docServerAddress:            s.ServerAddress,
		schema.SessionStatus:        s.Status,
		schema.SessionQueries:       max(s.Queries, s.ReportedQueries),
		schema.SessionCommands:      max(s.Commands, s.ReportedCmds),
		schema.SessionErrors:        max(s.Errors, s.ReportedErrs),
		schema.SessionBytesIn:       s.BytesIn,
		schema.SessionBytesOut:      s.BytesOut,
		schema.SessionRiskLevel:     schema.RiskLevels[s.RiskLevel],
		schema.SessionUpdated:       formatTime(now),
	}
	if !s.Start.IsZero() {
		doc[schema.SessionStart] = formatTime(s.Start)
	}
	if !s.LastSeen.IsZero() {
		doc[schema.SessionLastSeen] = formatTime(s.LastSeen)
	}
	if !s.LastActivity.IsZero() {
		doc[schema.SessionLastActivity] = formatTime(s.LastActivity)
	}
	if !s.End.IsZero() {
		doc[schema.SessionEnd] = formatTime(s.End)
		doc[schema.SessionEndReason] = s.EndReason
	}
	if d := s.durationMs(); d >= 0 {
		doc[schema.SessionDurationMs] = d
	}
	findings := make([]map[string]any, 0, len(s.Findings))
	for _, f := range s.Findings {
		findings = append(findings, map[string]any{
			"rule_id": f.RuleID, "severity": f.Severity, "reason": f.Reason, "seq": f.Seq,
		})
	}
	doc[schema.SessionRiskFindings] = findings
	if s.FindingsDropped > 0 {
		doc[docFindingsDropped] = s.FindingsDropped
	}
	if s.Summary != nil {
		warnings := make([]map[string]any, 0, len(s.Summary.Warnings))
		for _, w := range s.Summary.Warnings {
			warnings = append(warnings, map[string]any{"text": w.Text, "seq": w.Seq})
		}
		summary := map[string]any{
			"text":         s.Summary.Text,
			"provider":     s.Summary.Provider,
			"warnings":     warnings,
			"generated_at": formatTime(s.Summary.GeneratedAt),
		}
		if s.Summary.FallbackReason != "" {
			summary["fallback_reason"] = s.Summary.FallbackReason
		}
		doc[schema.SessionSummary] = summary
	}
	return doc
}

// durationMs is the session's length: the gateway's figure once ended,
// otherwise the span from start to the latest record; -1 when unknown.
func (s *sessionState) durationMs() float64 {
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

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
