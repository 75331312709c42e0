package reviewtest

import (
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// SampleStart is when the sample session starts; fixed so that rendered
// output can be compared with golden files.
var SampleStart = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

// SampleSession is a PostgreSQL session that drops a table and changes a
// role's password (redacted), with a failed statement and a terminal escape
// sequence typed by the user: the events in seq order and the session
// document in the given status. Timestamps are deliberately not in seq
// order for seq 3 and 4 (pipelined statements keep their start times).
func SampleSession(id, user, status string) (SessionMeta, []Event, map[string]any) {
	m := SessionMeta{ID: id, User: user, Account: "demo-postgres", ResourceType: schema.ResourcePostgres,
		GatewayID: "gw-review", ClientAddress: "127.0.0.1"}
	at := func(ms int) time.Time { return SampleStart.Add(time.Duration(ms) * time.Millisecond) }
	query := func(seq int64, ms int, sql, resp string, extra map[string]any) Event {
		attrs := map[string]any{schema.AttrDBQueryText: sql, schema.AttrResponseText: resp, schema.AttrDBSystem: "postgresql"}
		for k, v := range extra {
			attrs[k] = v
		}
		return Event{Seq: seq, Time: at(ms), Name: schema.EventDBQuery, Body: sql, Attrs: attrs}
	}
	events := []Event{
		{Seq: 0, Time: at(0), Name: schema.EventSessionStart, Body: "session started",
			Attrs: map[string]any{schema.AttrServerAddr: "127.0.0.1", schema.AttrDBNamespace: "demo"}},
		query(1, 1000, "SELECT id, name FROM payroll WHERE id = 7", "SELECT 1\nid | name\n7 | Alice",
			map[string]any{schema.AttrDBCommandTag: "SELECT 1", schema.AttrDBReturnedRows: 1, schema.AttrDurationMs: 1.25}),
		query(2, 2000, "SELECT 1/0", "ERROR 22012: division by zero",
			map[string]any{schema.AttrDBStatusCode: "22012", schema.AttrErrorType: "22012", schema.AttrErrorMessage: "division by zero"}),
		query(3, 3500, "DROP TABLE payroll_archive", "DROP TABLE",
			map[string]any{schema.AttrDBCommandTag: "DROP TABLE", schema.AttrRiskSeverity: "high",
				schema.AttrRiskRules: []string{"sql.drop"}, schema.AttrRiskReasons: []string{"drops a table"}}),
		query(4, 3000, "ALTER ROLE report PASSWORD '[REDACTED]'", "ALTER ROLE",
			map[string]any{schema.AttrDBCommandTag: "ALTER ROLE", schema.AttrRedactions: 1, schema.AttrRiskSeverity: "high",
				schema.AttrRiskRules: []string{"sql.role_change"}, schema.AttrRiskReasons: []string{"changes a role"}}),
		query(5, 4000, "SELECT '\x1b]0;owned\x07\x1b[2J'", "SELECT 1",
			map[string]any{schema.AttrDBCommandTag: "SELECT 1"}),
	}
	doc := map[string]any{
		schema.SessionID: id, schema.SessionUser: user, schema.SessionAccount: m.Account,
		schema.SessionResourceType: m.ResourceType, schema.SessionClientAddress: m.ClientAddress,
		schema.SessionGatewayID: m.GatewayID, schema.SessionStatus: status,
		schema.SessionStart: SampleStart.Format(time.RFC3339Nano), schema.SessionLastSeen: at(4000).Format(time.RFC3339Nano),
		schema.SessionQueries: 5, schema.SessionCommands: 0, schema.SessionErrors: 1,
		schema.SessionBytesIn: 420, schema.SessionBytesOut: 1337,
		schema.SessionRiskLevel: "high",
		schema.SessionRiskFindings: []map[string]any{
			{"rule_id": "sql.drop", "severity": "high", "reason": "drops a table", "seq": 3},
			{"rule_id": "sql.role_change", "severity": "high", "reason": "changes a role", "seq": 4},
		},
		schema.SessionUpdated: at(4000).Format(time.RFC3339Nano),
	}
	if status != schema.StatusActive {
		doc[schema.SessionEnd] = at(5000).Format(time.RFC3339Nano)
		doc[schema.SessionDurationMs] = 5000
		doc[schema.SessionEndReason] = schema.EndClientQuit
		doc[schema.SessionSummary] = map[string]any{
			"text":     "alice queried payroll, dropped table payroll_archive and changed the password of role report.\x1b[8m",
			"provider": "rules",
			"warnings": []map[string]any{
				{"text": "DROP TABLE payroll_archive destroys data", "seq": 3},
				{"text": "role report got a new password", "seq": 4},
			},
			"generated_at": at(6000).Format(time.RFC3339Nano),
		}
	}
	return m, events, doc
}
