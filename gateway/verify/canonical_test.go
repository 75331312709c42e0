package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pamtrail/pamtrail/gateway/chain"
	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestRecorderCanonicalMatchesVerifier: the recorder builds each record's
// canonical form as it encodes the record; the verifier rebuilds it from
// the indexed document. For every kind of record, with non-ASCII, cut,
// binary and repaired text, the link the recorder stored must equal
// SHA-256(previous link ‖ the verifier's canonical bytes), which holds only
// if both sides produced exactly the same bytes.
func TestRecorderCanonicalMatchesVerifier(t *testing.T) {
	const maxText = 64 // small, so the texts below are cut, some inside a character
	at := time.Date(2026, 12, 3, 13, 30, 0, 123456789, time.UTC)
	exit, failed := 0, 2
	audit := &policy.Match{Policy: "ops", Rule: "no-drop", Mode: config.PolicyAudit}
	tests := []struct {
		name   string
		info   recorder.SessionInfo
		record func(r *recorder.OTel, s recorder.Session)
		events int // chained records, checkpoints included
	}{
		{"postgres, ASCII", recorder.SessionInfo{User: "alice", Account: "pg", ResourceType: schema.ResourcePostgres, Database: "demo", ClientAddr: "127.0.0.1", ClientPort: 5000},
			func(r *recorder.OTel, s recorder.Session) {
				_ = s.Query(recorder.Query{Start: at, Duration: 1500 * time.Microsecond, Text: "SELECT abalance FROM pgbench_accounts WHERE aid = 1;", CommandTag: "SELECT 1", ReturnedRows: 1, TxStatus: 'I', Protocol: "simple"})
				r.Cycle()
				_ = s.Query(recorder.Query{Start: at, Text: "copy t to stdout", CommandTag: "COPY 0"})
			}, 6},
		{"postgres, non-ASCII and cut", recorder.SessionInfo{User: "josé", Account: "données", ResourceType: schema.ResourcePostgres, Database: "base_ü"},
			func(r *recorder.OTel, s recorder.Session) {
				_ = s.Query(recorder.Query{Start: at, Text: "SELECT 'Grüße aus Köln ✓ 日本語のテキスト 𝄞𝄞𝄞𝄞𝄞𝄞𝄞𝄞 über die Grenze hinaus'", CommandTag: "SELECT 1",
					Params: []string{"€", "日本", strings.Repeat("ß", 200)}, ParamsTruncated: true, Columns: []string{"spalte_ä", "列"},
					Preview: "ünïcödé row", PreviewTrunc: true, Notices: []string{"hinweis: ☃"}, ClientEncoding: "LATIN9", TextTruncated: true})
				_ = s.Query(recorder.Query{Start: at, Text: "drop table x", ErrorCode: "42P01", ErrorMessage: "relation «x» does not exist", ErrorDetail: "détail", ErrorNumber: 1146, Policy: audit})
				_ = s.Query(recorder.Query{Start: at, Text: "select 2", NotExecuted: true, Warnings: 3, LastInsertID: -7})
			}, 6},
		{"postgres, binary and repaired", recorder.SessionInfo{User: "bad\xffuser", Account: "pg", ResourceType: schema.ResourceMySQL, Database: "d\xc3"},
			func(r *recorder.OTel, s recorder.Session) {
				_ = s.Query(recorder.Query{Start: at, Text: "select '\xff\xfe\x00\x01 bytes'", CommandTag: "SELECT 1", TextLossy: true,
					Params: []string{"ok", "\x00\xff\x80", ""}, Columns: []string{"c\xe2\x82"}, Preview: "\x1b[31m\x00\x7f\xc0\xaf"})
				_ = s.Query(recorder.Query{Start: at, Text: "", Params: []string{}, Columns: nil})
			}, 5},
		{"ssh", recorder.SessionInfo{User: "bob", Account: "ssh", ResourceType: schema.ResourceSSH, ClientAddr: "::1", ClientPort: 60000},
			func(r *recorder.OTel, s recorder.Session) {
				_ = s.Command(recorder.Command{Start: at, Duration: time.Second, Channel: "exec", Text: "cat /etc/ℌosts\xff", Output: "\x00\x01\x02\xfe binary " + strings.Repeat("é", 40), ExitStatus: &failed, ExitSignal: "KILL", Policy: audit})
				_ = s.Command(recorder.Command{Start: at, Channel: "terminal", Text: "ls", ExitStatus: &exit, TextTruncated: true, OutputTrunc: true})
				_ = s.Output(recorder.Output{Time: at, Elapsed: 1234567 * time.Nanosecond, Stream: "pty", Data: "\x1b]0;tïtle\x07\r\n\xff"})
				_ = s.File(recorder.FileOp{Time: at, Channel: "sftp", Operation: "rename", Path: "/tmp/d\xe9j\xe0", Target: strings.Repeat("/ü", 40), Bytes: 1 << 40, Error: "permission denied"})
				_ = s.Forward(recorder.Forward{Time: at, Target: "db.internal:5432", Bytes: 0})
			}, 8},
		{"admin action and refused login", recorder.SessionInfo{},
			func(r *recorder.OTel, _ recorder.Session) {
				_ = r.AdminAction(context.Background(), recorder.AdminAction{Time: at, Identity: "admin", Operation: "terminate", Target: "sess-ü", Reason: "wegen \xff", Result: "ok", Ended: 2})
				_ = r.AuthFailure(context.Background(), recorder.AuthFailure{Time: at, User: "mallory\xfe", Account: "pg", ResourceType: schema.ResourcePostgres, Reason: schema.AuthBadPassword, Message: "falsches Passwort"})
			}, 2},
	}
	signer, err := keys.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &sliceSink{}
			r, err := recorder.NewOTel(recorder.Options{Sink: sink, GatewayID: "gw-ü", Signer: signer, MaxTextBytes: maxText,
				PolicyFor: func(string) recorder.Policy { return recorder.Policy{} }, Now: func() time.Time { return at.Add(time.Duration(i) * time.Millisecond) }})
			if err != nil {
				t.Fatal(err)
			}
			if tt.info.Account != "" {
				tt.info.ID = fmt.Sprintf("canon-%d", i)
				s, err := r.SessionStart(context.Background(), tt.info)
				if err != nil {
					t.Fatal(err)
				}
				tt.record(r, s)
				_ = s.End(recorder.End{Time: at, Reason: schema.EndClientQuit, Message: "bye \xff", BytesIn: 1, BytesOut: 2})
			} else {
				tt.record(r, nil)
			}
			if checked := checkLinks(t, sink.recs); checked != tt.events {
				t.Fatalf("checked %d records, want %d", checked, tt.events)
			}
		})
	}
}

