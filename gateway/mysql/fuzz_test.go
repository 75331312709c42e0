package mysql

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pamtrail/pamtrail/gateway/mysql/wire"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// FuzzSession feeds an arbitrary conversation through the path the relay
// uses: packet framing of both directions, then the tracker. Client and
// server streams alternate, one logical payload at a time, as MySQL's
// half-duplex protocol does. Nothing may panic, every recorded text must
// be valid UTF-8 within its bounds, and close must account for what is
// still pending.
func FuzzSession(f *testing.F) {
	seq := byte(0)
	f.Add(wire.AppendPackets(nil, &seq, append([]byte{wire.ComQuery}, "select 1; select 2"...)),
		[]byte("\x01\x00\x00\x01\x01\x1d\x00\x00\x02\x03def\x00\x00\x00\x011\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x81\x00\x00\x00\x00\x02\x00\x00\x03\x011\x07\x00\x00\x04\xfe\x00\x00\x0a\x00\x00\x00"),
		uint32(wire.ClientDeprecateEOF|wire.ClientMultiStatements))
	f.Add([]byte("\x05\x00\x00\x00\x16abcd\x03\x00\x00\x00\x17\x01\x00"), []byte("\x0c\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00"), uint32(0))
	f.Fuzz(func(t *testing.T, client, server []byte, caps uint32) {
		lim := limits{previewRows: 3, previewBytes: 256, maxParamBytes: 64, maxTextBytes: 1024}
		tr := newTracker(lim, caps, func(q recorder.Query) error {
			if !utf8.ValidString(q.Text) || !utf8.ValidString(q.Preview) || !utf8.ValidString(q.ErrorMessage) {
				panic(fmt.Sprintf("invalid UTF-8 recorded: %+v", q))
			}
			if len(q.Text) > lim.maxTextBytes || len(q.Preview) > lim.previewBytes {
				panic(fmt.Sprintf("recorded text over its bound: %d, %d bytes", len(q.Text), len(q.Preview)))
			}
			for _, p := range q.Params {
				if len(p) > lim.maxParamBytes+2 || !utf8.ValidString(p) {
					panic(fmt.Sprintf("parameter over its bound or invalid: %q", p))
				}
			}
			return nil
		})
		cr := &packetReader{r: bufioReader(client), limit: 4096}
		sr := &packetReader{r: bufioReader(server), limit: 4096}
		now := time.Unix(0, 0)
		for i := 0; i < 10000; i++ {
			progressed := false
			if _, last, err := cr.next(); err == nil {
				progressed = true
				if last {
					tr.client(cr.payload, cr.cut, now)
				}
			}
			for tr.busy() {
				_, last, err := sr.next()
				if err != nil {
					break
				}
				progressed = true
				if last {
					tr.server(sr.payload, sr.cut, now)
				}
			}
			if !progressed {
				break
			}
		}
		_ = tr.close(now)
	})
}

// FuzzSplitStatements checks the splitter never loses or invents text.
func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{"select 1; select 2", "select ';'; -- ;\nselect `a;b`", "/* ; */ select \"x\\\";\"", "# c\nselect 1;;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		parts := splitStatements(q)
		if len(parts) == 0 {
			t.Fatal("no statement")
		}
		joined := 0
		for _, p := range parts {
			if !bytes.Contains([]byte(q), []byte(p)) {
				t.Fatalf("statement %q is not part of %q", p, q)
			}
			joined += len(p)
		}
		if joined > len(q) {
			t.Fatalf("statements of %d bytes from %d bytes", joined, len(q))
		}
	})
}

// FuzzGreeting parses an arbitrary server greeting and login replies, as
// the gateway does with an upstream it does not trust to be well-formed.
func FuzzGreeting(f *testing.F) {
	f.Add([]byte("\x0a5.7.0\x00\x01\x00\x00\x00abcdefgh\x00\xff\xff\x21\x02\x00\xff\xff\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00ijklmnopqrst\x00mysql_native_password\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		seq := byte(0)
		_, _ = readGreeting(wire.NewConn(rw{bytes.NewReader(wire.AppendPackets(nil, &seq, p))}))
		_, _ = wire.ParseOK(append([]byte{0}, p...), wire.ClientSessionTrack)
		_, _ = wire.ParseErr(append([]byte{0xff}, p...))
		_, _ = wire.ParseColumn(p)
		_, _ = wire.ParseTextRow(p, 3)
		_, _ = wire.ParseBinaryRow(p, []wire.Column{{Type: wire.TypeDateTime}, {Type: wire.TypeTime}, {Type: wire.TypeLongLong}})
	})
}

type rw struct{ io.Reader }

func (rw) Write(p []byte) (int, error) { return len(p), nil }

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
