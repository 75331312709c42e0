package postgres

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sys/unix"
)

func TestDecodeClientEncodings(t *testing.T) {
	tests := []struct {
		encoding string
		in       string
		want     string
		lossy    bool
	}{
		{"UTF8", "café €", "café €", false},
		{"UTF8", "bad \xff", "bad \xff", false}, // left to the recorder
		{"SQL_ASCII", "bad \xff", "bad \ufffd", true},
		{"SQL_ASCII", "caf\xe9", "caf\ufffd", true},
		{"LATIN1", "caf\xe9", "café", false},
		{"latin9", "\xa4 5", "€ 5", false},
		{"ISO-8859-15", "\xa4", "€", false},
		{"WIN1252", "\x80 \x93ok\x94", "€ “ok”", false},
		{"windows-1252", "\x81", "\ufffd", true}, // undefined in cp1252
		{"WIN1251", "\xcf\xf0\xe8\xe2\xe5\xf2", "Привет", false},
		{"KOI8R", "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет", false},
		{"SJIS", "\x93\xfa\x96\x7b\x8c\xea", "日本語", false},
		{"Shift_JIS", "\x82\xa0", "あ", false},
		{"SJIS", "\x93", "\ufffd", true}, // a lone lead byte
		{"EUC_JP", "\xc6\xfc\xcb\xdc\xb8\xec", "日本語", false},
		{"EUC_KR", "\xc7\xd1\xb1\xb9", "한국", false},
		{"GBK", "\xd6\xd0\xce\xc4", "中文", false},
		{"GB18030", "\xd6\xd0\xce\xc4", "中文", false},
		{"BIG5", "\xa4\xa4\xa4\xe5", "中文", false},
		{"unicode", "ok", "ok", false},
	}
	for _, tt := range tests {
		t.Run(tt.encoding+"/"+tt.want, func(t *testing.T) {
			cs, ok := lookupCharset(tt.encoding)
			if !ok {
				t.Fatalf("encoding %q not known", tt.encoding)
			}
			d := decoder{cs: cs}
			got, lossy := d.decode([]byte(tt.in), true)
			if got != tt.want || lossy != tt.lossy || d.lossy != tt.lossy {
				t.Errorf("decode(%q) = %q lossy=%v (sticky %v); want %q lossy=%v", tt.in, got, lossy, d.lossy, tt.want, tt.lossy)
			}
		})
	}
	if _, ok := lookupCharset("auto"); ok {
		t.Error(`"auto" accepted as an encoding`)
	}
}

// A text cut at a capture limit loses the split character quietly: it is
// a cut, not undecodable input.
func TestDecodePrefixDropsTheSplitCharacter(t *testing.T) {
	for _, tt := range []struct{ encoding, in, want string }{
		{"SJIS", "\x93\xfa\x96", "日"},
		{"EUC_JP", "\xc6\xfc\xcb", "日"},
		{"UTF8", "日\xe6\x9c", "日"},
	} {
		cs, _ := lookupCharset(tt.encoding)
		d := decoder{cs: cs}
		if got := d.prefix([]byte(tt.in)); got != tt.want || d.lossy {
			t.Errorf("%s prefix(%q) = %q lossy=%v, want %q", tt.encoding, tt.in, got, d.lossy, tt.want)
		}
	}
}

func TestEncodingSetting(t *testing.T) {
	tests := []struct {
		stmt      string
		name      string
		reset, ok bool
	}{
		{"SET client_encoding TO 'LATIN9'", "LATIN9", false, true},
		{"set client_encoding=win1252", "win1252", false, true},
		{"SET SESSION client_encoding = \"SJIS\"", "SJIS", false, true},
		{"SET LOCAL client_encoding TO euc_jp", "euc_jp", false, true},
		{"set names 'UTF8'", "UTF8", false, true},
		{"SET client_encoding TO DEFAULT", "", true, true},
		{"RESET client_encoding", "", true, true},
		{"reset all", "", true, true},
		{"SET search_path TO x", "", false, false},
		{"RESET search_path", "", true, false},
		{"select 'SET client_encoding TO latin9'", "", false, false},
	}
	for _, tt := range tests {
		name, reset, ok := encodingSetting(tt.stmt)
		if name != tt.name || reset != tt.reset || ok != tt.ok {
			t.Errorf("encodingSetting(%q) = %q, %v, %v; want %q, %v, %v", tt.stmt, name, reset, ok, tt.name, tt.reset, tt.ok)
		}
	}
}