// checkLinks recomputes every chained record's link from its document, as
// `sessions verify` does, and returns how many it checked.
func checkLinks(t *testing.T, recs [][]byte) int {
	t.Helper()
	prev := map[string]chain.Hash{} // session -> link of its latest record
	var c chain.Canon
	checked := 0
	for _, b := range recs {
		var lr logspb.LogRecord
		if err := proto.Unmarshal(b, &lr); err != nil {
			t.Fatal(err)
		}
		if lr.EventName == schema.EventHeartbeat {
			continue
		}
		e, err := parseDoc(Doc{ID: "doc", Source: exporterJSON(t, &lr)})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := e.str(schema.AttrSessionID)
		p, ok := prev[id]
		if !ok {
			p = chain.Genesis(chain.Current, id)
		}
		if !e.hasLink {
			t.Fatalf("%s seq %d: no pam.chain", e.name, e.seq)
		}
		got, err := e.linkAt(&c, chain.Current, p, e.seq)
		if err != nil {
			t.Fatal(err)
		}
		if want := sha256.Sum256(slices.Concat(p[:], e.constants[:], c.Bytes())); got != want {
			t.Fatalf("verifier's link is not SHA-256 of the previous link, the session digest and its canonical bytes")
		}
		// The canonical form does not depend on the session constants:
		// the same document without them gives the same bytes.
		canonical := c.Bytes()
		stripped := *e
		stripped.src.Attributes = maps.Clone(e.src.Attributes)
		maps.DeleteFunc(stripped.src.Attributes, func(k string, _ json.RawMessage) bool { return schema.SessionConstant(k) })
		if _, err := stripped.linkAt(&c, chain.Current, p, e.seq); err != nil || !bytes.Equal(c.Bytes(), canonical) {
			t.Fatalf("%s seq %d: the canonical form holds session constants: %q", e.name, e.seq, canonical)
		}
		if got != e.link {
			t.Fatalf("%s seq %d: recorder stored %s, verifier's canonical bytes give %s\nverifier's canonical form: %q",
				e.name, e.seq, e.link, got, c.Bytes())
		}
		prev[id] = e.link
		checked++
	}
	return checked
}
