// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// maxExcerpt bounds the statement excerpt kept with a finding.
const maxExcerpt = 120

// tracker holds the state of every known session. It is a recordHook: each
// record first goes through the risk rules (which annotate it) and then
// updates its session. All methods are safe for concurrent use.
type tracker struct {
	cfg   *Config
	rules *ruleSet
	now   func() time.Time
	// keepTranscript is set when the summary provider reads the transcript.
	keepTranscript bool

	mu       sync.Mutex
	sessions map[string]*sessionState
	// dirty sessions must be persisted, removed ones deleted from storage.
	dirty   map[string]bool
	removed map[string]bool
	// unwritten sessions need a new document in the sessions index.
	unwritten map[string]bool
	// toSummarize are finished sessions waiting for the summarizer.
	toSummarize map[string]bool
}

func newTracker(cfg *Config, rules *ruleSet, now func() time.Time) *tracker {
	return &tracker{
		cfg:            cfg,
		rules:          rules,
		now:            now,
		keepTranscript: cfg.Summary.Provider == providerOpenAI,
		sessions:       map[string]*sessionState{},
		dirty:          map[string]bool{},
		removed:        map[string]bool{},
		unwritten:      map[string]bool{},
		toSummarize:    map[string]bool{},
	}
}

// recordView is what the tracker reads from one record, extracted before
// taking the lock.
type recordView struct {
	event     string
	sessionID string
	seq       int64
	ts        time.Time
	attrs     pcommon.Map
	text      string // the statement or command the rules saw
	matches   []match
}

