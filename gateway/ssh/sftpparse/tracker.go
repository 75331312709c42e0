// Package sftpparse follows an SFTP (version 3, as OpenSSH speaks it)
// conversation from both directions of a channel and reports the file
// operations it carries: files opened and the bytes read or written through
// them, removals, renames, directories made and removed, attribute changes,
// links and directory listings.
//
// It is a side parser: it sees a copy of the bytes and never changes them.
// Whatever the input, it returns errors instead of panicking, bounds the
// state it keeps, and stops at the first sign the stream is not SFTP.
package sftpparse

import (
	"errors"
	"fmt"
)

// Packet types (draft-ietf-secsh-filexfer-02).
const (
	fxpInit          = 1
	fxpVersion       = 2
	fxpOpen          = 3
	fxpClose         = 4
	fxpRead          = 5
	fxpWrite         = 6
	fxpFsetstat      = 10
	fxpSetstat       = 9
	fxpOpendir       = 11
	fxpRemove        = 13
	fxpMkdir         = 14
	fxpRmdir         = 15
	fxpRename        = 18
	fxpSymlink       = 20
	fxpStatus        = 101
	fxpHandle        = 102
	fxpData          = 103
	fxpExtended      = 200
	fxpExtendedReply = 201
)

// Status codes.
const (
	fxOK  = 0
	fxEOF = 1
)

// Open flags.
const (
	fxfWrite  = 0x02
	fxfAppend = 0x04
	fxfCreat  = 0x08
	fxfTrunc  = 0x10
)

// Operations (values of Op.Operation).
const (
	OpRead     = "read"  // a file opened and read: Bytes read
	OpWrite    = "write" // a file opened for writing: Bytes written
	OpOpen     = "open"  // a file opened, neither read nor written, or refused
	OpList     = "list"  // a directory listed
	OpRemove   = "remove"
	OpRename   = "rename"
	OpMkdir    = "mkdir"
	OpRmdir    = "rmdir"
	OpSetstat  = "setstat"
	OpSymlink  = "symlink"
	OpHardlink = "hardlink"
)

// Op is one file operation, reported when the server has answered it.
type Op struct {
	Operation string
	Path      string
	Target    string // rename, symlink and hardlink: the other path
	Bytes     int64
	Error     string // the server's status message when it failed
}

// Limits on the state a Tracker keeps: outstanding requests and open
// handles. A client can pipeline many requests; these are generous for
// real clients (OpenSSH keeps 64 requests in flight).
const (
	maxPending = 4096
	maxHandles = 1024
)

// ErrUnsupportedVersion stops tracking a conversation in another version
// of the protocol, whose packets this parser would misread.
var ErrUnsupportedVersion = errors.New("sftp: unsupported protocol version")

type request struct {
	op     string // an Op* value, or "" for requests only used for pairing
	path   string
	target string
	handle string
	bytes  int64 // WRITE: the data length
	read   bool  // READ
	write  bool  // WRITE
	close  bool  // CLOSE
	open   bool  // OPEN / OPENDIR: the response is a handle
	dir    bool
	flags  uint32
}

type openFile struct {
	path    string
	dir     bool
	flags   uint32
	read    int64
	written int64
	err     string
}

// Tracker pairs one channel's SFTP requests with their responses. It is
// not safe for concurrent use.
type Tracker struct {
	requests, responses framer
	pending             map[uint32]request
	handles             map[string]*openFile
	ops                 []Op
	err                 error
	// Dropped counts requests and handles not tracked because a limit was
	// reached; their operations go unreported.
	Dropped int
}

// New returns a Tracker for one SFTP channel.
func New() *Tracker {
	return &Tracker{pending: map[uint32]request{}, handles: map[string]*openFile{}}
}

// Err reports why tracking stopped, if it did.
func (t *Tracker) Err() error { return t.err }

// ClientData takes bytes the client sent and returns completed operations.
func (t *Tracker) ClientData(p []byte) []Op { return t.feed(&t.requests, p, t.request) }

// ServerData takes bytes the server sent and returns completed operations.
func (t *Tracker) ServerData(p []byte) []Op { return t.feed(&t.responses, p, t.response) }

func (t *Tracker) feed(f *framer, p []byte, handle func(packet)) []Op {
	if t.err != nil {
		return nil
	}
	if err := f.feed(p, handle); err != nil && t.err == nil {
		t.err = err
	}
	ops := t.ops
	t.ops = nil
	return ops
}

// Close reports the files still open when the channel ended, with the bytes
// moved so far.
func (t *Tracker) Close() []Op {
	for h, f := range t.handles {
		if !f.dir {
			t.emitFile(f, "the channel closed before the file was")
		}
		delete(t.handles, h)
	}
	ops := t.ops
	t.ops = nil
	return ops
}

