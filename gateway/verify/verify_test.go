package verify

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pamtrail/pamtrail/gateway/chain"
	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

type sliceSink struct{ recs [][]byte }

func (s *sliceSink) Append(p []byte) error {
	s.recs = append(s.recs, append([]byte(nil), p...))
	return nil
}

// exporterJSON renders a record the way the elasticsearch exporter's otel
// mapping mode does (the e2e tests check the real one).
func exporterJSON(t *testing.T, r *logspb.LogRecord) json.RawMessage {
	t.Helper()
	ts := func(ns uint64) string { return fmt.Sprintf("%d.%d", ns/1e6, ns%1e6) }
	attrs := map[string]any{}
	for _, kv := range r.Attributes {
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			attrs[kv.Key] = v.StringValue
		case *commonpb.AnyValue_BytesValue:
			attrs[kv.Key] = hex.EncodeToString(v.BytesValue)
		case *commonpb.AnyValue_IntValue:
			attrs[kv.Key] = v.IntValue
		case *commonpb.AnyValue_BoolValue:
			attrs[kv.Key] = v.BoolValue
		case *commonpb.AnyValue_DoubleValue:
			s := strconv.FormatFloat(v.DoubleValue, 'g', -1, 64)
			if !strings.ContainsAny(s, ".e") {
				s += ".0"
			}
			attrs[kv.Key] = json.RawMessage(s)
		case *commonpb.AnyValue_ArrayValue:
			var ss []string
			for _, e := range v.ArrayValue.Values {
				ss = append(ss, e.GetStringValue())
			}
			attrs[kv.Key] = ss
		}
	}
	attrs["pam.risk.severity"] = "low" // what the collector adds is not chained
	doc := map[string]any{
		"@timestamp": ts(r.TimeUnixNano), "observed_timestamp": ts(r.ObservedTimeUnixNano),
		"severity_text": r.SeverityText, "severity_number": r.SeverityNumber, "event_name": r.EventName,
		"attributes": attrs, "body": map[string]any{"text": r.Body.GetStringValue()},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// session records one real session through the recorder, with a checkpoint
// cycle in the middle, and returns its documents, the session document's
// checkpoint and the trusted keys.
func session(t *testing.T, end bool) ([]Doc, *schema.Checkpoint, map[string]keys.PublicKey) {
	t.Helper()
	signer, err := keys.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	sink := &sliceSink{}
	r, _ := recorder.NewOTel(recorder.Options{Sink: sink, GatewayID: "gw", Signer: signer,
		MaxTextBytes: 64 << 10, PolicyFor: func(string) recorder.Policy { return recorder.Policy{} }})
	s, _ := r.SessionStart(context.Background(), recorder.SessionInfo{ID: "sess", User: "alice", Account: "pg", ResourceType: schema.ResourcePostgres, Database: "demo", ClientPort: 5000})
	for i := range 3 {
		_ = s.Query(recorder.Query{Text: fmt.Sprintf("select %d", i), CommandTag: "SELECT 1", Duration: time.Duration(i*1234567 + 1), Params: []string{"a"}, Columns: []string{"x"}})
	}
	r.Cycle()
	for i := range 3 {
		_ = s.Query(recorder.Query{Text: fmt.Sprintf("update t set v = %d", i), CommandTag: "UPDATE 1", RowsAffected: 1, Duration: time.Duration(math.MaxInt32)})
	}
	if end {
		_ = s.End(recorder.End{Reason: schema.EndClientQuit})
	}
	var docs []Doc
	var last *schema.Checkpoint
	for _, b := range sink.recs {
		var lr logspb.LogRecord
		if err := proto.Unmarshal(b, &lr); err != nil {
			t.Fatal(err)
		}
		if lr.EventName == schema.EventHeartbeat {
			continue // the collector keeps heartbeats off the events index
		}
		var seq int64
		for _, kv := range lr.Attributes {
			if kv.Key == schema.AttrSeq {
				seq = kv.Value.GetIntValue()
			}
		}
		d := Doc{ID: fmt.Sprintf("sess:%d", seq), Source: exporterJSON(t, &lr)}
		docs = append(docs, d)
		if lr.EventName == schema.EventCheckpoint {
			e, _ := parseDoc(d)
			cp := checkpointOf(e)
			last = &cp
		}
	}
	return docs, last, map[string]keys.PublicKey{signer.ID: signer.Public()}
}

// edit rewrites one document's JSON.
func edit(t *testing.T, d Doc, f func(doc map[string]any, attrs map[string]any)) Doc {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(string(d.Source)))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	f(doc, doc["attributes"].(map[string]any))
	b, _ := json.Marshal(doc)
	return Doc{ID: d.ID, Source: b}
}

