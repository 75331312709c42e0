package sftpparse

import (
	"bytes"
	"testing"
)

// FuzzTracker feeds arbitrary bytes as both directions of an SFTP channel,
// cut at arbitrary points. The parser must not panic, must keep its state
// bounded and must only report operations it can name.
func FuzzTracker(f *testing.F) {
	f.Add(
		bytes.Join([][]byte{
			pkt(fxpInit, 3),
			pkt(fxpOpen, 1, "/tmp/f", fxfWrite|fxfCreat, 0),
			pkt(fxpWrite, 2, "h", u64(0), "data"),
			pkt(fxpClose, 3, "h"),
			pkt(fxpRename, 4, "/a", "/b"),
		}, nil),
		bytes.Join([][]byte{pkt(fxpVersion, 3), handle(1, "h"), ok(2), ok(3), ok(4)}, nil),
		uint8(5),
	)
	f.Add(pkt(fxpExtended, 1, "posix-rename@openssh.com", "/x", "/y"), ok(1), uint8(1))
	f.Add([]byte{0, 0, 0, 5, fxpRead, 0, 0}, []byte{0, 0, 0, 9, fxpData, 0, 0, 0, 0, 0xff, 0xff}, uint8(3))
	f.Fuzz(func(t *testing.T, client, server []byte, chunk uint8) {
		n := int(chunk) + 1
		tr := New()
		var ops []Op
		// Interleave the directions chunk by chunk, as a relay would.
		for len(client) > 0 || len(server) > 0 {
			c := min(n, len(client))
			ops = append(ops, tr.ClientData(client[:c])...)
			client = client[c:]
			s := min(n, len(server))
			ops = append(ops, tr.ServerData(server[:s])...)
			server = server[s:]
		}
		ops = append(ops, tr.Close()...)
		if len(tr.pending) > maxPending || len(tr.handles) > 0 {
			t.Fatalf("state not bounded or not released: %d pending, %d handles", len(tr.pending), len(tr.handles))
		}
		known := map[string]bool{OpRead: true, OpWrite: true, OpOpen: true, OpList: true, OpRemove: true,
			OpRename: true, OpMkdir: true, OpRmdir: true, OpSetstat: true, OpSymlink: true, OpHardlink: true}
		for _, op := range ops {
			if !known[op.Operation] || op.Bytes < 0 {
				t.Fatalf("bad op %+v", op)
			}
		}
	})
}