func (t *Tracker) request(p packet) {
	if t.err != nil {
		return
	}
	r := reader{b: p.body}
	if p.typ == fxpInit {
		return
	}
	id := r.uint32()
	var req request
	switch p.typ {
	case fxpOpen:
		req = request{open: true, path: r.string(), flags: r.uint32()}
	case fxpOpendir:
		req = request{open: true, dir: true, path: r.string()}
	case fxpClose:
		req = request{close: true, handle: r.string()}
	case fxpRead:
		req = request{read: true, handle: r.string()}
	case fxpWrite:
		req = request{write: true, handle: r.string()}
		r.uint64() // offset
		n := r.stringLen()
		// The data may lie beyond the kept prefix; the packet length
		// bounds the declared size.
		if int64(n) > int64(p.length) {
			r.short = true
		}
		req.bytes = int64(n)
	case fxpRemove:
		req = request{op: OpRemove, path: r.string()}
	case fxpMkdir:
		req = request{op: OpMkdir, path: r.string()}
	case fxpRmdir:
		req = request{op: OpRmdir, path: r.string()}
	case fxpSetstat:
		req = request{op: OpSetstat, path: r.string()}
	case fxpFsetstat:
		req = request{op: OpSetstat, handle: r.string()}
	case fxpRename:
		req = request{op: OpRename, path: r.string(), target: r.string()}
	case fxpSymlink:
		// OpenSSH sends the link's target first and the link second,
		// the reverse of the draft; OpenSSH is what is on the other end.
		target := r.string()
		req = request{op: OpSymlink, path: r.string(), target: target}
	case fxpExtended:
		req = t.extended(&r)
	default:
		return // stat, realpath, readdir, ...: nothing to report
	}
	if r.short {
		return // a field lies beyond the kept prefix: not reportable
	}
	if len(t.pending) >= maxPending {
		t.Dropped++
		return
	}
	t.pending[id] = req
}

// extended decodes the OpenSSH extensions that change files.
func (t *Tracker) extended(r *reader) request {
	switch name := r.string(); name {
	case "posix-rename@openssh.com":
		return request{op: OpRename, path: r.string(), target: r.string()}
	case "hardlink@openssh.com":
		target := r.string()
		return request{op: OpHardlink, path: r.string(), target: target}
	case "lsetstat@openssh.com":
		return request{op: OpSetstat, path: r.string()}
	}
	return request{}
}

func (t *Tracker) response(p packet) {
	if t.err != nil {
		return
	}
	r := reader{b: p.body}
	if p.typ == fxpVersion {
		if v := r.uint32(); !r.short && v != 3 {
			t.err = fmt.Errorf("%w %d", ErrUnsupportedVersion, v)
		}
		return
	}
	id := r.uint32()
	if r.short {
		return
	}
	req, ok := t.pending[id]
	if !ok {
		return
	}
	delete(t.pending, id)
	switch p.typ {
	case fxpStatus:
		code := r.uint32()
		msg := r.string()
		t.status(req, code, msg)
	case fxpHandle:
		h := r.string()
		if r.short || !req.open {
			return
		}
		if len(t.handles) >= maxHandles {
			t.Dropped++
			return
		}
		t.handles[h] = &openFile{path: req.path, dir: req.dir, flags: req.flags}
	case fxpData:
		n := r.stringLen()
		if f := t.handles[req.handle]; f != nil && req.read && !r.short && int64(n) <= int64(p.length) {
			f.read += int64(n)
		}
	case fxpExtendedReply:
		// Replies to extensions that change nothing.
	}
}

// status completes a request the server answered with a status.
func (t *Tracker) status(req request, code uint32, msg string) {
	failed := code != fxOK
	errText := ""
	if failed {
		errText = statusText(code, msg)
	}
	switch {
	case req.open:
		if failed {
			op := OpOpen
			if req.dir {
				op = OpList
			}
			t.ops = append(t.ops, Op{Operation: op, Path: req.path, Error: errText})
		}
	case req.close:
		f := t.handles[req.handle]
		if f == nil {
			return
		}
		delete(t.handles, req.handle)
		if f.dir {
			t.ops = append(t.ops, Op{Operation: OpList, Path: f.path, Error: f.err})
			return
		}
		t.emitFile(f, "")
	case req.read:
		if f := t.handles[req.handle]; f != nil && code != fxEOF && failed {
			f.err = errText
		}
	case req.write:
		if f := t.handles[req.handle]; f != nil {
			if failed {
				f.err = errText
			} else {
				f.written += req.bytes
			}
		}
	case req.op != "":
		path := req.path
		if req.handle != "" { // FSETSTAT names a handle
			if f := t.handles[req.handle]; f != nil {
				path = f.path
			}
		}
		t.ops = append(t.ops, Op{Operation: req.op, Path: path, Target: req.target, Error: errText})
	}
}

// emitFile reports a file's open-to-close: written if it was opened for
// writing or written to, read otherwise.
func (t *Tracker) emitFile(f *openFile, unclosed string) {
	op := Op{Path: f.path, Error: f.err}
	switch {
	case f.written > 0 || f.flags&(fxfWrite|fxfAppend|fxfCreat|fxfTrunc) != 0:
		op.Operation, op.Bytes = OpWrite, f.written
	case f.read > 0:
		op.Operation, op.Bytes = OpRead, f.read
	default:
		op.Operation = OpOpen
	}
	if unclosed != "" && op.Error == "" {
		op.Error = unclosed + " closed"
	}
	t.ops = append(t.ops, op)
}

var statusNames = map[uint32]string{
	1: "end of file", 2: "no such file", 3: "permission denied", 4: "failure",
	5: "bad message", 6: "no connection", 7: "connection lost", 8: "operation unsupported",
}

func statusText(code uint32, msg string) string {
	name := statusNames[code]
	if name == "" {
		name = fmt.Sprintf("status %d", code)
	}
	if msg == "" || msg == name {
		return name
	}
	return name + ": " + msg
}
