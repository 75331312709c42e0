package postgres

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// Whatever the read boundaries, the scanner delivers the same messages:
// each stream is fed in chunks of every size from 1 byte up.
func TestFrameScannerChunking(t *testing.T) {
	msgs := encode(t, &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{int4Col}}, row("1"),
		&pgproto3.DataRow{Values: [][]byte{[]byte(strings.Repeat("z", 300))}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 2")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	var want []string
	rec := &recordingObserver{want: 1 << 20}
	sc := &frameScanner{maxLen: 1 << 20, obs: rec}
	if err := sc.feed(msgs); err != nil {
		t.Fatal(err)
	}
	want = rec.seen
	for chunk := 1; chunk <= len(msgs); chunk++ {
		rec := &recordingObserver{want: 1 << 20}
		sc := &frameScanner{maxLen: 1 << 20, obs: rec}
		for i := 0; i < len(msgs); i += chunk {
			if err := sc.feed(msgs[i:min(i+chunk, len(msgs))]); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(rec.seen, want) || sc.midMessage() {
			t.Fatalf("chunk %d: saw %q, want %q", chunk, rec.seen, want)
		}
	}
}

func TestFrameScannerLimits(t *testing.T) {
	tests := []struct {
		name    string
		stream  []byte
		wantErr string
	}{
		{name: "length below 4", stream: []byte{'Q', 0, 0, 0, 3}, wantErr: "invalid client message length 3"},
		{name: "over max", stream: []byte{'Q', 0, 0, 4, 1}, wantErr: "over the limit of 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &frameScanner{maxLen: 1024, side: "client", obs: &recordingObserver{}}
			err := sc.feed(tt.stream)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

type recordingObserver struct {
	want int
	seen []string
}

func (r *recordingObserver) wants(byte, int) int { return r.want }
func (r *recordingObserver) message(typ byte, body []byte, size int) error {
	r.seen = append(r.seen, fmt.Sprintf("%c/%d/%x", typ, size, body))
	return nil
}

// BenchmarkTrackerPgbenchSelect is the tracker's cost for one pgbench -S
// transaction (simple and prepared protocol), without the recorder.
func BenchmarkTrackerPgbenchSelect(b *testing.B) {
	lim := limits{previewRows: 10, previewBytes: 4096, maxParamBytes: 1024}
	col := pgproto3.FieldDescription{Name: []byte("abalance"), DataTypeOID: oidInt4, DataTypeSize: 4, TypeModifier: -1}
	simpleReq := encode(b, &pgproto3.Query{String: "SELECT abalance FROM pgbench_accounts WHERE aid = 4242;"})
	simpleResp := encode(b, &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{col}}, row("0"),
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	prepReq := encode(b, bind("", "P0_1", "4242"), &pgproto3.Describe{ObjectType: 'P'}, execute(""), &pgproto3.Sync{})
	prepResp := encode(b, &pgproto3.BindComplete{}, &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{col}}, row("0"),
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	for _, bc := range []struct {
		name      string
		req, resp []byte
	}{{"simple", simpleReq, simpleResp}, {"prepared", prepReq, prepResp}} {
		b.Run(bc.name, func(b *testing.B) {
			tr := newTracker(lim, func(recorder.Query) error { return nil }, slog.New(slog.DiscardHandler))
			cs := &frameScanner{maxLen: 1 << 20, obs: clientSide{tr}}
			ss := &frameScanner{maxLen: 1 << 20, obs: serverSide{tr}}
			setup := encode(b, parse("P0_1", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"), &pgproto3.Sync{})
			tr.begin(time.Now())
			_ = cs.feed(setup)
			_ = ss.feed(encode(b, &pgproto3.ParseComplete{}, &pgproto3.ReadyForQuery{TxStatus: 'I'}))
			tr.end()
			b.ReportAllocs()
			for b.Loop() {
				now := time.Now()
				tr.begin(now)
				_ = cs.feed(bc.req)
				tr.end()
				tr.begin(now)
				_ = ss.feed(bc.resp)
				tr.end()
			}
		})
	}
}

// A Query larger than the capture bound is forwarded whole but recorded
// from its captured prefix, flagged as cut.
