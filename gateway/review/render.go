package review

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Text rendering of `pamtrail sessions`. Every recorded string goes through
// Sanitize before it reaches the writer: it is untrusted data.

const (
	timeLayout = "2006-01-02 15:04:05.000Z"
	// snippetWidth bounds a search hit's text so one hit is one line.
	snippetWidth = 100
	indent       = "    "
)

// WriteSessionTable prints sessions as an aligned table, one per line.
func WriteSessionTable(w io.Writer, sessions []Session, total int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tUSER\tACCOUNT\tTYPE\tSTATUS\tSTART\tDURATION\tQUERIES\tCOMMANDS\tERRORS\tRISK")
	for _, s := range sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n",
			cell(s.ID), cell(s.User), cell(s.Account), cell(s.ResourceType), cell(s.Status),
			formatTime(s.Start.Time), sessionDuration(s), s.Queries, s.Commands, s.Errors, cell(s.RiskLevel))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeShown(w, len(sessions), total, "sessions")
}

// WriteSessionDetail prints one session document: who, where, when, what it
// did, its risk findings and summary.
func WriteSessionDetail(w io.Writer, s Session) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("Session", cell(s.ID))
	status := cell(s.Status)
	if s.EndReason != "" {
		status += " (" + cell(s.EndReason) + ")"
	}
	row("Status", status)
	row("User", cell(s.User))
	account := cell(s.Account)
	if s.ResourceType != "" {
		account += " (" + cell(s.ResourceType) + ")"
	}
	row("Account", account)
	row("Client", cell(s.ClientAddress))
	row("Gateway", cell(s.GatewayID))
	row("Started", formatTime(s.Start.Time))
	if !s.End.IsZero() {
		row("Ended", formatTime(s.End.Time))
	}
	if !s.LastSeen.IsZero() {
		row("Last seen", formatTime(s.LastSeen.Time))
	}
	row("Duration", sessionDuration(s))
	row("Activity", fmt.Sprintf("%d queries, %d commands, %d errors; %d bytes in, %d bytes out",
		s.Queries, s.Commands, s.Errors, s.BytesIn, s.BytesOut))
	row("Risk", cell(s.RiskLevel))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range s.RiskFindings {
		fmt.Fprintf(w, "%s#%d %s %s: %s\n", indent, f.Seq, cell(f.Severity), cell(f.RuleID), cell(f.Reason))
	}
	if s.Summary != nil {
		writeSummary(w, *s.Summary)
	}
	return nil
}

func writeSummary(w io.Writer, sum Summary) {
	header := "Summary"
	if sum.Provider != "" {
		header += " (" + cell(sum.Provider) + ")"
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, indentLines(Sanitize(sum.Text, true)))
	for _, warn := range sum.Warnings {
		fmt.Fprintf(w, "%s! #%d %s\n", indent, warn.Seq, cell(warn.Text))
	}
	if sum.FallbackReason != "" {
		fmt.Fprintf(w, "%s(fallback to rules: %s)\n", indent, cell(sum.FallbackReason))
	}
}

// WriteEvents prints a session's events as its log: a header line per event
// (seq, time, event name, risk), the statement or command, then its
// response or output and the details that qualify it.
func WriteEvents(w io.Writer, events []Event) error {
	for _, e := range events {
		if err := writeEvent(w, e); err != nil {
			return err
		}
	}
	return nil
}

func writeEvent(w io.Writer, e Event) error {
	header := fmt.Sprintf("#%s  %s  %s", seqString(e), formatTime(e.Timestamp), cell(e.EventName))
	if sev := e.Str(schema.AttrRiskSeverity); sev != "" {
		header += fmt.Sprintf("  [risk %s: %s]", cell(sev), cell(joinAttr(e.Attributes[schema.AttrRiskRules])))
	}
	if _, err := fmt.Fprintln(w, header); err != nil {
		return err
	}
	if text := eventText(e); text != "" {
		fmt.Fprintln(w, indentLines(Sanitize(text, true)))
	}
	if resp := eventResponse(e); resp != "" {
		fmt.Fprintln(w, indentLines("=> "+Sanitize(resp, true)))
	}
	if details := eventDetails(e); len(details) > 0 {
		fmt.Fprintf(w, "%s(%s)\n", indent, strings.Join(details, ", "))
	}
	return nil
}

// eventText is what the person did: the statement, the command, or the
// record's human-readable body.
func eventText(e Event) string {
	for _, k := range []string{schema.AttrDBQueryText, schema.AttrSSHCommand} {
		if v := e.Str(k); v != "" {
			return v
		}
	}
	return e.Body
}

// eventResponse is what the target answered.
func eventResponse(e Event) string {
	for _, k := range []string{schema.AttrResponseText, schema.AttrSSHOutput, schema.AttrErrorMessage} {
		if v := e.Str(k); v != "" {
			return v
		}
	}
	return ""
}

