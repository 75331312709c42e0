package review

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// ActionEvents are the events a search returns by default: one per thing a
// person did (a statement, a command, a file operation, a forward). The raw
// terminal chunks that echo a command are left out, so a command is found
// once, not once more per chunk that displayed it.
var ActionEvents = []string{schema.EventDBQuery, schema.EventSSHCommand, schema.EventSSHFile, schema.EventSSHForward}

// SearchFilter is the cross-session search of text: one hit per action, or
// with raw every event but heartbeats, raw terminal chunks included.
func SearchFilter(text string, raw bool) Filter {
	f := Filter{Text: text, NewestFirst: true}
	if raw {
		f.ExcludeEventNames = []string{schema.EventHeartbeat}
	} else {
		f.EventNames = ActionEvents
	}
	return f
}

// WriteSearchHits prints cross-session search results, one line per hit:
// the action (statement, command, file operation) and, when the text was
// found in what answered, the matching line of that output.
func WriteSearchHits(w io.Writer, events []Event, total int, text string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tTIME\tSEQ\tUSER\tACTION\tMATCHING OUTPUT")
	for _, e := range events {
		action, output := searchHit(e, text)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(e.Str(schema.AttrSessionID)), formatTime(e.Timestamp),
			seqString(e), cell(e.Str(schema.AttrUserName)), action, output)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeShown(w, len(events), total, "matching actions")
}

// searchHit renders one hit as its action and the output line that
// matched ("-" when the action itself matched).
func searchHit(e Event, text string) (action, output string) {
	switch e.EventName {
	case schema.EventSSHCommand:
		action = "$ " + e.Str(schema.AttrSSHCommand)
	case schema.EventSSHFile:
		action = e.Str(schema.AttrFileOperation) + " " + e.Str(schema.AttrFilePath)
		if target := e.Str(schema.AttrFileTarget); target != "" {
			action += " -> " + target
		}
	case schema.EventSSHOutput:
		return "[terminal output]", Snippet(PlainText(e.Body), text, snippetWidth)
	default:
		action = eventText(e)
	}
	if containsFold(action, text) {
		return Snippet(action, text, snippetWidth), "-"
	}
	for _, resp := range []string{e.Str(schema.AttrSSHOutput), e.Str(schema.AttrResponseText), e.Str(schema.AttrErrorMessage), e.Body} {
		if line := matchingLine(PlainText(resp), text); line != "" {
			return Snippet(action, "", snippetWidth/2), Snippet(line, text, snippetWidth)
		}
	}
	return Snippet(action, text, snippetWidth), "-"
}

// matchingLine is the first line of s that contains text, ignoring case.
func matchingLine(s, text string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if containsFold(line, text) {
			return line
		}
	}
	return ""
}
