package rsyncparse

import (
	"errors"
	"fmt"
	"slices"
)

// Item flags sent with each index (rsync.h ITEM_*).
const (
	itemBasisTypeFollows = 1 << 11
	itemXnameFollows     = 1 << 12
	itemTransfer         = 1 << 15
)

// Compressed token stream flags (token.c).
const (
	tokenEnd          = 0x00
	tokenLong         = 0x20
	tokenRunLong      = 0x21
	tokenDeflatedData = 0x40
	tokenRel          = 0x80
	tokenRunRel       = 0xc0
)

// maxBlockSize is rsync's MAX_BLOCK_SIZE for protocol 30 and later.
const maxBlockSize = 1 << 17

// maxPhase: after the transfer, the redo phase and the final phase, the
// sender's stream carries nothing this parser needs.
const maxPhase = 2

type senderState uint8

const (
	sFilters senderState = iota // a sending client's filter rules
	sFlist                      // entries of a file list
	sIDs                        // user then group names after the first list
	sItems                      // indexes: files, phase ends, new lists
	sTokens                     // a transferred file's data and block references
	sFileSum                    // the whole-file checksum after the tokens
	sDone
)

// sumHead is what the receiver's generator told the sender about its basis
// file (write_sum_head): count blocks of blength bytes, the last one
// remainder bytes long when remainder is not zero.
type sumHead struct {
	count, blength, remainder int64
}

// blocks returns the bytes of n basis blocks from block first.
func (h sumHead) blocks(first, n int64) (int64, error) {
	if first < 0 || n <= 0 || first+n > h.count {
		return 0, fmt.Errorf("rsync: reference to blocks %d+%d of %d", first, n, h.count)
	}
	// Bounded by the header checks: at most 2^31 blocks of maxBlockSize.
	bytes := n * h.blength
	if h.remainder != 0 && first+n == h.count {
		bytes -= h.blength - h.remainder
	}
	return bytes, nil
}

// transfer is the file whose data is being sent.
type transfer struct {
	file       File
	head       sumHead
	literal    int64 // uncompressed data bytes
	matched    int64 // bytes taken from the receiver's basis file
	lastRunEnd int64 // compressed streams: the last block referenced
}

// senderStream decodes the sending side's data: file lists, then the delta
// stream, reporting each file it finishes.
type senderStream struct {
	t       *Tracker
	state   senderState
	skip    int // bytes to pass over: a filter rule, literal or compressed data
	entries entryDecoder
	ndx     ndxDecoder

	lists      []*flist // received and not yet finished, oldest first
	cur        *flist   // the list being received
	nextStart  int32
	firstList  *flist
	liveFiles  int
	liveBytes  int
	idLists    int // id lists still to read after the first file list
	phase      int
	compressed bool
	sumLen     int // the whole-file checksum's length
	xfer       *transfer
}

func (s *senderStream) begin(st settings) {
	o := &s.t.cmd.opts
	s.entries = entryDecoder{varintFlags: st.varintFlags, incRecurse: st.incRecurse, protocol: st.protocol, opts: o}
	if o.checksum {
		s.entries.sumLen = st.flistSumLen
	}
	s.sumLen = st.xferSumLen
	s.compressed = st.compressed
	s.ndx = newNDXDecoder()
	if st.incRecurse {
		s.nextStart = 1
	}
	if !st.incRecurse && !o.numericIDs {
		if o.uid {
			s.idLists++
		}
		if o.gid {
			s.idLists++
		}
	}
	s.state = sFlist
	if !s.t.cmd.Sender && o.receiverWantsFilters() {
		s.state = sFilters
	}
	s.newList()
}

