package review

import (
	"fmt"
	"io"
	"strings"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// The transcript is how `pamtrail sessions show` prints a session's events:
// one header line per event (seq, time, what kind of action, risk), the
// statement or command, then its response or output as plain text and the
// details that qualify it. Every recorded string is untrusted: output goes
// through PlainText, everything else through Sanitize, so no recorded byte
// can drive the reviewer's terminal.

// eventKinds names each event in a transcript header.
var eventKinds = map[string]string{
	schema.EventSessionStart: "session start",
	schema.EventSessionEnd:   "session end",
	schema.EventAuthFailure:  "auth failure",
	schema.EventDBQuery:      "query",
	schema.EventSSHCommand:   "command",
	schema.EventSSHOutput:    "terminal output",
	schema.EventSSHFile:      "file",
	schema.EventSSHForward:   "forward",
	schema.EventHeartbeat:    "heartbeat",
	schema.EventSummary:      "summary",
}

// WriteTranscript prints events as a session transcript.
func WriteTranscript(w io.Writer, events []Event) error {
	for _, e := range events {
		if err := writeTranscriptEvent(w, e); err != nil {
			return err
		}
	}
	return nil
}

func writeTranscriptEvent(w io.Writer, e Event) error {
	kind, ok := eventKinds[e.EventName]
	if !ok {
		kind = cell(e.EventName)
	}
	header := fmt.Sprintf("#%s  %s  %s", seqString(e), formatTime(e.Timestamp), kind)
	if sev := e.Str(schema.AttrRiskSeverity); sev != "" {
		header += fmt.Sprintf("  [risk %s: %s]", cell(sev), cell(joinAttr(e.Attributes[schema.AttrRiskRules])))
	}
	var b strings.Builder
	b.WriteString(header + "\n")
	line := func(s string) {
		if s != "" {
			b.WriteString(indentLines(s) + "\n")
		}
	}
	switch e.EventName {
	case schema.EventSSHCommand:
		line("$ " + Sanitize(e.Str(schema.AttrSSHCommand), true))
		line(PlainText(e.Str(schema.AttrSSHOutput)))
	case schema.EventDBQuery:
		line(Sanitize(eventText(e), true))
		if resp := eventResponse(e); resp != "" {
			line("=> " + PlainText(resp))
		}
	case schema.EventSSHOutput:
		// Raw chunks (--raw) stay raw, with every control character shown
		// as an escape: one chunk, one line.
		line(Sanitize(e.Body, false))
	case schema.EventSSHFile:
		line(fileText(e))
		if msg := e.Str(schema.AttrErrorMessage); msg != "" {
			line("=> " + PlainText(msg))
		}
	case schema.EventSSHForward:
		line("to " + cell(e.Str(schema.AttrForwardTarget)))
	default:
		line(Sanitize(e.Body, true))
		if msg := e.Str(schema.AttrErrorMessage); msg != "" {
			line("=> " + PlainText(msg))
		}
	}
	if details := eventDetails(e); len(details) > 0 {
		line("(" + strings.Join(details, ", ") + ")")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fileText is a file operation as a reviewer reads it: "upload /tmp/x"
// or "rename /a -> /b".
func fileText(e Event) string {
	text := cell(e.Str(schema.AttrFileOperation)) + " " + cell(e.Str(schema.AttrFilePath))
	if target := e.Str(schema.AttrFileTarget); target != "" {
		text += " -> " + cell(target)
	}
	return text
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

// detail is one attribute that qualifies an event, with how to print it.
type detail struct {
	key, label string
	format     func(v any) string // nil: the value as is
}

func bytesDetail(v any) string {
	n, ok := v.(float64)
	if !ok {
		return cell(joinAttr(v))
	}
	return FormatBytes(int64(n))
}

func millisDetail(v any) string {
	ms, ok := v.(float64)
	if !ok {
		return cell(joinAttr(v))
	}
	return formatMillis(ms)
}

// detailAttrs qualify an event, in print order.
var detailAttrs = []detail{
	{schema.AttrDBCommandTag, "tag", nil},
	{schema.AttrDBReturnedRows, "rows", nil},
	{schema.AttrDBStatusCode, "sqlstate", nil},
	{schema.AttrDBNotExecuted, "not executed", nil},
	{schema.AttrSSHExitStatus, "exit", nil},
	{schema.AttrSSHExitSignal, "signal", nil},
	{schema.AttrSSHStream, "stream", nil},
	{schema.AttrFileBytes, "", bytesDetail},
	{schema.AttrEndReason, "reason", nil},
	{schema.AttrAuthFailure, "auth failure", nil},
	{schema.AttrDurationMs, "took", millisDetail},
	{schema.AttrBytesIn, "in", bytesDetail},
	{schema.AttrBytesOut, "out", bytesDetail},
	{schema.AttrTextTrunc, "text truncated", nil},
	{schema.AttrResponseTrunc, "truncated", nil},
	{schema.AttrRedactions, "redactions", nil},
}

func eventDetails(e Event) []string {
	var out []string
	if ch := e.Str(schema.AttrSSHChannelType); ch != "" && ch != "terminal" {
		out = append(out, cell(ch))
	}
	for _, d := range detailAttrs {
		v, ok := e.Attributes[d.key]
		if !ok || v == nil || v == "" || v == false {
			continue
		}
		text := cell(joinAttr(v))
		if d.format != nil {
			text = d.format(v)
		}
		if v == true {
			text = ""
		}
		out = append(out, strings.TrimSpace(d.label+" "+text))
	}
	return out
}
