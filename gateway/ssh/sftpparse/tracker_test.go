package sftpparse

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// pkt builds an SFTP packet: type then fields, each a uint32, a uint64
// (as u64) or a string.
type u64 uint64

func pkt(typ byte, fields ...any) []byte {
	body := []byte{typ}
	for _, f := range fields {
		switch v := f.(type) {
		case int:
			body = binary.BigEndian.AppendUint32(body, uint32(v))
		case u64:
			body = binary.BigEndian.AppendUint64(body, uint64(v))
		case string:
			body = binary.BigEndian.AppendUint32(body, uint32(len(v)))
			body = append(body, v...)
		}
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// exchange is a request and its response.
type exchange struct{ req, resp []byte }

func ok(id int) []byte                   { return pkt(fxpStatus, id, fxOK, "", "") }
func fail(id, code int, m string) []byte { return pkt(fxpStatus, id, code, m, "") }
func handle(id int, h string) []byte     { return pkt(fxpHandle, id, h) }

func TestTrackerOperations(t *testing.T) {
	data := strings.Repeat("x", 1000)
	tests := []struct {
		name string
		conv []exchange
		want []Op
	}{
		{
			name: "upload",
			conv: []exchange{
				{pkt(fxpOpen, 1, "/tmp/up.bin", fxfWrite|fxfCreat|fxfTrunc, 0), handle(1, "h1")},
				{pkt(fxpWrite, 2, "h1", u64(0), data), ok(2)},
				{pkt(fxpWrite, 3, "h1", u64(1000), data), ok(3)},
				{pkt(fxpClose, 4, "h1"), ok(4)},
			},
			want: []Op{{Operation: OpWrite, Path: "/tmp/up.bin", Bytes: 2000}},
		},
		{
			name: "download",
			conv: []exchange{
				{pkt(fxpOpen, 1, "/etc/hosts", 1, 0), handle(1, "h")},
				{pkt(fxpRead, 2, "h", u64(0), 32768), pkt(fxpData, 2, data)},
				{pkt(fxpRead, 3, "h", u64(1000), 32768), fail(3, fxEOF, "")},
				{pkt(fxpClose, 4, "h"), ok(4)},
			},
			want: []Op{{Operation: OpRead, Path: "/etc/hosts", Bytes: 1000}},
		},
		{
			name: "refused open",
			conv: []exchange{{pkt(fxpOpen, 1, "/root/secret", 1, 0), fail(1, 3, "Permission denied")}},
			want: []Op{{Operation: OpOpen, Path: "/root/secret", Error: "permission denied: Permission denied"}},
		},
		{
			name: "failed write marks the file",
			conv: []exchange{
				{pkt(fxpOpen, 1, "/full", fxfWrite, 0), handle(1, "h")},
				{pkt(fxpWrite, 2, "h", u64(0), data), fail(2, 4, "No space left on device")},
				{pkt(fxpClose, 3, "h"), ok(3)},
			},
			want: []Op{{Operation: OpWrite, Path: "/full", Error: "failure: No space left on device"}},
		},
		{
			name: "namespace operations",
			conv: []exchange{
				{pkt(fxpRemove, 1, "/a"), ok(1)},
				{pkt(fxpRename, 2, "/b", "/c"), ok(2)},
				{pkt(fxpMkdir, 3, "/d", 0), ok(3)},
				{pkt(fxpRmdir, 4, "/d"), fail(4, 2, "No such file")},
				{pkt(fxpSetstat, 5, "/e", 0), ok(5)},
				{pkt(fxpSymlink, 6, "/target", "/link"), ok(6)},
				{pkt(fxpExtended, 7, "posix-rename@openssh.com", "/f", "/g"), ok(7)},
				{pkt(fxpExtended, 8, "hardlink@openssh.com", "/orig", "/hard"), ok(8)},
				{pkt(fxpExtended, 9, "statvfs@openssh.com", "/"), pkt(fxpExtendedReply, 9)},
			},
			want: []Op{
				{Operation: OpRemove, Path: "/a"},
				{Operation: OpRename, Path: "/b", Target: "/c"},
				{Operation: OpMkdir, Path: "/d"},
				{Operation: OpRmdir, Path: "/d", Error: "no such file: No such file"},
				{Operation: OpSetstat, Path: "/e"},
				{Operation: OpSymlink, Path: "/link", Target: "/target"},
				{Operation: OpRename, Path: "/f", Target: "/g"},
				{Operation: OpHardlink, Path: "/hard", Target: "/orig"},
			},
		},
		{
			name: "fsetstat names the handle's file, listing a directory",
			conv: []exchange{
				{pkt(fxpOpen, 1, "/x", fxfWrite, 0), handle(1, "hx")},
				{pkt(fxpFsetstat, 2, "hx", 0), ok(2)},
				{pkt(fxpOpendir, 3, "/etc"), handle(3, "hd")},
				{pkt(fxpClose, 4, "hd"), ok(4)},
				{pkt(fxpClose, 5, "hx"), ok(5)},
			},
			want: []Op{{Operation: OpSetstat, Path: "/x"}, {Operation: OpList, Path: "/etc"}, {Operation: OpWrite, Path: "/x"}},
		},
		{
			name: "responses for unknown ids are ignored",
			conv: []exchange{{nil, ok(77)}, {nil, handle(78, "h")}, {nil, pkt(fxpData, 79, "zz")}},
			want: nil,
		},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 7, 1 << 20} {
			tr := New()
			var got []Op
			for _, ex := range tt.conv {
				got = append(got, feedChunks(tr.ClientData, ex.req, chunk)...)
				got = append(got, feedChunks(tr.ServerData, ex.resp, chunk)...)
			}
			got = append(got, tr.Close()...)
			if tr.Err() != nil {
				t.Fatalf("%s (chunk %d): %v", tt.name, chunk, tr.Err())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s (chunk %d):\n got %+v\nwant %+v", tt.name, chunk, got, tt.want)
			}
		}
	}
}

func feedChunks(feed func([]byte) []Op, b []byte, chunk int) []Op {
	var ops []Op
	for len(b) > 0 {
		n := min(chunk, len(b))
		ops = append(ops, feed(b[:n])...)
		b = b[n:]
	}
	return ops
}

func TestTrackerUnclosedFileReportedAtClose(t *testing.T) {
	tr := New()
	tr.ClientData(pkt(fxpOpen, 1, "/partial", fxfWrite, 0))
	tr.ServerData(handle(1, "h"))
	tr.ClientData(pkt(fxpWrite, 2, "h", u64(0), "abc"))
	tr.ServerData(ok(2))
	got := tr.Close()
	want := []Op{{Operation: OpWrite, Path: "/partial", Bytes: 3, Error: "the channel closed before the file was closed"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestTrackerLargeWriteIsCountedNotKept(t *testing.T) {
	tr := New()
	tr.ClientData(pkt(fxpOpen, 1, "/big", fxfWrite, 0))
	tr.ServerData(handle(1, "h"))
	big := strings.Repeat("y", 200<<10) // beyond keepBytes
	tr.ClientData(pkt(fxpWrite, 2, "h", u64(0), big))
	tr.ServerData(ok(2))
	tr.ClientData(pkt(fxpClose, 3, "h"))
	got := tr.ServerData(ok(3))
	if len(got) != 1 || got[0].Bytes != int64(len(big)) {
		t.Fatalf("got %+v, want one write of %d bytes", got, len(big))
	}
	if cap(tr.requests.body) > keepBytes {
		t.Fatalf("framer kept %d bytes, want at most %d", cap(tr.requests.body), keepBytes)
	}
}

func TestTrackerStops(t *testing.T) {
	tests := []struct {
		name   string
		client []byte
		server []byte
		want   error
	}{
		{"oversized packet", []byte{0xff, 0xff, 0xff, 0xff, 1}, nil, nil},
		{"zero-length packet", []byte{0, 0, 0, 0}, nil, nil},
		{"other protocol version", pkt(fxpInit, 6), pkt(fxpVersion, 6), ErrUnsupportedVersion},
	}
	for _, tt := range tests {
		tr := New()
		tr.ClientData(tt.client)
		tr.ServerData(tt.server)
		if tr.Err() == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if tt.want != nil && !errors.Is(tr.Err(), tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, tr.Err(), tt.want)
		}
		// Once stopped, nothing more is reported.
		if ops := tr.ClientData(pkt(fxpRemove, 1, "/x")); ops != nil {
			t.Errorf("%s: ops after the stream stopped: %+v", tt.name, ops)
		}
	}
}

func TestTrackerBoundsPending(t *testing.T) {
	tr := New()
	for id := range maxPending + 10 {
		tr.ClientData(pkt(fxpRemove, id, "/x"))
	}
	if len(tr.pending) != maxPending || tr.Dropped != 10 {
		t.Fatalf("pending %d, dropped %d; want %d and 10", len(tr.pending), tr.Dropped, maxPending)
	}
}
