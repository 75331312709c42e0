// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// FuzzSessionKeyHook feeds arbitrary OTLP log payloads (what any client of
// the receiver can send) through the record hooks and the risk rules and checks the document id
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

	p := newTestProcessor(f, createDefaultConfig().(*Config), consumertest.NewNop())

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
			sid, okSID := state.StringAttr(rec.Attributes(), schema.AttrSessionID)
			seq, okSeq := state.SeqAttr(rec.Attributes())
			w := want{}
			if okSID && okSeq {
				w.docID = sid + ":" + strconv.FormatInt(seq, 10)
			}
			wants = append(wants, w)
		})

		p.observe(context.Background(), ld)

		i := 0
		forEachRecord(ld, func(rec plog.LogRecord) {
			w := wants[i]
			i++
			got, has := rec.Attributes().Get(schema.AttrDocumentID)
			_, flagged := rec.Attributes().Get(schema.AttrSchemaViolation)
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
