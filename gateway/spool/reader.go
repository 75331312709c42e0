package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Cursor is the opaque position after a batch; pass it to Ack once the
// batch is delivered.
type Cursor struct {
	ack ackRecord
	gen uint64 // repair generation the cursor was computed in
}

// Batch is a run of consecutive records starting at the acknowledged
// position.
type Batch struct {
	// Records are the decrypted payloads, oldest first. The caller owns them.
	Records [][]byte
	// Seqs are the records' spool sequence numbers (diagnostics and tests).
	Seqs []uint64
	// Cursor acknowledges the whole batch.
	Cursor Cursor
}

// Len is the number of records.
func (b Batch) Len() int { return len(b.Records) }

// errStaleCursor is returned by Ack for a cursor computed before a repair
// rewrote a segment: its offset may no longer be a frame boundary.
var errStaleCursor = errors.New("spool: cursor predates a segment repair; read the batch again")

// damage reports a segment that could not be read cleanly.
type damage struct {
	seg *segment
	err error
}

// maxRepairsPerRead bounds repairs in one ReadBatch, so that an unexpected
// repair failure surfaces as an error instead of a loop.
const maxRepairsPerRead = 4

// ReadBatch returns up to maxRecords records, and up to maxBytes of payload
// (but at least one record when any is pending), starting at the
// acknowledged position. Without an Ack, the next call returns the same
// records. Damaged segments met on the way are repaired (see Open), with lost
// records counted in Stats().RecoveredLost.
func (s *Spool) ReadBatch(maxRecords, maxBytes int) (Batch, error) {
	return s.read(nil, maxRecords, maxBytes)
}

// ReadBatchAfter is ReadBatch starting where the batch whose cursor is prev
// ended, instead of at the acknowledged position: a reader can have several
// batches in flight and acknowledge them in order. A cursor behind the
// acknowledged position reads from that position. A cursor computed before a
// repair rewrote a segment gets an error: read again from the acknowledged
// position.
func (s *Spool) ReadBatchAfter(prev Cursor, maxRecords, maxBytes int) (Batch, error) {
	return s.read(&prev, maxRecords, maxBytes)
}

