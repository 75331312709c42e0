package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pamtrail/pamtrail/gateway/chain"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// signingStack is a stack whose gateway signs checkpoints, with its public
// key published to Elasticsearch.
func signingStack(t *testing.T, uploadInterval, recording string) (*stack, string) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "signing.key")
	run(t, pamtrailBin, "keygen", "--signing", "--out", keyFile)
	s := newStack(t, stackOptions{
		uploadInterval: uploadInterval,
		recording:      recording + fmt.Sprintf("  signing_key_file: %s\n", keyFile),
	})
	pub := keyFile + ".pub"
	run(t, pamtrailBin, "setup", "elasticsearch", "--url", s.esURL, "--signing-keys", pub)
	return s, pub
}

// statements runs a short session's statements through the gateway.
func (s *stack) statements(t *testing.T, conn *pgx.Conn, tag string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{
		"select '" + tag + "-1'", "select '" + tag + "-2'", "select '" + tag + "-3'", "select '" + tag + "-4'", "select '" + tag + "-5'",
	} {
		if _, err := conn.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func (s *stack) connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn("alice", alicePassword, "demo-postgres"))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// hit is one event document with where it is stored.
type hit struct {
	ID     string         `json:"_id"`
	Index  string         `json:"_index"`
	Source map[string]any `json:"_source"`
}

func (h hit) attr(key string) any { return h.Source["attributes"].(map[string]any)[key] }
func (h hit) seq() int64 {
	n, _ := h.attr(schema.AttrSeq).(json.Number).Int64()
	return n
}

// esDo sends one request to Elasticsearch and decodes the answer.
func (s *stack) esDo(t *testing.T, method, path string, body any, into any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.esURL+path, r)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s: %s: %s", method, path, res.Status, raw)
	}
	if into != nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(into); err != nil {
			t.Fatal(err)
		}
	}
}

// sessionHits returns a session's event documents ordered by seq.
func (s *stack) sessionHits(t *testing.T, id string) []hit {
	t.Helper()
	s.esDo(t, "POST", "/"+schema.EventsIndexPattern+"/_refresh", nil, nil)
	var res struct {
		Hits struct{ Hits []hit } `json:"hits"`
	}
	s.esDo(t, "POST", "/"+schema.EventsIndexPattern+"/_search", map[string]any{
		"size": 1000, "query": map[string]any{"term": map[string]any{"attributes." + schema.AttrSessionID: id}},
	}, &res)
	hits := res.Hits.Hits
	sort.Slice(hits, func(i, j int) bool { return hits[i].seq() < hits[j].seq() })
	return hits
}

// sealedSession runs one session to its end and waits until its final
// checkpoint is searchable and its session document is sealed.
func (s *stack) sealedSession(t *testing.T, tag string) string {
	t.Helper()
	conn := s.connect(t)
	s.statements(t, conn, tag)
	if err := conn.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var id string
	s.waitEvents(90*time.Second, review.Filter{Text: tag + "-5"}, func(evs []review.Event) (bool, string) {
		if len(evs) == 1 {
			id = evs[0].Str(schema.AttrSessionID)
		}
		return id != "", describe(evs)
	})
	testenv.Eventually(t, 90*time.Second, 500*time.Millisecond, func() (bool, string) {
		hits := s.sessionHits(t, id)
		last := hits[len(hits)-1]
		sealed := last.Source["event_name"] == schema.EventCheckpoint && last.attr(schema.AttrCheckpointFinal) == true
		var doc struct {
			Source map[string]any `json:"_source"`
		}
		if sealed {
			s.esDo(t, "POST", "/"+schema.SessionsIndex+"/_refresh", nil, nil)
			s.esDo(t, "GET", "/"+schema.SessionsIndex+"/_doc/"+id, nil, &doc)
		}
		return sealed && doc.Source[schema.SessionSealed] == true, fmt.Sprintf("%d events, last %v", len(hits), last.Source["event_name"])
	})
	return id
}

// verifyReport runs `pamtrail sessions verify --json` and returns its exit
// status and the session's report.
func (s *stack) verifyReport(t *testing.T, id, pub string) (int, map[string]any) {
	t.Helper()
	cmd := exec.Command(pamtrailBin, "sessions", "verify", id, "--url", s.esURL, "--keys", pub, "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Sessions []map[string]any `json:"sessions"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out.Sessions) != 1 {
		t.Fatalf("verify exit %d: %v\n%s\n%s", code, err, stdout.String(), stderr.String())
	}
	return code, out.Sessions[0]
}

