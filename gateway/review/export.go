package review

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Export formats of `pamtrail sessions export`.
const (
	FormatAsciicast = "asciicast"
	FormatJSONL     = "jsonl"
	FormatCSV       = "csv"
)

// ExportFormats lists the formats, in the order the usage names them.
var ExportFormats = []string{FormatAsciicast, FormatJSONL, FormatCSV}

// ExportSelection is the events a format needs: the terminal stream for
// asciicast, every event (heartbeats too) for jsonl, the actions for csv.
func ExportSelection(format string) Selection {
	switch format {
	case FormatAsciicast:
		return TerminalSelection()
	case FormatCSV:
		return Selection{Only: []string{schema.EventDBQuery, schema.EventSSHCommand}}
	}
	return Selection{}
}

// Export writes a session's events in format. events are in seq order, as
// ExportSelection(format) selects them.
func Export(w io.Writer, format string, s Session, events []Event) error {
	switch format {
	case FormatAsciicast:
		return WriteAsciicast(w, s, events)
	case FormatJSONL:
		return WriteJSONL(w, events)
	case FormatCSV:
		return WriteCSV(w, s, events)
	}
	return fmt.Errorf("format: %q is not one of %v", format, ExportFormats)
}

// WriteJSONL writes one event per line, as `show --json` renders events.
func WriteJSONL(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// CSVHeader is the first row of a CSV export.
var CSVHeader = []string{"time", "seq", "user", "account", "type", "text", "status", "rows", "exit_code", "duration_ms", "risk"}

// WriteCSV writes one row per query or command. It is read by people and
// spreadsheets, so recorded text is made safe as show makes it: control
// characters appear as visible escapes, and a cell a spreadsheet would take
// for a formula (starting with = + - @) is prefixed with a quote, so that
// opening the export cannot run what a session typed.
func WriteCSV(w io.Writer, s Session, events []Event) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, e := range events {
		var kind, text string
		switch e.EventName {
		case schema.EventDBQuery:
			kind, text = "query", e.Str(schema.AttrDBQueryText)
		case schema.EventSSHCommand:
			kind, text = "command", e.Str(schema.AttrSSHCommand)
		default:
			continue
		}
		user, account := e.Str(schema.AttrUserName), e.Str(schema.AttrAccount)
		if user == "" {
			user = s.User
		}
		if account == "" {
			account = s.Account
		}
		row := []string{
			e.Timestamp.UTC().Format(time.RFC3339Nano), seqString(e), user, account, kind, text,
			actionStatus(e), intCell(e, schema.AttrDBReturnedRows), intCell(e, schema.AttrSSHExitStatus),
			numberCell(e.Attributes[schema.AttrDurationMs]), e.Str(schema.AttrRiskSeverity),
		}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// actionStatus says how a query or command ended: ok, error SQLSTATE, not
// executed, failed (non-zero exit), or the signal that ended it.
func actionStatus(e Event) string {
	switch {
	case e.Str(schema.AttrDBStatusCode) != "":
		return "error " + e.Str(schema.AttrDBStatusCode)
	case e.Attributes[schema.AttrDBNotExecuted] == true:
		return "not executed"
	case e.Str(schema.AttrSSHExitSignal) != "":
		return "signal " + e.Str(schema.AttrSSHExitSignal)
	case e.Int(schema.AttrSSHExitStatus) > 0:
		return "failed"
	case e.EventName == schema.EventSSHCommand && e.Int(schema.AttrSSHExitStatus) < 0:
		return "" // an interactive command: its exit status is not known
	}
	return "ok"
}

func intCell(e Event, key string) string {
	if n := e.Int(key); n >= 0 {
		return strconv.FormatInt(n, 10)
	}
	return ""
}

func numberCell(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return ""
}

func csvSafe(s string) string {
	s = Sanitize(s, true)
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}