// Every text field of an event is decoded from the session's encoding: the
// query, parameters, columns, preview, notices, errors and tag.
func TestTrackerDecodesClientEncoding(t *testing.T) {
	w := newWireScript(t)
	w.client(&pgproto3.Query{String: "SET client_encoding TO 'LATIN9'"})
	w.server(&pgproto3.CommandComplete{CommandTag: []byte("SET")},
		&pgproto3.ParameterStatus{Name: "client_encoding", Value: "LATIN9"}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	latin9Col := textCol
	latin9Col.Name = []byte("pr\xe9vu")
	w.client(&pgproto3.Query{String: "select '\xa4' as \"pr\xe9vu\" -- \xbd"})
	w.server(&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{latin9Col}}, row("\xa4 10"),
		&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Message: "d\xe9j\xe0 vu"},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	w.client(parse("", "select $1::text", oidText), bind("", "", "\xa4uro"), &pgproto3.Describe{ObjectType: 'P'}, execute(""), &pgproto3.Sync{})
	w.server(&pgproto3.ParseComplete{}, &pgproto3.BindComplete{}, &pgproto3.NoData{},
		errResp("22P02", "invalid input: \xab\xa4\xbb"), &pgproto3.ReadyForQuery{TxStatus: 'I'})
	if len(w.got) != 3 {
		t.Fatalf("got %d events, want 3", len(w.got))
	}
	if w.got[0].ClientEncoding != "" {
		t.Errorf("the SET itself was sent in UTF8, recorded as %q", w.got[0].ClientEncoding)
	}
	q := w.got[1]
	want := []string{q.Text, q.Columns[0], q.Preview, q.Notices[0], q.CommandTag}
	if !reflect.DeepEqual(want, []string{"select '€' as \"prévu\" -- œ", "prévu", "€ 10", "NOTICE: déjà vu", "SELECT 1"}) ||
		q.ClientEncoding != "LATIN9" || q.TextLossy {
		t.Errorf("event %+v", q)
	}
	e := w.got[2]
	if e.ErrorMessage != "invalid input: «€»" || e.Params[0] != "'€uro'" || e.ClientEncoding != "LATIN9" {
		t.Errorf("error event %+v", e)
	}
	for _, ev := range w.got {
		if !utf8.ValidString(ev.Text + ev.Preview + ev.ErrorMessage + strings.Join(ev.Params, "")) {
			t.Errorf("invalid UTF-8 in %+v", ev)
		}
	}
}

