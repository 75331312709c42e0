// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package state // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Observation is what one record of a session contributes to its state.
type Observation struct {
	Seq   int64
	Event string
	Time  time.Time

	User, Account, ResourceType, ClientAddress, GatewayID string
	// ServerAddress comes with the start event.
	ServerAddress string

	// Query, Command and Error count the event the way the gateway does.
	Query, Command, Error bool
	Findings              []Finding
	RiskLevel             int
	Tables, Dropped       []string
	Files, Hosts          []string
	// Reported are the gateway's counts on heartbeats and the end event.
	Reported Counts
	End      *EndInfo
	// Checkpoint comes with pam.chain.checkpoint events.
	Checkpoint *schema.Checkpoint
}

// EndInfo is what the end event tells.
type EndInfo struct {
	Reason     string
	DurationMs float64
	Start      time.Time // the session's start, for a session whose start event is missing
}

// Merge applies observations received at now (the merging collector's
// clock) to s, and reports whether any of them was new. An observation whose
// seq is already in s.Seqs changes nothing but identity and liveness, so
// merging the same records twice, or in another order, or split between
// collectors, gives the same state. maxFindings caps s.Findings.
func Merge(s *Session, obs []Observation, now time.Time, maxFindings int) (fresh bool) {
	if now.After(s.LastReceived) {
		s.LastReceived = now
	}
	for i := range obs {
		o := &obs[i]
		fillIdentity(s, o)
		if o.Event == schema.EventHeartbeat {
			// A heartbeat repeats the seq of the session's latest event, so
			// it must not claim that seq (the event may arrive after it).
			// What it carries are maxima, exact however often and in
			// whatever order they are applied.
			fresh = applyRunning(s, o) || fresh
			continue
		}
		if !s.Seqs.Add(o.Seq) {
			continue
		}
		fresh = true
		apply(s, o, maxFindings)
	}
	if fresh && s.Status == schema.StatusLost {
		// A lost session that sends again was only cut off; its
		// provisional summary no longer applies.
		s.Status = schema.StatusActive
		s.Summary, s.SummaryPending = nil, false
	}
	if s.Finished() && s.Summary == nil {
		s.SummaryPending = true
	}
	return fresh
}

func fillIdentity(s *Session, o *Observation) {
	setIfEmpty := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	setIfEmpty(&s.User, o.User)
	setIfEmpty(&s.Account, o.Account)
	setIfEmpty(&s.ResourceType, o.ResourceType)
	setIfEmpty(&s.ClientAddress, o.ClientAddress)
	setIfEmpty(&s.GatewayID, o.GatewayID)
	setIfEmpty(&s.ServerAddress, o.ServerAddress)
}

// applyRunning takes the time and the gateway's running totals of an
// observation: all maxima (bytes and counts only grow, so a late heartbeat
// cannot lower them). It reports whether anything changed.
func applyRunning(s *Session, o *Observation) bool {
	before := [...]int64{s.Reported.Queries, s.Reported.Commands, s.Reported.Errors, s.BytesIn, s.BytesOut}
	seen := s.LastSeen
	if o.Time.After(s.LastSeen) {
		s.LastSeen = o.Time
	}
	s.Reported.Queries = max(s.Reported.Queries, o.Reported.Queries)
	s.Reported.Commands = max(s.Reported.Commands, o.Reported.Commands)
	s.Reported.Errors = max(s.Reported.Errors, o.Reported.Errors)
	s.BytesIn = max(s.BytesIn, o.Reported.BytesIn)
	s.BytesOut = max(s.BytesOut, o.Reported.BytesOut)
	after := [...]int64{s.Reported.Queries, s.Reported.Commands, s.Reported.Errors, s.BytesIn, s.BytesOut}
	return before != after || !seen.Equal(s.LastSeen)
}

// apply adds one new observation.
func apply(s *Session, o *Observation, maxFindings int) {
	switch o.Event {
	case schema.EventSessionStart:
		if !o.Time.IsZero() {
			s.Start = o.Time
		}
	case schema.EventSessionEnd, schema.EventCheckpoint:
	default:
		if o.Time.After(s.LastActivity) {
			s.LastActivity = o.Time
		}
	}
	applyRunning(s, o)
	if o.Query {
		s.Queries++
	}
	if o.Command {
		s.Commands++
	}
	if o.Error {
		s.Errors++
	}
	for _, name := range o.Tables {
		s.Tables.add(name)
	}
	for _, name := range o.Dropped {
		s.Dropped.add(name)
	}
	for _, name := range o.Files {
		s.Files.add(name)
	}
	for _, name := range o.Hosts {
		s.Hosts.add(name)
	}
	s.RiskLevel = max(s.RiskLevel, o.RiskLevel)
	for _, f := range o.Findings {
		addFinding(s, f, maxFindings)
	}
	if o.End != nil {
		applyEnd(s, o)
	}
	mergeCheckpoint(s, o.Checkpoint)
}

// addFinding keeps s.Findings ordered by seq and rule, capped at
// maxFindings with the earliest kept: the same list whichever collector
// merged which finding first. Every finding beyond the cap is counted.
func addFinding(s *Session, f Finding, maxFindings int) {
	i, _ := slices.BinarySearchFunc(s.Findings, f, func(a, b Finding) int {
		if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
			return c
		}
		return strings.Compare(a.RuleID, b.RuleID)
	})
	if i >= maxFindings {
		s.FindingsDropped++
		return
	}
	s.Findings = slices.Insert(s.Findings, i, f)
	if len(s.Findings) > maxFindings {
		s.Findings = s.Findings[:maxFindings]
		s.FindingsDropped++
	}
}

func applyEnd(s *Session, o *Observation) {
	s.EndReason = o.End.Reason
	if !o.Time.IsZero() {
		s.End = o.Time
	}
	s.DurationMs = o.End.DurationMs
	if s.Start.IsZero() {
		s.Start = o.End.Start
	}
	s.Status = StatusForEndReason(s.EndReason)
	// A provisional summary written while the session was lost no longer
	// applies.
	s.Summary = nil
}

// MarkLost makes an active session that no collector heard from for
// lostAfter lost, and reports whether it did.
func MarkLost(s *Session, now time.Time, lostAfter time.Duration) bool {
	if s.Status != schema.StatusActive || now.Sub(s.LastReceived) < lostAfter {
		return false
	}
	s.Status = schema.StatusLost
	s.SummaryPending = s.Summary == nil
	return true
}

// SummaryDue reports whether s should get its summary now: it is finished,
// has none, and either every record up to its end has been merged, it is
// lost, or no collector has heard from it for quietFor (a record of it never
// arrived).
func SummaryDue(s *Session, now time.Time, quietFor time.Duration) bool {
	if !s.Finished() || s.Summary != nil {
		return false
	}
	return s.Complete() || s.Status == schema.StatusLost || now.Sub(s.LastReceived) >= quietFor
}

// SetSummary stores a summary on a session that still waits for one, and
// reports whether it did: the first summary written after the end stays.
func SetSummary(s *Session, summary *Summary) bool {
	if !s.Finished() || s.Summary != nil {
		return false
	}
	s.Summary, s.SummaryPending = summary, false
	return true
}
