// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package state // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/rules"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// maxExcerpt bounds the statement excerpt kept with a finding.
const maxExcerpt = 120

// Observe runs the risk rules over a record, records their matches on it
// (pam.risk.*), and returns what it contributes to its session. ok is false
// for records that belong to no live session: no session.id or pam.seq, a
// refused login (its own session id would otherwise sit "active" until
// lost), an undecodable spool record.
func Observe(rs *rules.Set, record plog.LogRecord) (Observation, string, bool) {
	attrs := record.Attributes()
	sessionID, ok := StringAttr(attrs, schema.AttrSessionID)
	if !ok {
		return Observation{}, "", false
	}
	seq, ok := SeqAttr(attrs)
	if !ok {
		return Observation{}, "", false
	}
	event := record.EventName()
	switch event {
	case schema.EventAuthFailure, schema.EventSummary, schema.EventSpoolUndecodable, schema.EventAdminAction:
		return Observation{}, "", false
	}
	o := Observation{Seq: seq, Event: event, Time: record.Timestamp().AsTime()}
	o.User, _ = StringAttr(attrs, schema.AttrUserName)
	o.Account, _ = StringAttr(attrs, schema.AttrAccount)
	o.ResourceType, _ = StringAttr(attrs, schema.AttrResourceType)
	o.ClientAddress, _ = StringAttr(attrs, schema.AttrClientAddr)
	o.GatewayID, _ = StringAttr(attrs, schema.AttrGatewayID)

	text, matches := evaluateRisk(rs, event, attrs)
	if len(matches) > 0 {
		annotateRisk(attrs, matches)
		for _, m := range matches {
			o.RiskLevel = max(o.RiskLevel, m.Severity)
			o.Findings = append(o.Findings, Finding{
				RuleID: m.RuleID, Severity: schema.RiskLevels[m.Severity], Reason: m.Reason,
				Seq: seq, Excerpt: TruncateRunes(text, maxExcerpt),
			})
		}
	}
	switch event {
	case schema.EventSessionStart:
		o.ServerAddress, _ = StringAttr(attrs, schema.AttrServerAddr)
	case schema.EventSessionEnd:
		o.Reported = reportedCounts(attrs)
		o.End = endInfo(attrs)
	case schema.EventHeartbeat:
		o.Reported = reportedCounts(attrs)
	case schema.EventCheckpoint:
		o.Checkpoint = checkpointOf(attrs)
	case schema.EventDBQuery:
		o.Query = true
		_, o.Error = StringAttr(attrs, schema.AttrDBStatusCode)
		var tables, dropped ObjectSet
		sqlTables(text, &tables, &dropped)
		o.Tables, o.Dropped = tables, dropped
	case schema.EventSSHCommand:
		o.Command = true
		o.Error = IntAttr(attrs, schema.AttrSSHExitStatus) != 0
		var files, hosts ObjectSet
		shellObjects(text, &files, &hosts)
		o.Files, o.Hosts = files, hosts
	case schema.EventSSHFile:
		_, o.Error = StringAttr(attrs, schema.AttrErrorMessage)
		if p, ok := StringAttr(attrs, schema.AttrFilePath); ok {
			o.Files = []string{p}
		}
	case schema.EventSSHForward:
		if target, ok := StringAttr(attrs, schema.AttrForwardTarget); ok {
			o.Hosts = []string{target}
		}
	}
	return o, sessionID, true
}

func reportedCounts(attrs pcommon.Map) Counts {
	return Counts{
		Queries:  IntAttr(attrs, schema.AttrQueryCount),
		Commands: IntAttr(attrs, schema.AttrCommandCount),
		Errors:   IntAttr(attrs, schema.AttrErrorCount),
		BytesIn:  IntAttr(attrs, schema.AttrBytesIn),
		BytesOut: IntAttr(attrs, schema.AttrBytesOut),
	}
}

