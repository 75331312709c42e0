// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package summary // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/summary"

import (
	"fmt"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Bounds of a summary, whichever provider wrote it: model output is
// untrusted text and is stored as capped data.
const (
	maxSummaryChars = 2000
	maxWarnings     = 20
	maxWarningWords = 20
	maxWarningChars = 300
	// namesInSummary is how many objects of a kind a sentence names.
	namesInSummary = 5
)

// Rules is the offline, deterministic summary: who did what, on
// which objects, and what matched a risk rule, in 2 to 4 sentences, with one
// warning per finding pointing at its event.
func Rules(s *state.Session, now time.Time) *state.Summary {
	sentences := []string{whoSentence(s), activitySentence(s)}
	if objects := objectsSentence(s); objects != "" {
		sentences = append(sentences, objects)
	}
	sentences = append(sentences, findingsSentence(s))

	warnings := make([]state.Warning, 0, min(len(s.Findings), maxWarnings))
	for _, f := range s.Findings {
		if len(warnings) == maxWarnings {
			break
		}
		text := f.Reason
		if f.Excerpt != "" {
			text += ": " + f.Excerpt
		}
		warnings = append(warnings, state.Warning{Text: capWords(text, maxWarningWords, maxWarningChars), Seq: f.Seq})
	}
	return &state.Summary{
		Text:        state.TruncateRunes(strings.Join(sentences, " "), maxSummaryChars),
		Provider:    ProviderRules,
		Warnings:    warnings,
		GeneratedAt: now.UTC(),
	}
}

func whoSentence(s *state.Session) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s used the %s account %s", orUnknown(s.User), orUnknown(s.ResourceType), orUnknown(s.Account))
	if s.ClientAddress != "" {
		fmt.Fprintf(&b, " from %s", s.ClientAddress)
	}
	if d := s.DurationMsOrUnknown(); d > 0 {
		fmt.Fprintf(&b, " for %s", (time.Duration(d) * time.Millisecond).Round(time.Second))
	}
	switch s.Status {
	case schema.StatusEnded:
		fmt.Fprintf(&b, "; the session ended (%s).", orUnknown(s.EndReason))
	case schema.StatusFailed:
		fmt.Fprintf(&b, "; the session failed (%s).", orUnknown(s.EndReason))
	case schema.StatusLost:
		b.WriteString("; the gateway stopped reporting the session, so it is marked lost.")
	default:
		b.WriteString("; the session is still active.")
	}
	return b.String()
}

func activitySentence(s *state.Session) string {
	queries := max(s.Queries, s.Reported.Queries)
	commands := max(s.Commands, s.Reported.Commands)
	errs := max(s.Errors, s.Reported.Errors)
	var parts []string
	if queries > 0 || s.ResourceType == schema.ResourcePostgres {
		parts = append(parts, plural(queries, "query", "queries"))
	}
	if commands > 0 || s.ResourceType == schema.ResourceSSH {
		parts = append(parts, plural(commands, "command", "commands"))
	}
	if len(parts) == 0 {
		parts = append(parts, "no queries or commands")
	}
	return fmt.Sprintf("It ran %s with %s.", strings.Join(parts, " and "), plural(errs, "error", "errors"))
}

func objectsSentence(s *state.Session) string {
	var parts []string
	if len(s.Tables) > 0 {
		parts = append(parts, "tables touched: "+names(s.Tables))
	}
	if len(s.Dropped) > 0 {
		parts = append(parts, "tables dropped: "+names(s.Dropped))
	}
	if len(s.Files) > 0 {
		parts = append(parts, "files: "+names(s.Files))
	}
	if len(s.Hosts) > 0 {
		parts = append(parts, "remote hosts: "+names(s.Hosts))
	}
	if len(parts) == 0 {
		return ""
	}
	out := strings.Join(parts, "; ") + "."
	return strings.ToUpper(out[:1]) + out[1:]
}

func findingsSentence(s *state.Session) string {
	total := len(s.Findings) + s.FindingsDropped
	if total == 0 {
		return "No risk rule matched."
	}
	var reasons []string
	for _, f := range s.Findings {
		if !containsString(reasons, f.Reason) && len(reasons) < namesInSummary {
			reasons = append(reasons, f.Reason)
		}
	}
	return fmt.Sprintf("%s matched risk rules (highest severity %s): %s.",
		plural(int64(total), "action", "actions"), schema.RiskLevels[s.RiskLevel], strings.Join(reasons, "; "))
}

func names(set state.ObjectSet) string {
	if len(set) <= namesInSummary {
		return strings.Join(set, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(set[:namesInSummary], ", "), len(set)-namesInSummary)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// capWords bounds a warning to maxWords words and maxChars bytes.
func capWords(text string, maxWords, maxChars int) string {
	words := strings.Fields(text)
	if len(words) > maxWords {
		words = append(words[:maxWords], "…")
	}
	return state.TruncateRunes(strings.Join(words, " "), maxChars)
}
