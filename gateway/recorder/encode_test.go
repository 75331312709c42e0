package recorder

import (
	"context"
	"slices"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Invalid UTF-8 that reaches the recorder is replaced, field by field: the
// record still decodes as OTLP, keeps its session attributes and names the
// repaired fields, so it stays searchable by session, user and account.
func TestInvalidUTF8IsRepairedKeepingSessionAttributes(t *testing.T) {
	const bad = "select '\xa4' -- \xff"
	tests := []struct {
		name       string
		user       string
		record     func(r *OTel, s Session) error
		wantFields []string
	}{
		{name: "query text", user: "alice", record: func(_ *OTel, s Session) error {
			return s.Query(Query{Text: bad, CommandTag: "SELECT 1"})
		}, wantFields: []string{"body", schema.AttrDBQueryText}},
		{name: "params, columns, error, notices", user: "alice", record: func(_ *OTel, s Session) error {
			return s.Query(Query{Text: "select $1", Params: []string{"'ok'", "'\xe9'"}, Columns: []string{"caf\xe9"},
				ErrorCode: "22P02", ErrorMessage: "bad \xa4", Notices: []string{"\xa4"}})
		}, wantFields: []string{schema.AttrDBParams, schema.AttrDBColumns, schema.AttrErrorMessage, schema.AttrResponseText}},
		{name: "user name of a refused login", user: "caf\xe9", record: func(r *OTel, _ Session) error {
			return r.AuthFailure(context.Background(), AuthFailure{User: "caf\xe9", Account: "demo", Reason: schema.AuthUnknownUser, Message: "no such user"})
		}, wantFields: []string{schema.AttrUserName}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			r := newTestRecorder(t, sink, Policy{FailClosed: true})
			s, err := r.SessionStart(context.Background(), SessionInfo{ID: "s-enc", User: tt.user, Account: "demo", ResourceType: schema.ResourcePostgres})
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.record(r, s); err != nil {
				t.Fatal(err)
			}
			recs := sink.decoded(t) // fails on any invalid UTF-8
			last := attrs(recs[len(recs)-1])
			if last[schema.AttrSessionID].GetStringValue() == "" || last[schema.AttrAccount].GetStringValue() != "demo" || last[schema.AttrUserName].GetStringValue() == "" {
				t.Fatalf("session attributes lost: %v", last)
			}
			var repaired []string
			for _, v := range last[schema.AttrTextRepaired].GetArrayValue().GetValues() {
				repaired = append(repaired, v.GetStringValue())
			}
			for _, f := range tt.wantFields {
				if !slices.Contains(repaired, f) {
					t.Errorf("%s = %q, want it to name %q", schema.AttrTextRepaired, repaired, f)
				}
			}
			if !last[schema.AttrTextLossy].GetBoolValue() {
				t.Errorf("%s not set", schema.AttrTextLossy)
			}
		})
	}
}

// Valid text gets neither flag, and an engine-reported lossy decode is one
// attribute even when the recorder repairs too.
func TestLossyFlagIsSetOnce(t *testing.T) {
	sink := &memSink{}
	r := newTestRecorder(t, sink, Policy{FailClosed: true})
	s, err := r.SessionStart(context.Background(), SessionInfo{ID: "s-lossy", User: "alice", Account: "demo", ResourceType: schema.ResourcePostgres})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Query(Query{Text: "select 'é'", CommandTag: "SELECT 1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Query(Query{Text: "select '\ufffd' \xff", CommandTag: "SELECT 1", TextLossy: true, ClientEncoding: "LATIN9"}); err != nil {
		t.Fatal(err)
	}
	recs := sink.decoded(t)
	clean := attrs(recs[1])
	if _, ok := clean[schema.AttrTextLossy]; ok {
		t.Errorf("valid text flagged lossy")
	}
	if _, ok := clean[schema.AttrDBClientEncoding]; ok {
		t.Errorf("UTF8 session carries %s", schema.AttrDBClientEncoding)
	}
	n := 0
	for _, kv := range recs[2].Attributes {
		if kv.Key == schema.AttrTextLossy {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%s appears %d times, want 1", schema.AttrTextLossy, n)
	}
	if got := attrs(recs[2])[schema.AttrDBClientEncoding].GetStringValue(); got != "LATIN9" {
		t.Errorf("%s = %q, want LATIN9", schema.AttrDBClientEncoding, got)
	}
}
