package rsyncparse

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Op is one regular file the sender finished sending.
type Op struct {
	Operation string // OpUpload or OpDownload
	Path      string // on the server: the destination of an upload, the source of a download
	File      File
	// Literal is the file's bytes sent as data; Matched the bytes the
	// receiver copied from its own older version (rsync's delta). A new
	// file is all literal. With compression, Literal is the file's size
	// less Matched: the data travels compressed.
	Literal int64
	Matched int64
}

// Compatibility flags the server sends (compat.c CF_*).
const (
	cfIncRecurse        = 1 << 0
	cfVarintFlistFlags  = 1 << 7
	cfID0Names          = 1 << 8
	minProtocol         = 30
	maxProtocol         = 32
	maxNegotiationBytes = 1 << 10
	maxSecludedArgs     = 256
)

// settings are what the handshake decided.
type settings struct {
	protocol                int32
	incRecurse, varintFlags bool
	id0Names                bool
	compressed              bool
	xferSumLen, flistSumLen int
}

// handshake is one side's unmultiplexed opening: its protocol version,
// for the server the compatibility flags, the negotiation strings of both,
// and the server's checksum seed.
type handshakeStep uint8

const (
	hArgs handshakeStep = iota // -s: the client's arguments, NUL-terminated, then an empty one
	hVersion
	hCompat
	hChecksums
	hCompressions
	hSeed
	hDone
)

// side is one direction of the channel.
type side struct {
	server    bool
	step      handshakeStep
	version   int32
	checksums []string // its negotiation strings
	compress  []string
	raw       []byte // a handshake item cut by a read boundary
	demux     demux
	data      assembler // the sender's demultiplexed data
	sender    *senderStream
}

// Tracker follows one rsync exec channel. It is not safe for concurrent
// use; the caller serialises the two directions (the order of calls must
// follow the order in which the relay saw the bytes).
type Tracker struct {
	cmd      Command
	op       string
	client   side
	server   side
	compat   int64
	settings settings
	ops      []Op
	err      error
	// secludedArgs collects the arguments read in hArgs.
	secludedArgs []string
}

// New returns a Tracker for the parsed command.
func New(cmd Command) *Tracker {
	t := &Tracker{cmd: cmd, op: OpUpload, compat: -1}
	t.client.step, t.server.step = hVersion, hVersion
	if cmd.opts.secluded {
		t.client.step = hArgs
	}
	t.server.server = true
	if cmd.Sender {
		t.op = OpDownload
	}
	if u := cmd.opts.unsupported; u != "" {
		t.err = fmt.Errorf("rsync: option %s is not decoded", u)
	}
	return t
}

// Err reports why tracking stopped, if it did.
func (t *Tracker) Err() error { return t.err }

// ClientData takes bytes from the client (the rsync that ran ssh).
func (t *Tracker) ClientData(p []byte) []Op { return t.feed(&t.client, p) }

// ServerData takes bytes from the server ("rsync --server").
func (t *Tracker) ServerData(p []byte) []Op { return t.feed(&t.server, p) }

// InProgress reports a file whose data was still being sent, for a channel
// that ended mid-transfer; ok is false if there is none.
func (t *Tracker) InProgress() (Op, bool) {
	s := t.sending().sender
	if s == nil || s.xfer == nil {
		return Op{}, false
	}
	x := s.xfer
	literal := x.literal
	if !s.compressed {
		literal -= int64(s.skip) // announced, not yet seen
	}
	return Op{Operation: t.op, Path: t.path(x.file), File: x.file, Literal: literal, Matched: x.matched}, true
}

func (t *Tracker) other(s *side) *side {
	if s == &t.client {
		return &t.server
	}
	return &t.client
}

// sending is the side whose data carries the files.
func (t *Tracker) sending() *side {
	if t.cmd.Sender {
		return &t.server
	}
	return &t.client
}

func (t *Tracker) feed(s *side, p []byte) []Op {
	if t.err != nil || len(p) == 0 {
		return nil
	}
	t.ops = t.ops[:0]
	err := t.feedSide(s, p)
	if err != nil {
		t.err = err
	}
	if len(t.ops) == 0 {
		return nil
	}
	return append([]Op(nil), t.ops...)
}