// items is the assembler's itemFunc for the demultiplexed data.
func (s *senderStream) items(b []byte) (int, error) {
	off := 0
	for {
		if s.skip > 0 {
			n := min(s.skip, len(b)-off)
			s.skip -= n
			off += n
			if s.skip > 0 {
				return off, nil
			}
		}
		if s.state == sDone {
			return len(b), nil
		}
		if off == len(b) {
			return off, nil
		}
		r := reader{b: b[off:]}
		err := s.item(&r)
		if errors.Is(err, errShort) {
			return off, nil
		}
		if err != nil {
			return off, err
		}
		off += r.off
	}
}

// item decodes one item; on errShort nothing of the stream's state has
// changed, so the item can be decoded again with more bytes.
func (s *senderStream) item(r *reader) error {
	switch s.state {
	case sFilters:
		n := r.int32()
		switch {
		case r.short:
			return errShort
		case n == 0:
			s.state = sFlist
		case n < 0 || n > maxPending:
			return fmt.Errorf("rsync: filter rule of %d bytes", n)
		default:
			s.skip = int(n)
		}
		return nil
	case sFlist:
		return s.entry(r)
	case sIDs:
		return s.idEntry(r)
	case sItems:
		return s.index(r)
	case sTokens:
		if s.compressed {
			return s.compressedToken(r)
		}
		return s.token(r)
	case sFileSum:
		if r.take(s.sumLen) == nil {
			return errShort
		}
		s.finishTransfer()
		return nil
	}
	return nil
}

func (s *senderStream) newList() {
	s.cur = &flist{start: s.nextStart}
}

func (s *senderStream) entry(r *reader) error {
	res, err := s.entries.decode(r, s.cur)
	if err != nil {
		return err
	}
	if res.end {
		return s.endList()
	}
	if s.liveFiles >= maxLiveFiles || s.liveBytes+len(res.file.Name) > maxNameBytes {
		return errTooManyFiles
	}
	s.entries.last = res.state
	s.cur.files = append(s.cur.files, res.file)
	s.liveFiles++
	s.liveBytes += len(res.file.Name)
	return nil
}

func (s *senderStream) endList() error {
	l := s.cur
	sortFiles(l.files)
	s.lists = append(s.lists, l)
	s.nextStart = l.start + int32(len(l.files)) + 1
	s.cur = nil
	s.state = sItems
	if s.firstList == nil {
		s.firstList = l
		if s.idLists > 0 {
			s.state = sIDs
		}
	}
	return nil
}

// idEntry reads the user and group lists that follow the first file list
// without incremental recursion: (id, name) pairs ended by id 0, then the
// name of id 0 when the peers agreed to send it.
func (s *senderStream) idEntry(r *reader) error {
	id, err := r.varint()
	if err != nil {
		return err
	}
	if id != 0 || s.t.settings.id0Names {
		r.take(int(r.byte()))
		if r.short {
			return errShort
		}
	}
	if id == 0 {
		s.idLists--
		if s.idLists == 0 {
			s.state = sItems
		}
	}
	return nil
}

func (s *senderStream) index(r *reader) error {
	saved := s.ndx
	ndx := s.ndx.read(r)
	var iflags uint16
	var head sumHead
	if ndx >= 0 {
		iflags = r.uint16()
		if iflags&itemBasisTypeFollows != 0 {
			r.byte()
		}
		if iflags&itemXnameFollows != 0 {
			r.vstring()
		}
		if iflags&itemTransfer != 0 && !s.t.cmd.opts.dryRun {
			head.count = int64(r.int32())
			head.blength = int64(r.int32())
			r.int32() // the length of the block checksums, which the sender does not send
			head.remainder = int64(r.int32())
		}
	}
	if r.short {
		s.ndx = saved
		return errShort
	}
	switch {
	case ndx == ndxDone:
		s.done()
	case ndx == ndxFlistEOF:
	case ndx <= ndxFlistOffer:
		s.newList()
		s.state = sFlist
	case ndx < 0:
		return fmt.Errorf("rsync: index %d", ndx)
	case iflags&itemTransfer != 0 && !s.t.cmd.opts.dryRun:
		return s.startTransfer(ndx, head)
	}
	return nil
}