func TestSessionFindings(t *testing.T) {
	// A full session: 0 start, 1-3 queries, 4 checkpoint, 5-7 updates,
	// 8 end, 9 final checkpoint.
	type test struct {
		name      string
		end       bool
		version   chain.Version // recorded as a gateway of this older version would have (0: current)
		tamper    func(t *testing.T, docs []Doc) []Doc
		status    string // session document status
		want      string // "kind@seq ..." or "intact"
		endSigned bool
		tail      *Range
	}
	tests := []test{
		{name: "untouched", end: true, want: "intact", endSigned: true},
		{name: "statement text updated", end: true, want: "modified@2", tamper: func(t *testing.T, d []Doc) []Doc {
			d[2] = edit(t, d[2], func(_ map[string]any, a map[string]any) { a[schema.AttrDBQueryText] = "select 42" })
			return d
		}},
		{name: "body and chain rewritten together", end: true, want: "modified@0", tamper: func(t *testing.T, d []Doc) []Doc {
			// A forger who recomputes every later link: only the signature catches it.
			d[2] = edit(t, d[2], func(doc map[string]any, _ map[string]any) { doc["body"] = map[string]any{"text": "select 42"} })
			return relink(t, d, 2)
		}},
		{name: "one event deleted", end: true, want: "missing@3", tamper: func(t *testing.T, d []Doc) []Doc {
			return append(d[:3:3], d[4:]...)
		}},
		{name: "last two events deleted", end: true, status: schema.StatusEnded, want: "truncated@8", tamper: func(t *testing.T, d []Doc) []Doc {
			return d[:len(d)-2]
		}},
		{name: "forged event after the end", end: true, want: "inserted@10", tamper: func(t *testing.T, d []Doc) []Doc {
			forged := edit(t, d[7], func(_ map[string]any, a map[string]any) {
				a[schema.AttrSeq] = 10
				a[schema.AttrDBQueryText] = "select 'innocent'"
			})
			forged.ID = "sess:10"
			return relink(t, append(d, forged), 10)
		}},
		{name: "forged event with a taken seq", end: true, want: "inserted@7", tamper: func(t *testing.T, d []Doc) []Doc {
			forged := edit(t, d[7], func(_ map[string]any, a map[string]any) { a[schema.AttrDBQueryText] = "select 'innocent'" })
			forged.ID = "forged"
			return append(d, forged)
		}},
		{name: "two events' seqs swapped", end: true, want: "reordered@5", tamper: func(t *testing.T, d []Doc) []Doc {
			d[5] = edit(t, d[5], func(_ map[string]any, a map[string]any) { a[schema.AttrSeq] = 7 })
			d[7] = edit(t, d[7], func(_ map[string]any, a map[string]any) { a[schema.AttrSeq] = 5 })
			return d
		}},
		{name: "checkpoint signature replaced", end: true, want: "bad-signature@9", tamper: func(t *testing.T, d []Doc) []Doc {
			other := edit(t, d[4], func(map[string]any, map[string]any) {})
			sig, _ := parseDoc(other)
			s, _ := sig.str(schema.AttrCheckpointSignature)
			d[9] = edit(t, d[9], func(_ map[string]any, a map[string]any) { a[schema.AttrCheckpointSignature] = s })
			return d
		}},
		{name: "gateway killed mid-session", end: false, status: schema.StatusLost, want: "intact", tail: &Range{From: 4, To: 7}},
		// The session constants are chained as one digest per session; each
		// event's link covers the digest of its own values.
		{name: "one event's user.name altered", end: true, want: "modified@3", tamper: func(t *testing.T, d []Doc) []Doc {
			d[3] = edit(t, d[3], func(_ map[string]any, a map[string]any) { a[schema.AttrUserName] = "bob" })
			return d
		}},
		{name: "one event's client.port removed", end: true, want: "modified@6", tamper: func(t *testing.T, d []Doc) []Doc {
			d[6] = edit(t, d[6], func(_ map[string]any, a map[string]any) { delete(a, schema.AttrClientPort) })
			return d
		}},
		{name: "one event's client.port turned into a string", end: true, want: "modified@5", tamper: func(t *testing.T, d []Doc) []Doc {
			d[5] = edit(t, d[5], func(_ map[string]any, a map[string]any) { a[schema.AttrClientPort] = "5000" })
			return d
		}},
		{name: "the start's pam.account altered", end: true, want: "modified@0", tamper: func(t *testing.T, d []Doc) []Doc {
			d[0] = edit(t, d[0], func(_ map[string]any, a map[string]any) { a[schema.AttrAccount] = "prod" })
			return d
		}},
		{name: "every event's user.name altered alike", end: true, want: "modified@0", tamper: func(t *testing.T, d []Doc) []Doc {
			for i := range d {
				d[i] = edit(t, d[i], func(_ map[string]any, a map[string]any) { a[schema.AttrUserName] = "bob" })
			}
			return d
		}},
		{name: "statement body updated, db.query.text kept", end: true, want: "modified@2", tamper: func(t *testing.T, d []Doc) []Doc {
			d[2] = edit(t, d[2], func(doc map[string]any, _ map[string]any) { doc["body"] = map[string]any{"text": "select 42"} })
			return d
		}},
		{name: "statement body and db.query.text updated alike", end: true, want: "modified@2", tamper: func(t *testing.T, d []Doc) []Doc {
			d[2] = edit(t, d[2], func(doc map[string]any, a map[string]any) {
				doc["body"] = map[string]any{"text": "select 42"}
				a[schema.AttrDBQueryText] = "select 42"
			})
			return d
		}},
	}
	// Sessions recorded by gateways of earlier chain versions still verify,
	// and tampering with them is still found.
	for _, v := range chain.Versions[1:] {
		prefix := fmt.Sprintf("version %d, ", v)
		tests = append(tests, []test{
			{name: prefix + "untouched", end: true, version: v, want: "intact", endSigned: true},
			{name: prefix + "statement text updated", end: true, version: v, want: "modified@2", tamper: func(t *testing.T, d []Doc) []Doc {
				d[2] = edit(t, d[2], func(_ map[string]any, a map[string]any) { a[schema.AttrDBQueryText] = "select 42" })
				return d
			}},
			{name: prefix + "one event's user.name altered", end: true, version: v, want: "modified@3", tamper: func(t *testing.T, d []Doc) []Doc {
				d[3] = edit(t, d[3], func(_ map[string]any, a map[string]any) { a[schema.AttrUserName] = "bob" })
				return d
			}},
		}...)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, cp, trusted := session(t, tt.end)
			version := chain.Current
			if tt.version != 0 {
				docs, cp, trusted = asVersion(t, docs, tt.version)
				version = tt.version
			}
			if tt.tamper != nil {
				docs = tt.tamper(t, docs)
			}
			rep, err := Session("sess", docs, trusted, SessionState{Status: tt.status, Checkpoint: cp})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range rep.Findings {
				got = append(got, fmt.Sprintf("%s@%d", f.Kind, f.FirstSeq))
			}
			if len(got) == 0 {
				got = []string{rep.Status}
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("findings %v, want %s\n%+v", got, tt.want, rep)
			}
			if rep.ChainVersion != int(version) {
				t.Fatalf("chain version %d, want %d", rep.ChainVersion, version)
			}
			if tt.want == "intact" && (rep.EndSigned != tt.endSigned || fmt.Sprint(rep.UnsignedTail) != fmt.Sprint(tt.tail)) {
				t.Fatalf("end signed %v, unsigned tail %v; want %v, %v", rep.EndSigned, rep.UnsignedTail, tt.endSigned, tt.tail)
			}
		})
	}
}