// Bytes the encoding cannot decode are replaced and flagged, and the event
// is kept; a server report wins over the client's SET. (Invalid bytes in
// a UTF8 session pass through to the recorder, which repairs and flags
// them: see recorder.TestInvalidUTF8IsRepairedKeepingSessionAttributes.)
func TestTrackerMarksLossyText(t *testing.T) {
	w := newWireScript(t)
	w.tr.startWith(charset{name: "SQL_ASCII"})
	w.client(&pgproto3.Query{String: "select 1"})
	w.server(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	w.client(&pgproto3.Query{String: "select 'caf\xe9'"}) // SQL_ASCII: bytes without an encoding
	w.server(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	w.client(&pgproto3.Query{String: "SET client_encoding TO sjis"})
	w.server(&pgproto3.CommandComplete{CommandTag: []byte("SET")},
		&pgproto3.ParameterStatus{Name: "client_encoding", Value: "SJIS"}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	w.client(&pgproto3.Query{String: "select '\x93\xfa\x96\x7b'"})
	w.server(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	var lossy []bool
	for _, q := range w.got {
		lossy = append(lossy, q.TextLossy)
	}
	if !reflect.DeepEqual(lossy, []bool{false, true, false, false}) {
		t.Errorf("lossy flags %v, want only the invalid statement", lossy)
	}
	if w.got[1].Text != "select 'caf\ufffd'" || w.got[3].Text != "select '日本'" || w.got[3].ClientEncoding != "SJIS" {
		t.Errorf("events %+v", w.got)
	}
}

// A SET the server refused leaves the client's encoding as it was.
func TestTrackerRevertsARefusedSet(t *testing.T) {
	w := newWireScript(t)
	w.client(&pgproto3.Query{String: "SET client_encoding TO latin9"})
	w.server(errResp("25P02", "current transaction is aborted"), &pgproto3.ReadyForQuery{TxStatus: 'E'})
	w.client(&pgproto3.Query{String: "select 'é'"})
	w.server(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'E'})
	if got := w.got[1]; got.Text != "select 'é'" || got.ClientEncoding != "" {
		t.Errorf("event %+v, want UTF8 text", got)
	}
}

func TestSessionCharsetPrefersTheServer(t *testing.T) {
	status := func(name, value string) []byte {
		return appendMessage(nil, 'S', []byte(name+"\x00"+value+"\x00"))
	}
	initial := append(status("server_version", "15"), status("client_encoding", "EUC_JP")...)
	if got := sessionCharset(initial, "latin1"); got.name != "EUC_JP" {
		t.Errorf("got %q, want the server's EUC_JP", got.name)
	}
	if got := sessionCharset(status("server_version", "15"), "latin1"); got.name != "LATIN1" {
		t.Errorf("got %q, want the startup packet's LATIN1", got.name)
	}
	if got := sessionCharset(nil, "auto"); got.name != "UTF8" {
		t.Errorf("got %q, want UTF8", got.name)
	}
}

// FuzzDecodeClientText decodes arbitrary bytes in every encoding, whole and
// cut: the result is always valid UTF-8, and lossless input stays lossless.
func FuzzDecodeClientText(f *testing.F) {
	f.Add([]byte("select '\xa4'"), uint8(0))
	f.Add([]byte("\x93\xfa\x96\x7b"), uint8(3))
	f.Add([]byte("\xe6\x97\xa5"), uint8(7))
	names := make([]string, 0, len(encodings))
	for name := range encodings {
		names = append(names, name)
	}
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		cs, _ := lookupCharset(names[int(which)%len(names)])
		for _, atEOF := range []bool{true, false} {
			d := decoder{cs: cs}
			s, lossy := d.decode(b, atEOF)
			if cs.name == "UTF8" && atEOF {
				if s != string(b) || lossy {
					t.Fatalf("UTF8 text %q changed to %q", b, s) // the recorder validates it
				}
				continue
			}
			if !utf8.ValidString(s) {
				t.Fatalf("%s: decode(%q) = %q, not UTF-8", cs.name, b, s)
			}
			if lossy != strings.ContainsRune(s, utf8.RuneError) && cs.enc != nil {
				t.Fatalf("%s: lossy=%v but output %q", cs.name, lossy, s)
			}
			if cs.enc == nil && utf8.Valid(b) && (s != string(b) || lossy) {
				t.Fatalf("%s: valid UTF-8 %q changed to %q", cs.name, b, s)
			}
		}
	})
}

func TestBackendKeyDataLengths(t *testing.T) {
	long := bytes.Repeat([]byte{0xab}, 32)
	tests := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"3.0 four-byte secret", binary.BigEndian.AppendUint32([]byte{0, 0, 0x30, 0x39}, 42), true},
		{"3.2 32-byte secret", append([]byte{0, 0, 0x30, 0x39}, long...), true},
		{"3.2 256-byte secret", append([]byte{0, 0, 0x30, 0x39}, bytes.Repeat([]byte{1}, 256)...), true},
		{"secret too long", append([]byte{0, 0, 0x30, 0x39}, bytes.Repeat([]byte{1}, 257)...), false},
		{"secret too short", []byte{0, 0, 0x30, 0x39, 1, 2}, false},
	}
	for _, tt := range tests {
		k, ok := parseBackendKeyData(tt.body)
		if ok != tt.ok {
			t.Errorf("%s: ok=%v, want %v", tt.name, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if k.pid != 12345 || !bytes.Equal(k.secret, tt.body[4:]) {
			t.Errorf("%s: key %+v", tt.name, k)
		}
		// The cancel request carries the same key back.
		req := appendCancelRequest(nil, k)
		if int(binary.BigEndian.Uint32(req)) != len(req) {
			t.Errorf("%s: cancel request length field %d, packet %d bytes", tt.name, binary.BigEndian.Uint32(req), len(req))
		}
		back, ok := parseCancelRequest(req[4:])
		if !ok || back.pid != k.pid || !bytes.Equal(back.secret, k.secret) {
			t.Errorf("%s: cancel request round trip %+v %v", tt.name, back, ok)
		}
	}
}

// The registry hands out the server's pid with a fresh secret; only the
// exact secret finds the target, and two upstream servers may share a pid.
func TestCancelRegistrySharedPid(t *testing.T) {
	r := newCancelRegistry()
	a := r.register(4242, secretLen30, cancelTarget{upstream: cancelKey{pid: 4242, secret: []byte("srvA")}})
	b := r.register(4242, secretLen32, cancelTarget{upstream: cancelKey{pid: 4242, secret: []byte("srvB")}})
	if a.pid != 4242 || b.pid != 4242 || len(a.secret) != 4 || len(b.secret) != 32 {
		t.Fatalf("keys %+v %+v", a, b)
	}
	for key, want := range map[*cancelKey]string{&a: "srvA", &b: "srvB"} {
		got, ok := r.lookup(*key)
		if !ok || string(got.upstream.secret) != want {
			t.Errorf("lookup(%+v) = %+v %v, want %s", *key, got, ok, want)
		}
	}
	wrong := cancelKey{pid: 4242, secret: append([]byte(nil), a.secret...)}
	wrong.secret[0] ^= 1
	if _, ok := r.lookup(wrong); ok {
		t.Error("a wrong secret found a target")
	}
	if _, ok := r.lookup(cancelKey{pid: 4242, secret: a.secret[:3]}); ok {
		t.Error("a shortened secret found a target")
	}
	r.unregister(a)
	if _, ok := r.lookup(a); ok {
		t.Error("unregistered key still found")
	}
	if _, ok := r.lookup(b); !ok {
		t.Error("unregistering one key dropped the other on the same pid")
	}
}

var benchSink string

// reportThreadCPU reports the benchmark loop's CPU time per operation
// (cpu-ns/op) besides the wall time: on a shared machine, time spent
// waiting for a CPU inflates ns/op but not the thread's CPU time, so two
// variants compare by cpu-ns/op even under load.
func reportThreadCPU(b *testing.B) (stop func()) {
	runtime.LockOSThread()
	b.ReportAllocs()
	var start unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &start)
	return func() {
		var end unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &end)
		runtime.UnlockOSThread()
		b.ReportMetric(float64(end.Nano()-start.Nano())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkDecodeText is the decoding cost per recorded text, side by side
// with the plain copy the tracker made before decoding existed: UTF8
// sessions (the fast path: validation only), then other encodings.
func BenchmarkDecodeText(b *testing.B) {
	query := []byte("SELECT abalance FROM pgbench_accounts WHERE aid = 4242;")
	latin9, _ := lookupCharset("LATIN9")
	sjis, _ := lookupCharset("SJIS")
	for _, bc := range []struct {
		name string
		cs   charset
		text []byte
	}{
		{"UTF8", utf8Charset, query},
		{"UTF8-non-ASCII", utf8Charset, []byte("SELECT 'prévu €' FROM t WHERE aid = 4242;")},
		{"LATIN9-ASCII", latin9, query},
		{"LATIN9-non-ASCII", latin9, []byte("SELECT 'pr\xe9vu \xa4' FROM t WHERE aid = 4242;")},
		{"SJIS-non-ASCII", sjis, []byte("SELECT '\x93\xfa\x96\x7b\x8c\xea' FROM t WHERE aid = 4242;")},
	} {
		b.Run("copy/"+bc.name, func(b *testing.B) {
			defer reportThreadCPU(b)()
			for b.Loop() {
				benchSink = string(bc.text)
			}
		})
		b.Run("decode/"+bc.name, func(b *testing.B) {
			d := decoder{cs: bc.cs}
			defer reportThreadCPU(b)()
			for b.Loop() {
				benchSink = d.text(bc.text)
			}
		})
	}
}