func (t *tracker) processRecord(_ context.Context, _ pcommon.Resource, record plog.LogRecord) {
	attrs := record.Attributes()
	sessionID, ok := stringAttr(attrs, schema.AttrSessionID)
	if !ok {
		return
	}
	seq, ok := seqAttr(attrs)
	if !ok {
		return
	}
	switch record.EventName() {
	case schema.EventAuthFailure, schema.EventSummary, schema.EventSpoolUndecodable:
		// Not part of a live session: a refused login has a session id of
		// its own that would otherwise sit "active" until marked lost.
		return
	}
	v := recordView{event: record.EventName(), sessionID: sessionID, seq: seq, attrs: attrs, ts: record.Timestamp().AsTime()}
	v.text, v.matches = t.evaluateRisk(v.event, attrs)
	if len(v.matches) > 0 {
		annotateRisk(attrs, v.matches)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.apply(&v)
}

// evaluateRisk runs the rules for the record's kind and returns the text
// they looked at.
func (t *tracker) evaluateRisk(event string, attrs pcommon.Map) (string, []match) {
	var target ruleTarget
	var text string
	var rows int64
	switch event {
	case schema.EventDBQuery:
		target = targetSQL
		text, _ = stringAttr(attrs, schema.AttrDBQueryText)
		if v, ok := attrs.Get(schema.AttrDBReturnedRows); ok {
			rows = v.Int()
		}
	case schema.EventSSHCommand:
		target = targetShell
		text, _ = stringAttr(attrs, schema.AttrSSHCommand)
	case schema.EventSSHFile:
		target = targetFile
		op, _ := stringAttr(attrs, schema.AttrFileOperation)
		path, _ := stringAttr(attrs, schema.AttrFilePath)
		text = op + " " + path
		if dst, ok := stringAttr(attrs, schema.AttrFileTarget); ok {
			text += " " + dst
		}
	default:
		return "", nil
	}
	return text, t.rules.match(target, text, rows, nil)
}

// annotateRisk records the matches on the event itself.
func annotateRisk(attrs pcommon.Map, matches []match) {
	highest := 0
	rules := attrs.PutEmptySlice(schema.AttrRiskRules)
	reasons := attrs.PutEmptySlice(schema.AttrRiskReasons)
	for _, m := range matches {
		highest = max(highest, m.severity)
		rules.AppendEmpty().SetStr(m.ruleID)
		reasons.AppendEmpty().SetStr(m.reason)
	}
	attrs.PutStr(schema.AttrRiskSeverity, schema.RiskLevels[highest])
}

// apply updates the session of v. t.mu is held.
func (t *tracker) apply(v *recordView) {
	now := t.now()
	s, ok := t.sessions[v.sessionID]
	if !ok {
		s = &sessionState{ID: v.sessionID, Status: schema.StatusActive, MaxSeq: -1}
		t.sessions[v.sessionID] = s
		delete(t.removed, v.sessionID)
	}
	s.LastReceived = now
	if v.ts.After(s.LastSeen) {
		s.LastSeen = v.ts
	}
	fillIdentity(s, v.attrs)
	fresh := v.seq > s.MaxSeq
	if fresh {
		s.MaxSeq = v.seq
	}

	switch v.event {
	case schema.EventSessionStart:
		if !v.ts.IsZero() {
			s.Start = v.ts
		}
		if addr, ok := stringAttr(v.attrs, schema.AttrServerAddr); ok {
			s.ServerAddress = addr
		}
	case schema.EventSessionEnd:
		t.applyEnd(s, v)
	case schema.EventHeartbeat:
		reportedCounts(s, v.attrs)
		t.reactivate(s)
	default:
		t.reactivate(s)
		if v.ts.After(s.LastActivity) {
			s.LastActivity = v.ts
		}
		if fresh {
			countEvent(s, v.event, v.attrs)
		}
		t.collectObjects(s, v)
	}
	t.addFindings(s, v)
	t.touch(s)
}

// reactivate brings a lost session back: it was only cut off from us. Its
// provisional summary no longer applies.
func (t *tracker) reactivate(s *sessionState) {
	if s.Status != schema.StatusLost {
		return
	}
	s.Status = schema.StatusActive
	s.Summary, s.SummaryPending = nil, false
	delete(t.toSummarize, s.ID)
}

// fillIdentity copies the session attributes every record carries, so a
// session whose start event was lost still has its identity.
func fillIdentity(s *sessionState, attrs pcommon.Map) {
	setIfEmpty := func(dst *string, key string) {
		if *dst == "" {
			*dst, _ = stringAttr(attrs, key)
		}
	}
	setIfEmpty(&s.User, schema.AttrUserName)
	setIfEmpty(&s.Account, schema.AttrAccount)
	setIfEmpty(&s.ResourceType, schema.AttrResourceType)
	setIfEmpty(&s.ClientAddress, schema.AttrClientAddr)
	setIfEmpty(&s.GatewayID, schema.AttrGatewayID)
}

func (t *tracker) applyEnd(s *sessionState, v *recordView) {
	reportedCounts(s, v.attrs)
	s.EndReason, _ = stringAttr(v.attrs, schema.AttrEndReason)
	if !v.ts.IsZero() {
		s.End = v.ts
	}
	if d, ok := v.attrs.Get(schema.AttrDurationMs); ok && d.Type() == pcommon.ValueTypeDouble {
		s.DurationMs = d.Double()
	}
	if s.Start.IsZero() {
		if st, ok := stringAttr(v.attrs, schema.AttrStartTime); ok {
			s.Start, _ = time.Parse(time.RFC3339Nano, st)
		}
	}
	status := statusForEndReason(s.EndReason)
	if s.Status != status || s.Summary == nil {
		s.Status = status
		t.requestSummary(s)
	}
}

// reportedCounts takes the gateway's running figures from a heartbeat or the
// end event; bytes only ever grow, so a late heartbeat cannot lower them.
func reportedCounts(s *sessionState, attrs pcommon.Map) {
	s.ReportedQueries = max(s.ReportedQueries, intAttr(attrs, schema.AttrQueryCount))
	s.ReportedCmds = max(s.ReportedCmds, intAttr(attrs, schema.AttrCommandCount))
	s.ReportedErrs = max(s.ReportedErrs, intAttr(attrs, schema.AttrErrorCount))
	s.BytesIn = max(s.BytesIn, intAttr(attrs, schema.AttrBytesIn))
	s.BytesOut = max(s.BytesOut, intAttr(attrs, schema.AttrBytesOut))
}

// countEvent counts a query, a command and errors the way the gateway does.
func countEvent(s *sessionState, event string, attrs pcommon.Map) {
	switch event {
	case schema.EventDBQuery:
		s.Queries++
		if _, ok := stringAttr(attrs, schema.AttrDBStatusCode); ok {
			s.Errors++
		}
	case schema.EventSSHCommand:
		s.Commands++
		if intAttr(attrs, schema.AttrSSHExitStatus) != 0 {
			s.Errors++
		}
	case schema.EventSSHFile:
		if _, ok := stringAttr(attrs, schema.AttrErrorMessage); ok {
			s.Errors++
		}
	}
}

// collectObjects remembers the tables, files and hosts an event names, and
// the transcript line for a model-backed summary.
func (t *tracker) collectObjects(s *sessionState, v *recordView) {
	switch v.event {
	case schema.EventDBQuery:
		sqlTables(v.text, &s.Tables, &s.Dropped)
	case schema.EventSSHCommand:
		shellObjects(v.text, &s.Files, &s.Hosts)
	case schema.EventSSHFile:
		if p, ok := stringAttr(v.attrs, schema.AttrFilePath); ok {
			s.Files.add(p)
		}
	case schema.EventSSHForward:
		if target, ok := stringAttr(v.attrs, schema.AttrForwardTarget); ok {
			s.Hosts.add(target)
		}
	}
	if t.keepTranscript && v.text != "" {
		appendTranscript(s, v, t.cfg.Summary.OpenAI.MaxInputChars)
	}
}

// addFindings aggregates the record's rule matches on the session, once per
// rule and seq however often the record is replayed.
func (t *tracker) addFindings(s *sessionState, v *recordView) {
	for _, m := range v.matches {
		s.RiskLevel = max(s.RiskLevel, m.severity)
		if containsFinding(s.Findings, m.ruleID, v.seq) {
			continue
		}
		if len(s.Findings) >= t.cfg.Risk.MaxFindings {
			s.FindingsDropped++
			continue
		}
		s.Findings = append(s.Findings, findingState{
			RuleID: m.ruleID, Severity: schema.RiskLevels[m.severity], Reason: m.reason,
			Seq: v.seq, Excerpt: truncateRunes(v.text, maxExcerpt),
		})
	}
}

func containsFinding(findings []findingState, ruleID string, seq int64) bool {
	for _, f := range findings {
		if f.Seq == seq && f.RuleID == ruleID {
			return true
		}
	}
	return false
}

// touch marks s changed: to persist, to write, with a new revision. t.mu is
// held.
func (t *tracker) touch(s *sessionState) {
	s.Revision++
	t.dirty[s.ID] = true
	t.unwritten[s.ID] = true
}

// requestSummary queues s for the summarizer. t.mu is held.
func (t *tracker) requestSummary(s *sessionState) {
	if t.cfg.Summary.Provider == providerNone {
		return
	}
	s.SummaryPending = true
	t.toSummarize[s.ID] = true
}

// sweep marks silent active sessions lost and forgets finished sessions past
// their retention whose document and summary are written. It returns whether
// anything changed.
func (t *tracker) sweep() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	changed := false
	for id, s := range t.sessions {
		silent := now.Sub(s.LastReceived)
		switch {
		case s.Status == schema.StatusActive && silent >= t.cfg.lostAfter():
			s.Status = schema.StatusLost
			t.requestSummary(s)
			t.touch(s)
			changed = true
		case s.finished() && silent >= t.cfg.Retention && !t.unwritten[id] && !s.SummaryPending:
			delete(t.sessions, id)
			delete(t.dirty, id)
			t.removed[id] = true
			changed = true
		}
	}
	return changed
}

