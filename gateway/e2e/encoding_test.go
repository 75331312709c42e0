package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
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
	pg := testenv.Postgres(t)
	latin9DB := latin9Database(t, pg)
	pw := filepath.Join(t.TempDir(), "demo.password")
	writeFile(t, pw, pg.DemoPassword)
	s := newStack(t, stackOptions{
		extraAccounts: fmt.Sprintf("  - {name: latin9-db, type: postgres, host: %s, port: %d, database: %s, user: %s, secret: {file: %s}}\n",
			pg.Host, pg.Port, latin9DB, pg.DemoUser, pw),
		extraGrants: "  - {user: alice, accounts: [latin9-db]}\n",
	})
	s.start()
	tag := randomHex(3)
	tests := []struct {
		encoding string
		enc      encoding.Encoding
		word     string // non-ASCII text of the encoding
		setFirst bool   // switch with SET inside the session instead of PGCLIENTENCODING
		account  string // default demo-postgres, a UTF8 database
	}{
		{encoding: "LATIN9", enc: charmap.ISO8859_15, word: "prévu€"},
		{encoding: "WIN1252", enc: charmap.Windows1252, word: "“déjà”€"},
		{encoding: "SJIS", enc: japanese.ShiftJIS, word: "日本語表"},
		{encoding: "EUC_JP", enc: japanese.EUCJP, word: "東京データ"},
		{encoding: "LATIN9", enc: charmap.ISO8859_15, word: "séance€", setFirst: true},
		// A LATIN9 database and a client that names no encoding: the
		// session is in the database's, as only the server reports.
		{encoding: "LATIN9", enc: charmap.ISO8859_15, word: "øre€", account: "latin9-db"},
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
		account := "demo-postgres"
		switch {
		case tt.setFirst:
			encoded = "SET client_encoding TO '" + tt.encoding + "';\n" + encoded
			env = []string{"PGCLIENTENCODING=UTF8"}
			stmts = append([]string{"SET client_encoding TO '" + tt.encoding + "'"}, stmts...)
		case tt.account != "":
			account, env = tt.account, []string{"PGCLIENTENCODING="} // libpq sends none
		}
		out := psqlFile(t, s.dsn("alice", alicePassword, account), env, encoded)
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
		account := e.Str(schema.AttrAccount)
		if e.Str(schema.AttrSessionID) == "" || account != "demo-postgres" && account != "latin9-db" || e.Str(schema.AttrUserName) != "alice" {
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

// latin9Database creates a LATIN9 database for this test (dropped at its
// end) that the demo role can use.
func latin9Database(t *testing.T, pg testenv.PG) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, pg.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	name := "pamtrail_latin9_" + randomHex(4)
	if _, err := admin.Exec(ctx, "create database "+name+" encoding 'LATIN9' template template0 lc_collate 'C' lc_ctype 'C'"); err != nil {
		t.Fatalf("creating a LATIN9 database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if c, err := pgx.Connect(ctx, pg.AdminDSN("postgres")); err == nil {
			_, _ = c.Exec(ctx, "drop database if exists "+name+" with (force)")
			_ = c.Close(ctx)
		}
	})
	return name
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
