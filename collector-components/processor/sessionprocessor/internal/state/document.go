// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package state // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Document renders the session as its sessions-index document: the fields
// dashboards and the CLI read, and the whole state under `state` so that
// the next collector merges into exactly what this one saw.
func (s *Session) Document(now time.Time) map[string]any {
	doc := map[string]any{
		schema.SessionID:             s.ID,
		schema.SessionUser:           s.User,
		schema.SessionAccount:        s.Account,
		schema.SessionResourceType:   s.ResourceType,
		schema.SessionClientAddress:  s.ClientAddress,
		schema.SessionGatewayID:      s.GatewayID,
		schema.SessionServerAddress:  s.ServerAddress,
		schema.SessionStatus:         s.Status,
		schema.SessionQueries:        s.Queries,
		schema.SessionCommands:       s.Commands,
		schema.SessionErrors:         s.Errors,
		schema.SessionBytesIn:        s.BytesIn,
		schema.SessionBytesOut:       s.BytesOut,
		schema.SessionRiskLevel:      schema.RiskLevels[s.RiskLevel],
		schema.SessionUpdated:        formatTime(now),
		schema.SessionLastReceived:   formatTime(s.LastReceived),
		schema.SessionSummaryPending: s.SummaryPending,
		schema.SessionState:          s,
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
	if d := s.DurationMsOrUnknown(); d >= 0 {
		doc[schema.SessionDurationMs] = d
	}
	findings := make([]map[string]any, 0, len(s.Findings))
	for _, f := range s.Findings {
		findings = append(findings, map[string]any{
			"rule_id": f.RuleID, "severity": f.Severity, "reason": f.Reason, "seq": f.Seq,
		})
	}
	doc[schema.SessionRiskFindings] = findings
	s.addCheckpoint(doc)
	if s.FindingsDropped > 0 {
		doc[schema.SessionFindingsDropped] = s.FindingsDropped
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

// FromDocument reads the state back from a document's _source. A document
// without state (written before state was stored) starts a fresh state
// with the same id.
func FromDocument(id string, source json.RawMessage) (*Session, error) {
	var doc struct {
		State *Session `json:"state"`
	}
	if err := json.Unmarshal(source, &doc); err != nil {
		return nil, fmt.Errorf("decoding the document of session %q: %w", id, err)
	}
	if doc.State == nil || doc.State.ID != id {
		return New(id), nil
	}
	return doc.State, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
