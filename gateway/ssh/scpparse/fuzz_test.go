package scpparse

import (
	"testing"
)

// FuzzTracker feeds arbitrary bytes as both directions of an scp channel.
// The parser must not panic and must report sizes that make sense.
func FuzzTracker(f *testing.F) {
	f.Add("scp -r -t -- /tmp/into", []byte("D0755 0 tree\nC0600 3 a.txt\nabc\x00E\n"), []byte("\x00\x00\x00\x00\x00\x00"), uint8(4))
	f.Add("scp -f -- /x", []byte("C0644 4 x\nbox\n\x01scp: err\n"), []byte("\x00\x00\x01scp: no\n"), uint8(1))
	f.Add("scp -t x", []byte("T1 0 1 0\nC0644 99999999999 big\n"), []byte("\x00\x00\x00"), uint8(200))
	f.Fuzz(func(t *testing.T, command string, source, sink []byte, chunk uint8) {
		cmd, ok := ParseCommand(command)
		if !ok {
			cmd = Command{}
		}
		n := int(chunk) + 1
		tr := New(cmd)
		var ops []Op
		for len(source) > 0 || len(sink) > 0 {
			s := min(n, len(sink))
			ops = append(ops, tr.SinkData(sink[:s])...)
			sink = sink[s:]
			c := min(n, len(source))
			ops = append(ops, tr.SourceData(source[:c])...)
			source = source[c:]
		}
		ops = append(ops, tr.Close()...)
		for _, op := range ops {
			if op.Bytes < 0 || (op.Operation != OpUpload && op.Operation != OpDownload) {
				t.Fatalf("bad op %+v", op)
			}
		}
		if len(tr.dirs) > maxDepth || len(tr.line) > maxLine || len(tr.sinkMsg) > maxLine {
			t.Fatalf("state not bounded")
		}
	})
}