// detailAttrs qualify an event, in print order, with their labels.
var detailAttrs = []struct{ key, label, unit string }{
	{schema.AttrDBCommandTag, "tag", ""},
	{schema.AttrDBReturnedRows, "rows", ""},
	{schema.AttrDBStatusCode, "sqlstate", ""},
	{schema.AttrErrorType, "error", ""},
	{schema.AttrSSHChannelType, "channel", ""},
	{schema.AttrSSHExitStatus, "exit status", ""},
	{schema.AttrSSHExitSignal, "signal", ""},
	{schema.AttrFileOperation, "file op", ""},
	{schema.AttrFilePath, "path", ""},
	{schema.AttrFileTarget, "target", ""},
	{schema.AttrForwardTarget, "forward", ""},
	{schema.AttrEndReason, "reason", ""},
	{schema.AttrAuthFailure, "auth failure", ""},
	{schema.AttrDurationMs, "took", "ms"},
	{schema.AttrResponseTrunc, "truncated", ""},
	{schema.AttrRedactions, "redactions", ""},
}

func eventDetails(e Event) []string {
	var out []string
	for _, d := range detailAttrs {
		v, ok := e.Attributes[d.key]
		if !ok || v == nil || v == "" || v == false {
			continue
		}
		out = append(out, d.label+" "+cell(joinAttr(v))+d.unit)
	}
	return out
}

// WriteSearchHits prints cross-session search results, one line per event
// with a snippet of the text that matched.
func WriteSearchHits(w io.Writer, events []Event, total int, text string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tTIME\tSEQ\tUSER\tEVENT\tMATCH")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(e.Str(schema.AttrSessionID)), formatTime(e.Timestamp),
			seqString(e), cell(e.Str(schema.AttrUserName)), cell(e.EventName), Snippet(matchedText(e, text), text, snippetWidth))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeShown(w, len(events), total, "matching events")
}

// matchedText is the first searched field that contains text, so that a hit
// in a response shows the response rather than the statement.
func matchedText(e Event, text string) string {
	candidates := []string{e.Str(schema.AttrDBQueryText), e.Str(schema.AttrResponseText),
		e.Str(schema.AttrSSHCommand), e.Str(schema.AttrSSHOutput), e.Body}
	for _, c := range candidates {
		if text != "" && containsFold(c, text) {
			return c
		}
	}
	for _, c := range candidates {
		if c != "" {
			return c
		}
	}
	return ""
}

// Snippet returns at most width characters of s around the first
// case-insensitive occurrence of text, on one sanitized line, with "…"
// marking what was cut.
func Snippet(s, text string, width int) string {
	s = strings.Join(strings.Fields(s), " ") // one line: searched text spans lines
	runes := []rune(s)
	if len(runes) <= width {
		return Sanitize(s, false)
	}
	start := 0
	if i := indexFold(s, text); i >= 0 {
		start = max(0, utf8.RuneCountInString(s[:i])-width/4)
	}
	end := min(len(runes), start+width)
	start = max(0, end-width)
	out := string(runes[start:end])
	if start > 0 {
		out = "…" + out
	}
	if end < len(runes) {
		out += "…"
	}
	return Sanitize(out, false)
}

func containsFold(s, sub string) bool { return indexFold(s, sub) >= 0 }

// indexFold is strings.Index ignoring case; the byte offset is into s.
// Lowercasing keeps byte offsets for ASCII, which is what SQL and shell
// search terms are; for other text the snippet merely starts elsewhere.
func indexFold(s, sub string) int {
	if sub == "" {
		return -1
	}
	i := strings.Index(strings.ToLower(s), strings.ToLower(sub))
	if i > len(s) {
		return -1
	}
	return i
}

func writeShown(w io.Writer, shown, total int, what string) error {
	var err error
	if shown < total {
		_, err = fmt.Fprintf(w, "(%d of %d %s shown; narrow the search or raise --limit)\n", shown, total, what)
	} else if total == 0 {
		_, err = fmt.Fprintf(w, "(no %s)\n", what)
	}
	return err
}

// cell sanitizes a value that must stay on one line.
func cell(s string) string { return Sanitize(s, false) }

func indentLines(s string) string {
	return indent + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+indent)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

func sessionDuration(s Session) string {
	switch {
	case s.DurationMs > 0:
		return formatDuration(time.Duration(s.DurationMs * float64(time.Millisecond)))
	case s.Status == schema.StatusActive:
		return "live"
	case !s.Start.IsZero() && !s.End.IsZero():
		return formatDuration(s.End.Sub(s.Start.Time))
	}
	return "-"
}

func formatDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func seqString(e Event) string {
	if n := e.Int(schema.AttrSeq); n >= 0 {
		return strconv.FormatInt(n, 10)
	}
	return "?"
}

// joinAttr renders an attribute value: arrays comma-joined, numbers without
// a spurious exponent.
func joinAttr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, 0, len(x))
		for _, p := range x {
			parts = append(parts, joinAttr(p))
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