// done handles NDX_DONE. With incremental recursion the sender writes one
// as it frees each finished file list (oldest first) and one more for each
// phase once none is left; without, one per phase.
func (s *senderStream) done() {
	if s.entries.incRecurse && len(s.lists) > 0 {
		for _, f := range s.lists[0].files {
			s.liveBytes -= len(f.Name)
		}
		s.liveFiles -= len(s.lists[0].files)
		s.lists[0] = nil
		s.lists = s.lists[1:]
		if len(s.lists) > 0 {
			return
		}
	}
	s.phase++
	if s.phase > maxPhase {
		s.state = sDone
	}
}

func (s *senderStream) lookup(ndx int32) (File, bool) {
	i, found := slices.BinarySearchFunc(s.lists, ndx, func(l *flist, n int32) int {
		switch {
		case n < l.start:
			return 1
		case n >= l.start+int32(len(l.files)):
			return -1
		}
		return 0
	})
	if !found {
		return File{}, false
	}
	l := s.lists[i]
	return l.files[ndx-l.start], true
}

func (s *senderStream) startTransfer(ndx int32, head sumHead) error {
	f, ok := s.lookup(ndx)
	if !ok {
		return fmt.Errorf("rsync: transfer of index %d, in no file list", ndx)
	}
	if !f.Regular() {
		return fmt.Errorf("rsync: transfer of index %d (%s), not a regular file", ndx, f.Name)
	}
	if head.count < 0 || head.blength < 0 || head.blength > maxBlockSize ||
		head.remainder < 0 || head.remainder > head.blength {
		return fmt.Errorf("rsync: block header %+v", head)
	}
	s.xfer = &transfer{file: f, head: head}
	s.state = sTokens
	return nil
}

// token decodes simple_send_token(): a positive length and that much
// literal data, a negative block reference, or 0 at the file's end.
func (s *senderStream) token(r *reader) error {
	t := int64(r.int32())
	if r.short {
		return errShort
	}
	x := s.xfer
	switch {
	case t > 0:
		x.literal += t
		s.skip = int(t)
	case t == 0:
		s.state = sFileSum
	default:
		n, err := x.head.blocks(-(t + 1), 1)
		if err != nil {
			return err
		}
		x.matched += n
	}
	return nil
}

// compressedToken decodes send_deflated_token()'s framing (the same for
// zlib, zstd and lz4): compressed data chunks and runs of block
// references. The literal size is what the references leave of the file.
func (s *senderStream) compressedToken(r *reader) error {
	flag := r.byte()
	x := s.xfer
	var first, run int64
	switch {
	case r.short:
		return errShort
	case flag == tokenEnd:
		x.literal = max(x.file.Size-x.matched, 0)
		s.state = sFileSum
		return nil
	case flag&0xc0 == tokenDeflatedData:
		n := int(flag&0x3f)<<8 | int(r.byte())
		if r.short {
			return errShort
		}
		s.skip = n
		return nil
	case flag&tokenRel != 0:
		first = x.lastRunEnd + int64(flag&0x3f)
		if flag&0xc0 == tokenRunRel {
			run = int64(r.uint16())
		}
	case flag == tokenLong || flag == tokenRunLong:
		first = int64(r.int32())
		if flag == tokenRunLong {
			run = int64(r.uint16())
		}
	default:
		return fmt.Errorf("rsync: compressed token flag %#x", flag)
	}
	if r.short {
		return errShort
	}
	n, err := x.head.blocks(first, run+1)
	if err != nil {
		return err
	}
	x.matched += n
	x.lastRunEnd = first + run
	return nil
}

func (s *senderStream) finishTransfer() {
	x := s.xfer
	s.xfer = nil
	s.state = sItems
	s.t.report(Op{File: x.file, Literal: x.literal, Matched: x.matched})
}
