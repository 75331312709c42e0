package rsyncparse

import (
	"testing"
)

// FuzzTracker feeds arbitrary bytes as both directions of an rsync
// channel, seeded with captured traffic. The tracker must not panic, must
// keep its memory bounded and must report sizes that make sense.
func FuzzTracker(f *testing.F) {
	for _, name := range []string{"push_delta", "push_one_file", "push_dry_run", "pull_zcc", "push_noinc_delete", "pull_hardlinks"} {
		c := loadCapture(f, name)
		// Seeds stay small so that mutations reach every part: the whole
		// stream for the small captures, its first kilobytes otherwise.
		f.Add(c.cmd.raw, c.client[:min(len(c.client), 6<<10)], c.server[:min(len(c.server), 6<<10)], uint8(200))
	}
	f.Add("rsync --server -logDtprze.iLsfxCIvu . /d", []byte{32, 0, 0, 0}, []byte{32, 0, 0, 0, 0x81, 0x81, 0, 0, 0, 0, 0}, uint8(0))
	f.Fuzz(func(t *testing.T, command string, client, server []byte, chunk uint8) {
		cmd, ok := ParseCommand(command)
		if !ok {
			cmd = Command{}
		}
		tr := New(cmd)
		n := int(chunk) + 1
		var ops []Op
		for len(client) > 0 || len(server) > 0 {
			s := min(n, len(server))
			ops = append(ops, tr.ServerData(server[:s])...)
			server = server[s:]
			c := min(n, len(client))
			ops = append(ops, tr.ClientData(client[:c])...)
			client = client[c:]
		}
		if op, ok := tr.InProgress(); ok {
			ops = append(ops, op)
		}
		for _, op := range ops {
			if op.Literal < 0 || op.Matched < 0 || op.File.Size < 0 || len(op.File.Name) > maxName ||
				(op.Operation != OpUpload && op.Operation != OpDownload) {
				t.Fatalf("bad op %+v", op)
			}
		}
		for _, s := range []*side{&tr.client, &tr.server} {
			if len(s.raw) > maxPending || len(s.data.pending) > maxPending {
				t.Fatalf("buffers not bounded: handshake %d, data %d", len(s.raw), len(s.data.pending))
			}
			if s.sender != nil && (s.sender.liveFiles > maxLiveFiles || s.sender.liveBytes > maxNameBytes) {
				t.Fatalf("file lists not bounded: %d files, %d bytes", s.sender.liveFiles, s.sender.liveBytes)
			}
		}
	})
}
