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
		return FormatDuration(time.Duration(s.DurationMs * float64(time.Millisecond)))
	case s.Status == schema.StatusActive:
		return "live"
	case !s.Start.IsZero() && !s.End.IsZero():
		return FormatDuration(s.End.Sub(s.Start.Time))
	}
	return "-"
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