func (t *Tracker) feedSide(s *side, p []byte) error {
	if s.step == hDone {
		return t.multiplexed(s, p)
	}
	in := p
	if len(s.raw) > 0 {
		in = append(s.raw, p...)
	}
	n, err := t.handshake(s, in)
	if err != nil {
		return err
	}
	rest := in[n:]
	if s.step < hDone {
		if len(rest) > maxPending {
			return errors.New("rsync: handshake item too long")
		}
		s.raw = append([]byte(nil), rest...)
		return nil
	}
	// The bytes after the handshake are multiplexed.
	s.raw = nil
	return t.multiplexed(s, rest)
}

func (t *Tracker) multiplexed(s *side, p []byte) error {
	if s != t.sending() || len(p) == 0 {
		return nil // the receiving side's requests carry no file names
	}
	if s.sender == nil {
		if err := t.settle(); err != nil {
			return err
		}
		s.sender = &senderStream{t: t}
		s.sender.begin(t.settings)
	}
	return s.demux.feed(p, func(b []byte) error {
		return s.data.feed(b, s.sender.items)
	})
}

// handshake decodes the unmultiplexed opening items of one side.
func (t *Tracker) handshake(s *side, b []byte) (int, error) {
	off := 0
	for s.step < hDone && off < len(b) {
		r := reader{b: b[off:]}
		err := t.handshakeItem(s, &r)
		if errors.Is(err, errShort) {
			break
		}
		if err != nil {
			return off, err
		}
		off += r.off
	}
	return off, nil
}

func (t *Tracker) handshakeItem(s *side, r *reader) error {
	o := &t.cmd.opts
	switch s.step {
	case hArgs:
		return t.secludedArg(r)
	case hVersion:
		s.version = r.int32()
		if r.short {
			return errShort
		}
		s.step = hCompat
		if !s.server {
			s.step = hChecksums
		}
	case hCompat:
		if s.version < minProtocol {
			return fmt.Errorf("rsync: server protocol %d is not decoded", s.version)
		}
		v, err := r.varint()
		if err != nil {
			return err
		}
		t.compat = int64(v)
		s.step = hChecksums
	case hChecksums, hCompressions:
		// The server sets CF_VARINT_FLIST_FLAGS, and both sides send
		// their lists, when the client announces "v" (settle checks the
		// flags agree); the tracker need not wait for the server's flags.
		want := o.negotiate &&
			(s.step == hChecksums && o.checksumChoice == "" ||
				s.step == hCompressions && o.compress && o.compressChoice == "")
		if want {
			list := r.vstring()
			if r.short {
				return errShort
			}
			if len(list) > maxNegotiationBytes {
				return fmt.Errorf("rsync: negotiation string of %d bytes", len(list))
			}
			if s.step == hChecksums {
				s.checksums = strings.Fields(string(list))
			} else {
				s.compress = strings.Fields(string(list))
			}
		}
		s.step++
		if s.step == hSeed && !s.server {
			s.step = hDone
		}
	case hSeed:
		r.int32()
		if r.short {
			return errShort
		}
		s.step = hDone
	}
	return nil
}

// secludedArg reads one argument sent with -s (send_protected_args): the
// first is the program name, then the options and paths a command line
// would hold; an empty one ends them.
func (t *Tracker) secludedArg(r *reader) error {
	rest := r.b[r.off:]
	end := bytes.IndexByte(rest, 0)
	if end < 0 {
		if len(rest) > maxName {
			return fmt.Errorf("rsync: secluded argument longer than %d bytes", maxName)
		}
		return errShort
	}
	r.take(end + 1)
	if end > 0 {
		if len(t.secludedArgs) == maxSecludedArgs {
			return fmt.Errorf("rsync: more than %d secluded arguments", maxSecludedArgs)
		}
		t.secludedArgs = append(t.secludedArgs, string(rest[:end]))
		return nil
	}
	t.client.step = hVersion
	if len(t.secludedArgs) > 0 { // the first is the program name
		t.cmd.apply(t.secludedArgs[1:])
	}
	t.secludedArgs = nil
	if t.cmd.Sender {
		t.op = OpDownload
	}
	if u := t.cmd.opts.unsupported; u != "" {
		return fmt.Errorf("rsync: option %s is not decoded", u)
	}
	return nil
}

// Command returns the server command, with the arguments the client sent
// on the channel (-s) once they have been read.
func (t *Tracker) Command() Command { return t.cmd }

