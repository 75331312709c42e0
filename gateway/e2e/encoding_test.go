package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"

	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestClientEncodingsInElasticsearch: psql sessions in LATIN9, WIN1252,
// SJIS and EUC_JP create, fill and query tables with non-ASCII names, raise
// notices and errors with non-ASCII text. Every event reaches Elasticsearch
// as UTF-8 with the right text, searchable by session, with its session,
// user and account. A session that switches to LATIN9 mid-way, and one
// that sends bytes invalid in UTF8, are recorded too (the second flagged
// lossy): no byte keeps a statement out of the reviewer's sight.
func TestClientEncodingsInElasticsearch(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.start()
	tag := randomHex(3)
	tests := []struct {
		encoding string
		enc      encoding.Encoding
		word     string // non-ASCII text of the encoding
		setFirst bool   // switch with SET inside the session instead of PGCLIENTENCODING
	}{
		{"LATIN9", charmap.ISO8859_15, "prévu€", false},
		{"WIN1252", charmap.Windows1252, "“déjà”€", false},
		{"SJIS", japanese.ShiftJIS, "日本語表", false},
		{"EUC_JP", japanese.EUCJP, "東京データ", false},
		{"LATIN9", charmap.ISO8859_15, "séance€", true},
	}
	since := time.Now().Add(-time.Second)
	type session struct {
		encoding, word string
		statements     []string
	}
	var ran []session
	for i, tt := range tests {
		w := fmt.Sprintf("%s_%d_%s", tt.word, i, tag)
		stmts := []string{
			fmt.Sprintf(`create temp table "T_%s" ("C_%s" text)`, w, w),
			fmt.Sprintf(`insert into "T_%s" values ('D_%s')`, w, w),
			fmt.Sprintf(`select "C_%s" from "T_%s"`, w, w),
			fmt.Sprintf(`do $$ begin raise notice 'N_%s'; end $$`, w),
			fmt.Sprintf(`select * from "X_%s"`, w),
		}
		script := strings.Join(stmts, ";\n") + ";\n"
		encoded, err := tt.enc.NewEncoder().String(script)
		if err != nil {
			t.Fatalf("%s cannot encode %q: %v", tt.encoding, script, err)
		}
		env := []string{"PGCLIENTENCODING=" + tt.encoding}
		if tt.setFirst {
			encoded = "SET client_encoding TO '" + tt.encoding + "';\n" + encoded
			env = []string{"PGCLIENTENCODING=UTF8"}
			stmts = append([]string{"SET client_encoding TO '" + tt.encoding + "'"}, stmts...)
		}
		out := psqlFile(t, s.dsn("alice", alicePassword, "demo-postgres"), env, encoded)
		if wantErr := `does not exist`; !strings.Contains(out, wantErr) {
			t.Fatalf("%s: psql output %q lacks %q", tt.encoding, out, wantErr)
		}
		ran = append(ran, session{encoding: tt.encoding, word: w, statements: stmts})
	}
	// Bytes that are not UTF-8 in a UTF8 session: the server refuses the
	// statement, and the record keeps it, flagged, with its session.
	invalid := fmt.Sprintf("select 'evade_%s' -- \xa4", tag)
	psqlFile(t, s.dsn("alice", alicePassword, "demo-postgres"), []string{"PGCLIENTENCODING=UTF8"}, invalid+";\n")

	evs := s.waitEvents(90*time.Second, review.Filter{Since: since}, func(evs []review.Event) (bool, string) {
		ends := 0
		for _, e := range evs {
			if e.EventName == schema.EventSessionEnd {
				ends++
			}
		}
		return ends >= len(tests)+1, fmt.Sprintf("%d/%d sessions ended; %s", ends, len(tests)+1, describe(evs))
	})
	checkExactlyOnce(t, evs, true)
	for _, e := range evs {
		if e.Str(schema.AttrSessionID) == "" || e.Str(schema.AttrAccount) != "demo-postgres" || e.Str(schema.AttrUserName) != "alice" {
			t.Errorf("event without its session attributes: %+v", e)
		}
	}
	sessions := bySession(evs)
	for _, want := range ran {
		var sid string
		var qs []review.Event
		for id, list := range sessions {
			for _, e := range list {
				if e.EventName == schema.EventDBQuery && strings.Contains(e.Str(schema.AttrDBQueryText), want.word) {
					sid = id
				}
			}
			if sid == id {
				for _, e := range list {
					if e.EventName == schema.EventDBQuery {
						qs = append(qs, e)
					}
				}
				break
			}
		}
		if len(qs) != len(want.statements) {
			t.Errorf("%s: %d statements recorded, want %d: %s", want.encoding, len(qs), len(want.statements), describe(qs))
			continue
		}
		for i, stmt := range want.statements {
			if got := qs[i].Str(schema.AttrDBQueryText); got != stmt {
				t.Errorf("%s statement %d: %q, want %q", want.encoding, i, got, stmt)
			}
			if qs[i].Attributes[schema.AttrTextLossy] != nil {
				t.Errorf("%s statement %d flagged lossy", want.encoding, i)
			}
		}
		last := len(qs) - 1
		if got := qs[last].Str(schema.AttrDBClientEncoding); got != want.encoding {
			t.Errorf("%s: %s = %q", want.encoding, schema.AttrDBClientEncoding, got)
		}
		if cols := strSlice(qs[last-2].Attributes[schema.AttrDBColumns]); !slices.Equal(cols, []string{"C_" + want.word}) {
			t.Errorf("%s: columns %q", want.encoding, cols)
		}
		for i, wantText := range map[int]string{last - 2: "D_" + want.word, last - 1: "NOTICE: N_" + want.word} {
			if got := qs[i].Str(schema.AttrResponseText); !strings.Contains(got, wantText) {
				t.Errorf("%s: response %q lacks %q", want.encoding, got, wantText)
			}
		}
		if got := qs[last].Str(schema.AttrErrorMessage); got != fmt.Sprintf(`relation "X_%s" does not exist`, want.word) {
			t.Errorf("%s: error message %q", want.encoding, got)
		}
		// Full-text search within the session finds the decoded data.
		if found := s.events(review.Filter{SessionID: sid, Text: "D_" + want.word}); len(found) == 0 {
			t.Errorf("%s: searching session %s for %q finds nothing", want.encoding, sid, "D_"+want.word)
		}
	}
	found := s.events(review.Filter{Text: "evade_" + tag})
	if len(found) != 1 || found[0].Attributes[schema.AttrTextLossy] != true || found[0].Str(schema.AttrSessionID) == "" ||
		!strings.HasPrefix(found[0].Str(schema.AttrDBQueryText), strings.ToValidUTF8(invalid, "\ufffd")) || found[0].Str(schema.AttrDBStatusCode) != "22021" {
		t.Errorf("statement with invalid bytes: %s", describe(found))
	}
	if log := s.gateway.log(); strings.Contains(log, "not OTLP log records") {
		t.Errorf("the uploader found undecodable records:\n%s", log)
	}
}

// psqlFile runs psql on a script file (its bytes as given) with env.
func psqlFile(t *testing.T, dsn string, env []string, script string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "script.sql")
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("psql", dsn, "-X", "-v", "ON_ERROR_STOP=0", "-f", file)
	cmd.Env = append(append(os.Environ(), "PGCONNECT_TIMEOUT=10"), env...)
	out, _ := cmd.CombinedOutput()
	return string(out)
}
