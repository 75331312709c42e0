package ssh

import (
	"encoding/binary"
	"io"
	"sync"
	"time"

	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/ssh/sftpparse"
)

// SFTP packet types and flags the guard reads (draft-ietf-secsh-filexfer-02).
const (
	sftpOpen     = 3
	sftpSetstat  = 9
	sftpRemove   = 13
	sftpMkdir    = 14
	sftpRmdir    = 15
	sftpRename   = 18
	sftpSymlink  = 20
	sftpStatus   = 101
	sftpExtended = 200

	sftpWriteFlags       = 0x02 | 0x04 | 0x08 | 0x10 // WRITE, APPEND, CREAT, TRUNC
	sftpPermissionDenied = 3
)

// sftpGuard stops SFTP requests a files rule blocks: the request never
// reaches the target, and the client gets SSH_FX_PERMISSION_DENIED for it,
// with the reason. Requests pass in the chunks they came in; only the
// small path requests are held until whole. The reply is written to the
// client between two of the target's packets (SFTP answers may come in any
// order), so it never lands inside one.
type sftpGuard struct {
	set *policy.Set
	// blocked tells the user and records a refused request.
	blocked func(op, path string, m *policy.Match)

	// client -> target framing; broken once the stream is not SFTP as the
	// guard knows it, after which everything passes (the target refuses it)
	broken  bool
	hdr     [5]byte
	hdrN    int
	remain  int
	holding bool
	held    []byte
	out     []byte

	// target -> client framing and the replies waiting for a boundary
	mu       sync.Mutex
	client   io.Writer
	respHdr  [4]byte
	respHdrN int
	respLeft int
	queue    []byte
}

func newSFTPGuard(c *sessionChannel, set *policy.Set) *sftpGuard {
	return &sftpGuard{set: set, client: c.client, blocked: func(op, path string, m *policy.Match) {
		s := c.s
		s.log.Info("sftp request blocked by policy", "operation", op, "path", path, "rule", m.Rule)
		s.record(s.rec.File(recorder.FileOp{Time: time.Now(), Channel: channelSFTP, Operation: op, Path: path,
			Error: blockedText(op+" of "+path, m), Policy: m}))
	}}
}

func pathRequest(typ byte) bool {
	switch typ {
	case sftpOpen, sftpSetstat, sftpRemove, sftpMkdir, sftpRmdir, sftpRename, sftpSymlink, sftpExtended:
		return true
	}
	return false
}

// filter returns what of the client's bytes p goes on to the target.
func (g *sftpGuard) filter(p []byte) []byte {
	if g.broken {
		return p
	}
	g.out = g.out[:0]
	for i := 0; i < len(p); {
		if g.hdrN < 5 {
			n := min(5-g.hdrN, len(p)-i)
			copy(g.hdr[g.hdrN:], p[i:i+n])
			g.hdrN += n
			i += n
			if g.hdrN < 5 {
				break
			}
			size := int(binary.BigEndian.Uint32(g.hdr[:4]))
			if size < 1 || size > sftpparse.MaxPacket {
				g.broken = true
				g.out = append(g.out, g.hdr[:]...)
				return append(g.out, p[i:]...)
			}
			g.remain = size - 1
			g.holding = pathRequest(g.hdr[4])
			if g.holding {
				g.held = append(g.held[:0], g.hdr[:]...)
			} else {
				g.out = append(g.out, g.hdr[:]...)
			}
		}
		n := min(g.remain, len(p)-i)
		if g.holding {
			g.held = append(g.held, p[i:i+n]...)
		} else {
			g.out = append(g.out, p[i:i+n]...)
		}
		i += n
		g.remain -= n
		if g.remain == 0 {
			g.hdrN = 0
			if g.holding {
				g.holding = false
				if !g.refused(g.held) {
					g.out = append(g.out, g.held...)
				}
			}
		}
	}
	return g.out
}