// settle works out the settings the sender's stream depends on, at its
// first multiplexed bytes: the sender writes them only after it has read
// the other side's negotiation strings, so the tracker has seen them too.
func (t *Tracker) settle() error {
	if t.other(t.sending()).step < hSeed {
		return errors.New("rsync: sender's data before the receiver's negotiation")
	}
	o := &t.cmd.opts
	st := &t.settings
	st.protocol = min(t.client.version, t.server.version)
	if st.protocol < minProtocol || st.protocol > maxProtocol {
		return fmt.Errorf("rsync: protocol %d (client %d, server %d) is not decoded", st.protocol, t.client.version, t.server.version)
	}
	if (t.compat&cfVarintFlistFlags != 0) != o.negotiate {
		return fmt.Errorf("rsync: compatibility flags %#x disagree with the client's capabilities", t.compat)
	}
	st.incRecurse = t.compat&cfIncRecurse != 0
	st.varintFlags = t.compat&cfVarintFlistFlags != 0
	st.id0Names = t.compat&cfID0Names != 0
	// Without negotiation, protocol 30+ uses MD5.
	xfer, flist := "md5", "md5"
	switch {
	case o.checksumChoice != "":
		xfer, flist, _ = strings.Cut(o.checksumChoice, ",")
		if flist == "" {
			flist = xfer
		}
	case o.negotiate:
		xfer = negotiated(t.client.checksums, t.server.checksums)
		flist = xfer
	}
	var ok bool
	if st.xferSumLen, ok = checksumLen[xfer]; !ok {
		return fmt.Errorf("rsync: checksum %q is not known", xfer)
	}
	if st.flistSumLen, ok = checksumLen[flist]; !ok {
		return fmt.Errorf("rsync: checksum %q is not known", flist)
	}
	compressor := "none"
	switch {
	case !o.compress:
	case o.compressChoice != "":
		compressor = o.compressChoice
	case o.negotiate:
		compressor = negotiated(t.client.compress, t.server.compress)
	default:
		compressor = "zlib"
	}
	st.compressed = compressor != "none"
	return nil
}

// checksumLen is csum_len_for_type() for the names rsync negotiates.
var checksumLen = map[string]int{
	"xxh128": 16, "xxh3": 8, "xxh64": 8, "xxhash": 8,
	"md5": 16, "md4": 16, "sha1": 20, "none": 1,
}

// negotiated is the first of the client's choices the server also offers.
func negotiated(client, server []string) string {
	for _, c := range client {
		for _, s := range server {
			if c == s {
				return c
			}
		}
	}
	return ""
}

func (t *Tracker) report(op Op) {
	op.Operation = t.op
	op.Path = t.path(op.File)
	t.ops = append(t.ops, op)
}

// path names a transferred file on the server. An upload lands in the
// destination directory, unless it is the transfer's only file and the
// destination does not end in "/": rsync then writes that name (when it is
// not an existing directory, which the tracker cannot know). A download's
// name is relative to the directory of the source it came from.
func (t *Tracker) path(f File) string {
	if !t.cmd.Sender {
		dest := "."
		if len(t.cmd.Paths) > 0 {
			dest = t.cmd.Paths[0]
		}
		if t.singleFile() && !strings.HasSuffix(dest, "/") {
			return dest
		}
		return path.Join(dest, f.Name)
	}
	return path.Join(t.sourceRoot(f.Name), f.Name)
}

func (t *Tracker) singleFile() bool {
	s := t.client.sender
	return s != nil && s.firstList != nil && len(s.firstList.files) == 1 && s.firstList.files[0].Regular()
}

// sourceRoot is the directory a sent name is relative to: the source
// itself when it ends in "/" (its content is sent), else its parent; with
// --relative, the part before "/./" or the root. With several sources, the
// one whose last element starts the name.
func (t *Tracker) sourceRoot(name string) string {
	if len(t.cmd.Paths) == 0 {
		return "."
	}
	first, _, _ := strings.Cut(name, "/")
	for _, src := range t.cmd.Paths {
		if !strings.HasSuffix(src, "/") && path.Base(src) == first {
			return sourceRoot(src, t.cmd.opts.relative)
		}
	}
	return sourceRoot(t.cmd.Paths[0], t.cmd.opts.relative)
}

func sourceRoot(src string, relative bool) string {
	if relative {
		if before, _, ok := strings.Cut(src, "/./"); ok {
			return before
		}
		if strings.HasPrefix(src, "/") {
			return "/"
		}
		return "."
	}
	if strings.HasSuffix(src, "/") || src == "." {
		return src
	}
	return path.Dir(src)
}
