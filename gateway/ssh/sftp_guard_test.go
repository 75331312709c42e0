package ssh

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/policy"
)

func sftpPacket(typ byte, id uint32, fields ...any) []byte {
	body := []byte{typ}
	body = binary.BigEndian.AppendUint32(body, id)
	for _, f := range fields {
		switch v := f.(type) {
		case string:
			body = binary.BigEndian.AppendUint32(body, uint32(len(v)))
			body = append(body, v...)
		case uint32:
			body = binary.BigEndian.AppendUint32(body, v)
		}
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// FuzzSFTPGuard: whatever the client sends and however it is cut, the
// guard never panics; with rules that match nothing it forwards the exact
// stream, and with rules that match everything it forwards a subsequence
// of whole packets and answers each refused one.
func FuzzSFTPGuard(f *testing.F) {
	f.Add(append(sftpPacket(sftpOpen, 7, "/etc/passwd", uint32(0x1a), uint32(0)), sftpPacket(6, 8, "handle", "data")...), uint8(3))
	f.Add(sftpPacket(sftpExtended, 9, "posix-rename@openssh.com", "/a", "/etc/b"), uint8(1))
	f.Add([]byte{0, 0, 0, 0, 3}, uint8(2))
	none, _ := policy.Compile(&config.Policy{Name: "p", Mode: config.PolicyEnforce, Files: []config.FileRule{{ID: "r", Under: "/nowhere", Operations: config.FileOperations}}})
	all, _ := policy.Compile(&config.Policy{Name: "p", Mode: config.PolicyEnforce, Files: []config.FileRule{{ID: "r", Under: "/", Operations: config.FileOperations}}})
	f.Fuzz(func(t *testing.T, stream []byte, cut uint8) {
		step := int(cut)%9 + 1
		feed := func(set *policy.Set) ([]byte, int, bool) {
			refused := 0
			g := &sftpGuard{set: set, client: io.Discard, blocked: func(string, string, *policy.Match) { refused++ }}
			var out []byte
			for i := 0; i < len(stream); i += step {
				out = append(out, g.filter(stream[i:min(i+step, len(stream))])...)
			}
			// Bytes are held only inside a path request or a header.
			holding := !g.broken && (g.holding || g.hdrN > 0 && g.hdrN < 5)
			return out, refused, holding
		}
		out, refused, holding := feed(none)
		if refused != 0 || !bytes.HasPrefix(stream, out) || !holding && !bytes.Equal(out, stream) {
			t.Fatalf("rules matching nothing changed the stream (refused %d, holding %v):\n in  %x\n out %x", refused, holding, stream, out)
		}
		if out, _, _ := feed(all); len(out) > len(stream) {
			t.Fatalf("the guard forwarded more than it got")
		}
	})
}

// A blocked upload in the middle of a pipelined stream is dropped whole
// and answered; the packets around it pass untouched.
func TestSFTPGuardDropsOnlyTheBlockedRequest(t *testing.T) {
	set, _ := policy.Compile(&config.Policy{Name: "p", Mode: config.PolicyEnforce, Files: []config.FileRule{{ID: "etc", Under: "/etc", Operations: []string{"upload"}}}})
	before := sftpPacket(sftpOpen, 1, "/tmp/ok", uint32(0x1a), uint32(0))
	blocked := sftpPacket(sftpOpen, 2, "/etc/passwd", uint32(0x1a), uint32(0))
	read := sftpPacket(sftpOpen, 3, "/etc/passwd", uint32(0x01), uint32(0))
	var replies bytes.Buffer
	var refused []string
	g := &sftpGuard{set: set, client: &replies, blocked: func(op, path string, m *policy.Match) { refused = append(refused, op+" "+path+" "+m.Rule) }}
	stream := append(append(append([]byte(nil), before...), blocked...), read...)
	var out []byte
	for i := 0; i < len(stream); i += 3 {
		out = append(out, g.filter(stream[i:min(i+3, len(stream))])...)
	}
	if want := append(append([]byte(nil), before...), read...); !bytes.Equal(out, want) {
		t.Fatalf("forwarded %x, want %x", out, want)
	}
	if len(refused) != 1 || refused[0] != "upload /etc/passwd etc" {
		t.Fatalf("refused %q", refused)
	}
	r := replies.Bytes()
	if len(r) < 13 || r[4] != sftpStatus || binary.BigEndian.Uint32(r[5:]) != 2 || binary.BigEndian.Uint32(r[9:]) != sftpPermissionDenied {
		t.Fatalf("reply %x is not STATUS permission denied for request 2", r)
	}
}