// relink recomputes pam.chain from seq from on, as a forger without the
// signing key would.
func relink(t *testing.T, docs []Doc, from int64) []Doc {
	t.Helper()
	var c chain.Canon
	prev := chain.Genesis(chain.Current, "sess")
	for i := range docs {
		e, _ := parseDoc(docs[i])
		if e.seq >= from {
			h, err := e.linkAt(&c, chain.Current, prev, e.seq)
			if err != nil {
				t.Fatal(err)
			}
			docs[i] = edit(t, docs[i], func(_ map[string]any, a map[string]any) { a[schema.AttrChain] = h.String() })
			e.link = h
		}
		prev = e.link
	}
	return docs
}

// asVersion rewrites a recorded session (docs in seq order) as a gateway of
// chain version v recorded it: every link over v's canonical form from v's
// genesis, every checkpoint signed over the new heads by a key of its own,
// returned as the only trusted one.
func asVersion(t *testing.T, docs []Doc, v chain.Version) ([]Doc, *schema.Checkpoint, map[string]keys.PublicKey) {
	t.Helper()
	signer, err := keys.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	var c chain.Canon
	prev := chain.Genesis(v, "sess")
	links := map[int64]chain.Hash{}
	var last *schema.Checkpoint
	for i := range docs {
		e, _ := parseDoc(docs[i])
		if e.name == schema.EventCheckpoint {
			cp := checkpointOf(e)
			statement := chain.Checkpoint{SessionID: "sess", GatewayID: cp.GatewayID, KeyID: signer.ID, From: cp.From, To: cp.To, Head: links[cp.To], Final: cp.Final}
			cp.KeyID, cp.Head = statement.KeyID, statement.Head.String()
			cp.Signature = base64.StdEncoding.EncodeToString(signer.Sign(statement.Message()))
			docs[i] = edit(t, docs[i], func(_ map[string]any, a map[string]any) {
				a[schema.AttrCheckpointKeyID], a[schema.AttrCheckpointHead], a[schema.AttrCheckpointSignature] = cp.KeyID, cp.Head, cp.Signature
			})
			e, _ = parseDoc(docs[i])
			last = &cp
		}
		link, err := e.linkAt(&c, v, prev, e.seq)
		if err != nil {
			t.Fatal(err)
		}
		docs[i] = edit(t, docs[i], func(_ map[string]any, a map[string]any) { a[schema.AttrChain] = link.String() })
		links[e.seq], prev = link, link
	}
	return docs, last, map[string]keys.PublicKey{signer.ID: signer.Public()}
}

