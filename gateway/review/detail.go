package review

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Connection is the state of a session's connection as a reviewer needs
// it: is it still live, when did the person last do something, how much
// went through, which gateway holds it, and how current the view is.
type Connection struct {
	// State is live, ended, failed or lost.
	State        string    `json:"state"`
	EndReason    string    `json:"end_reason,omitempty"`
	LastActivity time.Time `json:"last_activity,omitzero"`
	BytesIn      int64     `json:"bytes_in"`
	BytesOut     int64     `json:"bytes_out"`
	Gateway      string    `json:"gateway,omitempty"`
	// RecordedUntil is the newest record the view holds, heartbeats
	// included: nothing the gateway recorded before it is missing.
	RecordedUntil time.Time `json:"recorded_until,omitzero"`
	// Behind is, for a live session, how far the view trails now: the
	// upload cycle, the collector's batching and the index refresh.
	Behind        time.Duration `json:"-"`
	BehindSeconds float64       `json:"behind_seconds,omitempty"`
}

// StateLive is the Connection state of an active session.
const StateLive = "live"

// ConnectionOf derives the connection state from the session document and
// the events read with it (either may know more recent activity: the
// document is written in batches, events are read as they are indexed).
func ConnectionOf(s Session, events []Event, now time.Time) Connection {
	c := Connection{State: s.Status, EndReason: s.EndReason, LastActivity: s.LastActivity.Time,
		BytesIn: s.BytesIn, BytesOut: s.BytesOut, Gateway: s.GatewayID, RecordedUntil: s.LastSeen.Time}
	if s.Status == schema.StatusActive {
		c.State = StateLive
	}
	for _, e := range events {
		switch e.EventName {
		case schema.EventHeartbeat, schema.EventSessionEnd, schema.EventSummary:
		default:
			c.LastActivity = latest(c.LastActivity, e.Timestamp)
		}
		c.RecordedUntil = latest(c.RecordedUntil, latest(e.Timestamp, e.Observed))
		if c.Gateway == "" {
			c.Gateway = e.Str(schema.AttrGatewayID)
		}
	}
	if c.State == StateLive && !c.RecordedUntil.IsZero() {
		c.Behind = max(0, now.Sub(c.RecordedUntil))
		c.BehindSeconds = c.Behind.Seconds()
	}
	return c
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// WriteSessionDetail prints one session: its connection, who, where, when,
// what it did, its risk findings and summary.
func WriteSessionDetail(w io.Writer, s Session, c Connection) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("Session", cell(s.ID))
	row("Connection", connectionText(c))
	row("User", cell(s.User))
	account := cell(s.Account)
	if s.ResourceType != "" {
		account += " (" + cell(s.ResourceType) + ")"
	}
	row("Account", account)
	row("Client", cell(s.ClientAddress))
	row("Gateway", cell(c.Gateway))
	row("Started", formatTime(s.Start.Time))
	if !s.End.IsZero() {
		row("Ended", formatTime(s.End.Time))
	}
	if !c.LastActivity.IsZero() {
		row("Last activity", formatTime(c.LastActivity))
	}
	row("Duration", sessionDuration(s))
	row("Activity", fmt.Sprintf("%d queries, %d commands, %d errors", s.Queries, s.Commands, s.Errors))
	row("Traffic", trafficText(c))
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

func connectionText(c Connection) string {
	text := cell(c.State)
	switch {
	case c.State == StateLive && !c.RecordedUntil.IsZero():
		text += fmt.Sprintf(" (view %s behind: recorded until %s)", FormatDuration(c.Behind.Round(100*time.Millisecond)), formatTime(c.RecordedUntil))
	case c.EndReason != "":
		text += " (" + cell(c.EndReason) + ")"
	}
	return text
}

func trafficText(c Connection) string {
	if c.State == StateLive && c.BytesIn == 0 && c.BytesOut == 0 {
		return "counted when the session ends"
	}
	return fmt.Sprintf("%s in, %s out", FormatBytes(c.BytesIn), FormatBytes(c.BytesOut))
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