// findings renders a report's findings as "kind@seq ...".
func findings(rep map[string]any) string {
	var out []string
	list, _ := rep["findings"].([]any)
	for _, f := range list {
		m := f.(map[string]any)
		out = append(out, fmt.Sprintf("%s@%v", m["kind"], m["first_seq"]))
	}
	if len(out) == 0 {
		return fmt.Sprint(rep["status"])
	}
	return strings.Join(out, " ")
}

// TestTamperDetected: real sessions through the gateway, collector and
// Elasticsearch; each is then tampered with directly in Elasticsearch, as
// anyone with write access to the index could, and `pamtrail sessions
// verify` names what was done and where. An untouched session verifies
// intact with its end signed.
func TestTamperDetected(t *testing.T) {
	s, pub := signingStack(t, "1s", "  failure_policy: fail-open\n")
	s.start()
	setBody := func(h hit, attrs map[string]any) {
		s.esDo(t, "POST", "/"+h.Index+"/_update/"+h.ID+"?refresh=true", map[string]any{"doc": map[string]any{"attributes": attrs}}, nil)
	}
	deleteDoc := func(h hit) { s.esDo(t, "DELETE", "/"+h.Index+"/_doc/"+h.ID+"?refresh=true", nil, nil) }
	queries := func(hits []hit) []hit {
		var out []hit
		for _, h := range hits {
			if h.Source["event_name"] == schema.EventDBQuery {
				out = append(out, h)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		tamper func(hits []hit) string // returns the expected findings
	}{
		{"untouched", func([]hit) string { return "intact" }},
		{"one statement's text updated", func(hits []hit) string {
			q := queries(hits)[1]
			setBody(q, map[string]any{schema.AttrDBQueryText: "select 'nothing to see'"})
			return fmt.Sprintf("modified@%d", q.seq())
		}},
		{"one statement's user.name altered", func(hits []hit) string {
			q := queries(hits)[2]
			setBody(q, map[string]any{schema.AttrUserName: "someone-else"})
			return fmt.Sprintf("modified@%d", q.seq())
		}},
		{"one event deleted", func(hits []hit) string {
			q := queries(hits)[2]
			deleteDoc(q)
			return fmt.Sprintf("missing@%d", q.seq())
		}},
		{"the last two events deleted", func(hits []hit) string {
			end := hits[len(hits)-2]
			deleteDoc(hits[len(hits)-1])
			deleteDoc(end)
			return fmt.Sprintf("truncated@%d", end.seq())
		}},
		{"a forged event with a plausible seq", func(hits []hit) string {
			// The forger copies a statement, numbers it after the last
			// event and links it into the chain: no key is needed for that.
			last := hits[len(hits)-1]
			forged := map[string]any{}
			raw, _ := json.Marshal(queries(hits)[0].Source)
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			_ = dec.Decode(&forged)
			attrs := forged["attributes"].(map[string]any)
			seq := last.seq() + 1
			attrs[schema.AttrSeq] = seq
			attrs[schema.AttrDBQueryText] = "select 'innocent'"
			prev, _ := chain.ParseHash(last.attr(schema.AttrChain).(string))
			attrs[schema.AttrChain] = forgedLink(t, forged, prev)
			s.esDo(t, "PUT", fmt.Sprintf("/%s/_create/%s:%d?refresh=true", schema.EventsIndex, attrs[schema.AttrSessionID], seq), forged, nil)
			return fmt.Sprintf("inserted@%d", seq)
		}},
		{"two events' seqs swapped", func(hits []hit) string {
			a, b := queries(hits)[1], queries(hits)[3]
			setBody(a, map[string]any{schema.AttrSeq: b.seq()})
			setBody(b, map[string]any{schema.AttrSeq: a.seq()})
			return fmt.Sprintf("reordered@%d", a.seq())
		}},
		{"a checkpoint signature replaced", func(hits []hit) string {
			final := hits[len(hits)-1]
			sig := make([]byte, 64)
			_, _ = rand.Read(sig)
			setBody(final, map[string]any{schema.AttrCheckpointSignature: base64.StdEncoding.EncodeToString(sig)})
			return fmt.Sprintf("bad-signature@%d", final.seq())
		}},
	}
	ids := make([]string, len(tests))
	for i := range tests {
		ids[i] = s.sealedSession(t, fmt.Sprintf("tamper%d_%s", i, randomHex(3)))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.tamper(s.sessionHits(t, ids[i]))
			code, rep := s.verifyReport(t, ids[i], pub)
			if got := findings(rep); got != want {
				t.Fatalf("verify found %s, want %s\n%v", got, want, rep)
			}
			if wantCode := map[bool]int{true: 0, false: 1}[want == "intact"]; code != wantCode {
				t.Fatalf("exit status %d, want %d", code, wantCode)
			}
			if want == "intact" && (rep["end_signed"] != true || rep["sealed"] != true || rep["unsigned_tail"] != nil) {
				t.Fatalf("an untouched session is not sealed: %v", rep)
			}
		})
	}
	// The verdict shows in `sessions show`, and --since covers every
	// session of the gateway.
	for i, want := range map[int]string{0: "Integrity: INTACT", 1: "Integrity: TAMPERED"} {
		out, _ := exec.Command(pamtrailBin, "sessions", "show", ids[i], "--url", s.esURL, "--keys", pub).CombinedOutput()
		if !strings.Contains(string(out), want) {
			t.Errorf("sessions show %s lacks %q:\n%s", ids[i], want, out)
		}
	}
	out, err := exec.Command(pamtrailBin, "sessions", "verify", "--since", "1h", "--gateway", s.gatewayID, "--url", s.esURL, "--keys", pub).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || strings.Count(string(out), ": INTACT") != 1 || strings.Count(string(out), ": TAMPERED") != len(tests)-1 {
		t.Errorf("verify --since: %v\n%s", err, out)
	}
}