func (s *Spool) read(prev *Cursor, maxRecords, maxBytes int) (Batch, error) {
	if maxRecords <= 0 {
		return Batch{}, fmt.Errorf("spool: ReadBatch maxRecords %d must be positive", maxRecords)
	}
	if maxBytes <= 0 {
		return Batch{}, fmt.Errorf("spool: ReadBatch maxBytes %d must be positive", maxBytes)
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for range maxRepairsPerRead {
		b, dmg, err := s.readOnce(prev, maxRecords, maxBytes)
		if err != nil || dmg == nil {
			return b, err
		}
		if err := s.repair(dmg); err != nil {
			return Batch{}, err
		}
	}
	return Batch{}, fmt.Errorf("spool: segments keep failing verification after %d repairs; see the log", maxRepairsPerRead)
}

// segView is a snapshot of a segment for the reader.
type segView struct {
	seg  *segment
	hdr  segmentHeader
	end  int64 // readable bytes
	live bool
}

func (s *Spool) snapshot(fromSeg uint64) ([]segView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	// Make every accepted record visible to the reader. A failed write keeps
	// its frames buffered; the reader then sees only what was written.
	_ = s.writeBufLocked()
	views := make([]segView, 0, len(s.segs))
	for _, seg := range s.segs {
		if seg.id < fromSeg {
			continue
		}
		v := segView{seg: seg, hdr: seg.hdr, end: seg.size}
		if s.live != nil && s.live.seg == seg {
			v.end, v.live = s.live.written, true
		}
		views = append(views, v)
	}
	return views, nil
}

func (s *Spool) readOnce(prev *Cursor, maxRecords, maxBytes int) (Batch, *damage, error) {
	s.ackMu.Lock()
	cur, gen := s.ack, s.gen
	s.ackMu.Unlock()
	if prev != nil {
		if prev.gen != gen {
			return Batch{}, nil, errStaleCursor
		}
		if prev.ack.segment > cur.segment || (prev.ack.segment == cur.segment && prev.ack.offset > cur.offset) {
			cur = prev.ack
		}
	}
	views, err := s.snapshot(cur.segment)
	if err != nil {
		return Batch{}, nil, err
	}
	var b Batch
	size := 0
	for i, v := range views {
		if v.seg.id != cur.segment {
			cur = ackRecord{seq: cur.seq, segment: v.seg.id, offset: segmentHeaderSize}
		}
		if v.seg.hdrErr != nil {
			return Batch{}, &damage{seg: v.seg, err: v.seg.hdrErr}, nil
		}
		if cur.offset == segmentHeaderSize && v.hdr.firstSeq > cur.seq {
			s.reportGap(v, cur.seq)
			cur.seq = v.hdr.firstSeq
		}
		full, dmg, err := s.readSegment(v, &cur, &b, &size, maxRecords, maxBytes)
		if err != nil || dmg != nil {
			return Batch{}, dmg, err
		}
		if full || v.live || i == len(views)-1 {
			break
		}
	}
	b.Cursor = Cursor{ack: cur, gen: gen}
	return b, nil, nil
}

// reportGap counts records missing between the end of the previous segment
// and the first record of v: the previous segment lost its tail (cut by a
// repair, or lost without a trace), or a whole segment is gone. This is the
// one place trailing losses of non-tail segments are counted; gapsReported
// keeps re-reads of the same un-acked batch from counting twice.
func (s *Spool) reportGap(v segView, curSeq uint64) {
	if s.gapsReported[v.seg.id] {
		return
	}
	s.gapsReported[v.seg.id] = true
	lost := v.hdr.firstSeq - curSeq
	s.recoveredLost.Add(lost)
	s.log.Warn("spool: records missing before segment", "segment", v.seg.path,
		"first_seq", v.hdr.firstSeq, "expected_seq", curSeq, "lost_records", lost)
}

// readSegment appends records from v to b, advancing cur. It returns full
// when a limit was reached.
func (s *Spool) readSegment(v segView, cur *ackRecord, b *Batch, size *int, maxRecords, maxBytes int) (bool, *damage, error) {
	if cur.offset >= v.end {
		return false, nil, nil
	}
	aead, ok := s.opts.Keys.AEAD(v.hdr.keyID)
	if !ok {
		return false, nil, fmt.Errorf("spool: segment %s needs key id %s, which is not in the keyring", v.seg.path, v.hdr.keyID)
	}
	f, err := os.Open(v.seg.path)
	if err != nil {
		return false, nil, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.NewSectionReader(f, cur.offset, v.end-cur.offset), 256<<10)
	maxSealed := s.maxSealed()
	var hdr [frameHeaderSize]byte
	var sealed []byte
	for cur.offset < v.end {
		if len(b.Records) >= maxRecords || (*size >= maxBytes && len(b.Records) > 0) {
			return true, nil, nil
		}
		bad := func(why string) (bool, *damage, error) {
			return false, &damage{seg: v.seg, err: fmt.Errorf("offset %d: %s", cur.offset, why)}, nil
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return bad("frame header cut short")
		}
		fh := parseFrameHeader(hdr[:])
		if fh.length == 0 || fh.length > maxSealed || cur.offset+frameHeaderSize+int64(fh.length) > v.end {
			return bad(fmt.Sprintf("implausible frame length %d", fh.length))
		}
		if cap(sealed) < int(fh.length) {
			sealed = make([]byte, fh.length)
		}
		sealed = sealed[:fh.length]
		if _, err := io.ReadFull(r, sealed); err != nil {
			return bad("frame cut short")
		}
		if frameCRC(hdr[:], sealed) != fh.crc {
			return bad("checksum mismatch")
		}
		if fh.seq < cur.seq {
			return bad(fmt.Sprintf("sequence number %d goes backwards (want at least %d)", fh.seq, cur.seq))
		}
		plainLen := int(fh.length) - aead.Overhead()
		if *size+plainLen > maxBytes && len(b.Records) > 0 {
			return true, nil, nil
		}
		plain, err := openFrame(make([]byte, 0, plainLen), aead, &v.hdr, cur.offset, fh.seq, sealed)
		if err != nil {
			return bad("authentication failed")
		}
		b.Records = append(b.Records, plain)
		b.Seqs = append(b.Seqs, fh.seq)
		*size += plainLen
		cur.seq = fh.seq + 1
		cur.offset += frameHeaderSize + int64(fh.length)
	}
	return false, nil, nil
}

// Ack durably records that every record up to the cursor was delivered,
// then deletes the segments that are now fully acknowledged. Acking an older
// cursor than the current position is a no-op.
func (s *Spool) Ack(c Cursor) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.ackMu.Lock()
	if c.ack.seq <= s.ack.seq && c.ack.segment <= s.ack.segment {
		s.ackMu.Unlock()
		return nil
	}
	if c.gen != s.gen {
		s.ackMu.Unlock()
		return errStaleCursor
	}
	if err := writeAckFile(s.dir, c.ack); err != nil {
		s.ackMu.Unlock()
		return err
	}
	s.ack = c.ack
	s.ackMu.Unlock()
	return s.deleteAcked(c.ack.segment)
}

// deleteAcked removes sealed segments before the acknowledged one. It runs
// only after the ack is durable: a crash in between leaves segments that
// are simply deleted on the next Ack.
func (s *Spool) deleteAcked(ackSeg uint64) error {
	s.mu.Lock()
	var doomed []*segment
	for len(s.segs) > 0 && s.segs[0].id < ackSeg && (s.live == nil || s.segs[0] != s.live.seg) {
		doomed = append(doomed, s.segs[0])
		s.bytes -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	s.mu.Unlock()
	var errs []error
	for _, seg := range doomed {
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("spool: deleting acknowledged segment: %w", err))
		}
	}
	return errors.Join(errs...)
}

// oldestPendingTime reads the append time of the first frame at or after
// the acknowledged position.
func (s *Spool) oldestPendingTime(ack ackRecord) time.Time {
	views, err := s.snapshot(ack.segment)
	if err != nil {
		return time.Time{}
	}
	var hdr [frameHeaderSize]byte
	for _, v := range views {
		off := int64(segmentHeaderSize)
		if v.seg.id == ack.segment {
			off = ack.offset
		}
		if v.seg.hdrErr != nil || off+frameHeaderSize > v.end {
			continue
		}
		f, err := os.Open(v.seg.path)
		if err != nil {
			return time.Time{}
		}
		_, err = f.ReadAt(hdr[:], off)
		_ = f.Close()
		if err != nil {
			return time.Time{}
		}
		return time.Unix(0, parseFrameHeader(hdr[:]).time)
	}
	return time.Time{}
}