// takeSummaryRequests returns the sessions waiting for a summary.
func (t *tracker) takeSummaryRequests() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := make([]string, 0, len(t.toSummarize))
	for id := range t.toSummarize {
		ids = append(ids, id)
	}
	clear(t.toSummarize)
	return ids
}

// summaryInput copies what a summary provider needs, so that it runs
// without the lock.
func (t *tracker) summaryInput(id string) (sessionState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.sessions[id]
	if !ok || !s.SummaryPending {
		return sessionState{}, false
	}
	cp := *s
	cp.Findings = append([]findingState(nil), s.Findings...)
	cp.transcript = append([]byte(nil), s.transcript...)
	return cp, true
}

// storeSummary attaches a summary to the session. When the session finished
// again meanwhile (a lost session came back and ended), a newer request is
// queued and the summary stays pending.
func (t *tracker) storeSummary(id string, summary *summaryResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.sessions[id]
	if !ok || !s.finished() {
		return // gone, or a lost session that came back meanwhile
	}
	s.Summary = summary
	if !t.toSummarize[id] {
		s.SummaryPending = false
	}
	t.touch(s)
}

func intAttr(attrs pcommon.Map, key string) int64 {
	if v, ok := attrs.Get(key); ok && v.Type() == pcommon.ValueTypeInt {
		return v.Int()
	}
	return 0
}

// truncateRunes cuts s to at most n bytes on a rune boundary.
func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// restore installs the sessions loaded from storage after a restart. Every
// session is written to the sessions index again (its last write may have
// been lost), summaries that were pending are produced again, and silence
// is counted from now: the collector's own downtime must not make every live
// session lost at once.
func (t *tracker) restore(sessions map[string]*sessionState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for id, s := range sessions {
		if s.Status == schema.StatusActive && s.LastReceived.Before(now) {
			s.LastReceived = now
		}
		t.sessions[id] = s
		t.unwritten[id] = true
		if s.SummaryPending {
			t.toSummarize[id] = true
		}
	}
}