func endInfo(attrs pcommon.Map) *EndInfo {
	end := &EndInfo{}
	end.Reason, _ = StringAttr(attrs, schema.AttrEndReason)
	if d, ok := attrs.Get(schema.AttrDurationMs); ok && d.Type() == pcommon.ValueTypeDouble {
		end.DurationMs = d.Double()
	}
	if st, ok := StringAttr(attrs, schema.AttrStartTime); ok {
		end.Start, _ = time.Parse(time.RFC3339Nano, st)
	}
	return end
}

// evaluateRisk runs the rules for the record's kind and returns the text
// they looked at.
func evaluateRisk(rs *rules.Set, event string, attrs pcommon.Map) (string, []rules.Match) {
	var target rules.Target
	var text string
	var rows int64
	switch event {
	case schema.EventDBQuery:
		target = rules.SQL
		text, _ = StringAttr(attrs, schema.AttrDBQueryText)
		if v, ok := attrs.Get(schema.AttrDBReturnedRows); ok {
			rows = v.Int()
		}
	case schema.EventSSHCommand:
		target = rules.Shell
		text, _ = StringAttr(attrs, schema.AttrSSHCommand)
	case schema.EventSSHFile:
		target = rules.File
		op, _ := StringAttr(attrs, schema.AttrFileOperation)
		path, _ := StringAttr(attrs, schema.AttrFilePath)
		text = op + " " + path
		if dst, ok := StringAttr(attrs, schema.AttrFileTarget); ok {
			text += " " + dst
		}
	default:
		return "", nil
	}
	return text, rs.Match(target, text, rows, policyMatch(attrs))
}

// policyMatchSeverity is the risk of an action the gateway's policy
// blocked or, in audit mode, would have blocked: someone tried what the
// account's owners chose to forbid.
const policyMatchSeverity = 3 // high, in schema.RiskLevels

// policyMatch turns the gateway's policy verdict on the event into a risk
// match "policy.<rule>", so a blocked or audited action raises the
// session's risk like any rule of the processor.
func policyMatch(attrs pcommon.Map) []rules.Match {
	rule, ok := StringAttr(attrs, schema.AttrPolicyRule)
	if !ok {
		return nil
	}
	reason := "blocked by policy rule " + rule
	if v, ok := attrs.Get(schema.AttrBlocked); !ok || v.Type() != pcommon.ValueTypeBool || !v.Bool() {
		reason = "policy rule " + rule + " would block this (audit mode)"
	}
	return []rules.Match{{RuleID: "policy." + rule, Severity: policyMatchSeverity, Reason: reason}}
}

// annotateRisk records the matches on the event itself.
func annotateRisk(attrs pcommon.Map, matches []rules.Match) {
	highest := 0
	ruleIDs := attrs.PutEmptySlice(schema.AttrRiskRules)
	reasons := attrs.PutEmptySlice(schema.AttrRiskReasons)
	for _, m := range matches {
		highest = max(highest, m.Severity)
		ruleIDs.AppendEmpty().SetStr(m.RuleID)
		reasons.AppendEmpty().SetStr(m.Reason)
	}
	attrs.PutStr(schema.AttrRiskSeverity, schema.RiskLevels[highest])
}

// StringAttr returns a non-empty string attribute.
func StringAttr(attrs pcommon.Map, key string) (string, bool) {
	v, ok := attrs.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeStr || v.Str() == "" {
		return "", false
	}
	return v.Str(), true
}

// SeqAttr returns pam.seq when it is a non-negative integer, as the recorder
// writes it.
func SeqAttr(attrs pcommon.Map) (int64, bool) {
	v, ok := attrs.Get(schema.AttrSeq)
	if !ok || v.Type() != pcommon.ValueTypeInt || v.Int() < 0 {
		return 0, false
	}
	return v.Int(), true
}

// IntAttr returns an integer attribute, 0 when absent or of another type.
func IntAttr(attrs pcommon.Map, key string) int64 {
	if v, ok := attrs.Get(key); ok && v.Type() == pcommon.ValueTypeInt {
		return v.Int()
	}
	return 0
}