// forgedLink computes the chain link a forger would give a document.
func forgedLink(t *testing.T, doc map[string]any, prev chain.Hash) string {
	t.Helper()
	var c, constants chain.Canon
	ts := func(k string) int64 {
		var ms int64
		_, _ = fmt.Sscanf(strings.SplitN(fmt.Sprint(doc[k]), ".", 2)[0], "%d", &ms)
		return ms
	}
	body, _ := doc["body"].(map[string]any)["text"].(string)
	sev, _ := doc["severity_text"].(string)
	c.Header(doc["event_name"].(string), body, sev, ts("@timestamp"), ts("observed_timestamp"))
	for k, v := range doc["attributes"].(map[string]any) {
		if schema.ChainExcluded(k) {
			continue
		}
		into := &c
		if schema.SessionConstant(k) {
			into = &constants
		}
		switch v := v.(type) {
		case string:
			into.String(k, v)
		case bool:
			into.Bool(k, v)
		case int64:
			into.Int(k, v)
		case json.Number:
			if strings.ContainsAny(v.String(), ".eE") {
				f, _ := v.Float64()
				into.Double(k, f)
			} else {
				n, _ := v.Int64()
				into.Int(k, n)
			}
		case []any:
			var ss []string
			for _, e := range v {
				ss = append(ss, e.(string))
			}
			into.Strings(k, ss)
		default:
			t.Fatalf("attribute %s: %T", k, v)
		}
	}
	return c.Link(prev, constants.SessionDigest()).String()
}

// TestKilledGatewayVerifiesIntact: a gateway SIGKILLed mid-session leaves
// the part its checkpoints covered signed and the rest chained but
// unsigned; once a restarted gateway has uploaded its spool, the session
// verifies intact, its unsigned tail reported as such, never as tampering.
func TestKilledGatewayVerifiesIntact(t *testing.T) {
	// Strict mode: a statement is answered once its event is durable, so
	// the statements before the kill are all in the spool.
	s, pub := signingStack(t, "4s", "  mode: strict\n  failure_policy: fail-closed\n")
	s.start()
	conn := s.connect(t)
	tag := "killed_" + randomHex(3)
	s.statements(t, conn, tag)
	var id string
	var checkpointed int64
	s.waitEvents(90*time.Second, review.Filter{EventName: schema.EventCheckpoint}, func(evs []review.Event) (bool, string) {
		for _, e := range evs {
			id = e.Str(schema.AttrSessionID)
			checkpointed = max(checkpointed, e.Int(schema.AttrSeq))
		}
		return len(evs) > 0, describe(evs)
	})
	// More statements, then a crash before the next cycle signs them.
	s.statements(t, conn, tag+"_tail")
	s.gateway.kill()
	s.startGateway() // uploads what the killed gateway spooled
	s.waitEvents(90*time.Second, review.Filter{SessionID: id}, func(evs []review.Event) (bool, string) {
		return countQueries(evs) == 10, describe(evs)
	})
	code, rep := s.verifyReport(t, id, pub)
	if code != 0 || findings(rep) != "intact" {
		t.Fatalf("a killed gateway's session: exit %d, %s\n%v", code, findings(rep), rep)
	}
	tail, _ := rep["unsigned_tail"].(map[string]any)
	if rep["end_signed"] != false || tail == nil || fmt.Sprint(tail["from"]) != fmt.Sprint(checkpointed) {
		t.Fatalf("want the part after the checkpoint at seq %d reported as an unsigned tail, the end unsigned: %v", checkpointed, rep)
	}
}