// TestUnknownKey: a checkpoint signed by a key nobody trusts is a bad
// signature, not a pass.
func TestUnknownKey(t *testing.T) {
	docs, _, _ := session(t, true)
	rep, err := Session("sess", docs, nil, SessionState{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Intact() || rep.Findings[0].Kind != BadSignature || !strings.Contains(rep.Findings[0].Detail, "not among the trusted keys") {
		t.Fatalf("%+v", rep)
	}
}

// FuzzSession feeds arbitrary documents (anyone with write access to the
// index controls them): verification must not panic, and a document set it
// calls intact must have signatures covering its end.
func FuzzSession(f *testing.F) {
	f.Add([]byte(`{"event_name":"pam.session.start","attributes":{"pam.seq":0,"pam.chain":"00"}}`), []byte(`{"attributes":{"pam.seq":1}}`))
	f.Add([]byte(`{"event_name":"pam.chain.checkpoint","attributes":{"pam.seq":0,"pam.checkpoint.to":-5,"pam.checkpoint.head":"zz","pam.checkpoint.signature":"!!"}}`), []byte(`{}`))
	f.Add([]byte(`{"attributes":{"pam.seq":1e400,"x":[1,2],"y":{"a":1},"z":1.5e3}}`), []byte(`not json`))
	k, _ := keys.NewSigningKey()
	trusted := map[string]keys.PublicKey{k.ID: k.Public()}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		rep, err := Session("s", []Doc{{ID: "s:0", Source: a}, {ID: "s:1", Source: b}}, trusted, SessionState{Status: schema.StatusEnded})
		if err != nil {
			return
		}
		if rep.Intact() && rep.SignedTo >= 0 {
			t.Fatalf("forged documents verified as signed: %+v", rep)
		}
	})
}