// refused checks one whole path request; a blocked one is answered here.
func (g *sftpGuard) refused(pkt []byte) bool {
	r := sftpReader{b: pkt[5:]}
	id := r.uint32()
	var op string
	var paths []string
	switch pkt[4] {
	case sftpOpen:
		path := r.string()
		op = "download"
		if r.uint32()&sftpWriteFlags != 0 {
			op = "upload"
		}
		paths = []string{path}
	case sftpSetstat:
		op, paths = "setstat", []string{r.string()}
	case sftpRemove:
		op, paths = "remove", []string{r.string()}
	case sftpMkdir:
		op, paths = "mkdir", []string{r.string()}
	case sftpRmdir:
		op, paths = "rmdir", []string{r.string()}
	case sftpRename:
		op, paths = "rename", []string{r.string(), r.string()}
	case sftpSymlink:
		op, paths = "symlink", []string{r.string(), r.string()}
	case sftpExtended:
		switch r.string() {
		case "posix-rename@openssh.com":
			op, paths = "rename", []string{r.string(), r.string()}
		case "hardlink@openssh.com":
			op, paths = "symlink", []string{r.string(), r.string()}
		}
	}
	if r.short || op == "" {
		return false
	}
	for _, path := range paths {
		m := g.set.File(op, path)
		if !m.Blocks() {
			continue
		}
		g.reply(id, blockedText(op+" of "+path, m))
		g.blocked(op, path, m)
		return true
	}
	return false
}

// reply sends SSH_FXP_STATUS permission denied for request id, now if the
// target's stream is between packets, else at its next boundary.
func (g *sftpGuard) reply(id uint32, msg string) {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+4+4+4+len(msg)+4))
	b = append(b, sftpStatus)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, sftpPermissionDenied)
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	b = append(b, msg...)
	b = binary.BigEndian.AppendUint32(b, 0) // language tag
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.respHdrN == 0 && g.respLeft == 0 {
		_, _ = g.client.Write(b)
		return
	}
	g.queue = append(g.queue, b...)
}

// Write forwards the target's bytes to the client, putting queued replies
// in at the first packet boundary.
func (g *sftpGuard) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	written := 0
	for len(g.queue) > 0 && written < len(p) {
		cut := g.boundary(p[written:])
		if _, err := g.client.Write(p[written : written+cut]); err != nil {
			return written, err
		}
		written += cut
		if g.respHdrN == 0 && g.respLeft == 0 {
			q := g.queue
			g.queue = nil
			if _, err := g.client.Write(q); err != nil {
				return written, err
			}
		}
	}
	if written < len(p) {
		g.track(p[written:])
		if _, err := g.client.Write(p[written:]); err != nil {
			return written, err
		}
	}
	return len(p), nil
}

// boundary returns how many bytes of p end the packet in progress (all of
// p if it does not end there), advancing the framing over them.
func (g *sftpGuard) boundary(p []byte) int {
	i := 0
	for i < len(p) {
		if g.respLeft == 0 {
			n := min(4-g.respHdrN, len(p)-i)
			copy(g.respHdr[g.respHdrN:], p[i:i+n])
			g.respHdrN += n
			i += n
			if g.respHdrN < 4 {
				return i
			}
			g.respHdrN = 0
			g.respLeft = int(binary.BigEndian.Uint32(g.respHdr[:]))
			if g.respLeft == 0 {
				return i
			}
		}
		n := min(g.respLeft, len(p)-i)
		g.respLeft -= n
		i += n
		if g.respLeft == 0 {
			return i
		}
	}
	return i
}

// track advances the framing over p.
func (g *sftpGuard) track(p []byte) {
	for len(p) > 0 {
		p = p[g.boundary(p):]
	}
}

// sftpReader decodes request fields; reads past the end set short.
type sftpReader struct {
	b     []byte
	short bool
}

func (r *sftpReader) uint32() uint32 {
	if len(r.b) < 4 {
		r.short = true
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *sftpReader) string() string {
	n := r.uint32()
	if r.short || uint64(n) > uint64(len(r.b)) {
		r.short = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
