package reviewtest

import (
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// SSH sample terminal: the prompt, with a title (OSC 0) and colours.
const (
	samplePrompt = "\x1b]0;alice@web: ~\x07\x1b[01;32malice@web\x1b[00m:\x1b[01;34m~\x1b[00m$ "
	// SampleTermWidth and SampleTermHeight are the size the sample pty
	// opens with; it is resized to 100x30 at 5 s.
	SampleTermWidth, SampleTermHeight = 80, 24
)

// SampleSSHStart is when the SSH sample session starts: an hour after the
// PostgreSQL one, so that lists of both have one order.
var SampleSSHStart = SampleStart.Add(time.Hour)

// SampleSSHSession is an interactive SSH session of three commands, each
// echoed in the raw terminal chunks kept for replay, with a resize, an
// escape sequence hidden in a command's output (an OSC 52 clipboard write),
// a risky rm -rf, an scp upload and a port forward: the events in seq order
// and the session document in the given status.
func SampleSSHSession(id, user, status string) (SessionMeta, []Event, map[string]any) {
	m := SessionMeta{ID: id, User: user, Account: "demo-ssh", ResourceType: schema.ResourceSSH,
		GatewayID: "gw-review", ClientAddress: "127.0.0.1"}
	at := func(ms int) time.Time { return SampleSSHStart.Add(time.Duration(ms) * time.Millisecond) }
	// The pty opens 100 ms into the session; elapsed is measured from there.
	output := func(seq int64, ms int, stream, data string) Event {
		return Event{Seq: seq, Time: at(ms), Name: schema.EventSSHOutput, Body: data,
			Attrs: map[string]any{schema.AttrSSHStream: stream, schema.AttrSSHElapsedMs: float64(ms - 100)}}
	}
	command := func(seq int64, ms int, cmd, out string, exit int, extra map[string]any) Event {
		attrs := map[string]any{schema.AttrSSHChannelType: "terminal", schema.AttrSSHCommand: cmd,
			schema.AttrSSHOutput: out, schema.AttrResponseText: out, schema.AttrSSHExitStatus: exit,
			schema.AttrDurationMs: 35.5}
		for k, v := range extra {
			attrs[k] = v
		}
		return Event{Seq: seq, Time: at(ms), Name: schema.EventSSHCommand, Body: cmd, Attrs: attrs}
	}
	events := []Event{
		{Seq: 0, Time: at(0), Name: schema.EventSessionStart, Body: "ssh session started by " + user + " on demo-ssh",
			Attrs: map[string]any{schema.AttrServerAddr: "127.0.0.1"}},
		output(1, 100, "resize", "80x24"),
		output(2, 150, "pty", samplePrompt),
		output(3, 1900, "pty", "ls --color"),
		output(4, 2000, "pty", "\r\n\x1b[01;34mreports\x1b[0m  notes.txt\r\n"+samplePrompt),
		command(5, 1900, "ls --color", "reports  notes.txt", 0, nil),
		output(6, 3000, "pty", "rm -rf /tmp/payroll_archive\r\n"+samplePrompt),
		command(7, 3000, "rm -rf /tmp/payroll_archive", "", 0, map[string]any{
			schema.AttrRiskSeverity: "high", schema.AttrRiskRules: []string{"shell.rm_rf"}, schema.AttrRiskReasons: []string{"recursive delete"}}),
		output(8, 5000, "resize", "100x30"),
		output(9, 6000, "pty", "cat notes.txt\r\nsecret plan \x1b[31mB\x1b[0m\x1b]52;c;cm0gLXJmIH4K\x07\r\n"+samplePrompt),
		command(10, 6000, "cat notes.txt", "secret plan B\x1b]52;c;cm0gLXJmIH4K\x07", 0, nil),
		{Seq: 11, Time: at(8000), Name: schema.EventSSHFile, Body: "upload /tmp/payroll.csv",
			Attrs: map[string]any{schema.AttrSSHChannelType: "scp", schema.AttrFileOperation: "upload",
				schema.AttrFilePath: "/tmp/payroll.csv", schema.AttrFileBytes: 300000}},
		{Seq: 12, Time: at(9000), Name: schema.EventSSHForward, Body: "forward to 127.0.0.1:5432",
			Attrs: map[string]any{schema.AttrForwardTarget: "127.0.0.1:5432", schema.AttrBytesOut: 1234}},
	}
	doc := map[string]any{
		schema.SessionID: id, schema.SessionUser: user, schema.SessionAccount: m.Account,
		schema.SessionResourceType: m.ResourceType, schema.SessionClientAddress: m.ClientAddress,
		schema.SessionGatewayID: m.GatewayID, schema.SessionStatus: status,
		schema.SessionStart: SampleSSHStart.Format(time.RFC3339Nano), schema.SessionLastSeen: at(9000).Format(time.RFC3339Nano),
		schema.SessionLastActivity: at(9000).Format(time.RFC3339Nano),
		schema.SessionQueries:      0, schema.SessionCommands: 3, schema.SessionErrors: 0,
		schema.SessionRiskLevel: "high",
		schema.SessionRiskFindings: []map[string]any{
			{"rule_id": "shell.rm_rf", "severity": "high", "reason": "recursive delete", "seq": 7},
		},
		schema.SessionUpdated: at(9000).Format(time.RFC3339Nano),
	}
	if status != schema.StatusActive {
		events = append(events, Event{Seq: 13, Time: at(10000), Name: schema.EventSessionEnd, Body: "session ended: client_quit",
			Attrs: map[string]any{schema.AttrEndReason: schema.EndClientQuit, schema.AttrDurationMs: 10000.0,
				schema.AttrBytesIn: 2048, schema.AttrBytesOut: 65536}})
		doc[schema.SessionEnd] = at(10000).Format(time.RFC3339Nano)
		doc[schema.SessionDurationMs] = 10000
		doc[schema.SessionEndReason] = schema.EndClientQuit
		doc[schema.SessionBytesIn] = 2048
		doc[schema.SessionBytesOut] = 65536
		doc[schema.SessionLastSeen] = at(10000).Format(time.RFC3339Nano)
	}
	return m, events, doc
}
