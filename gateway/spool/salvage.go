package spool

import (
	"crypto/rand"
	"fmt"
	"os"
	"slices"
)

// salvageTmpExt names the replacement being written for a damaged segment;
// one left by a crash is deleted on Open (the damaged original is still in
// place and is salvaged again).
const salvageTmpExt = ".salvage-tmp"

// repair deals with a segment the reader could not read cleanly.
func (s *Spool) repair(d *damage) error {
	seg := d.seg
	s.log.Warn("spool: damaged segment found while reading; repairing", "segment", seg.path, "problem", d.err)
	s.mu.Lock()
	if s.live != nil && s.live.seg == seg {
		// Seal it first so that nothing appends to a file being rewritten.
		if err := s.rotateLocked(); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("spool: sealing damaged live segment %s: %w", seg.path, err)
		}
	}
	s.mu.Unlock()

	if seg.hdrErr != nil {
		// Nothing in it can be decrypted. Set it aside; the reader counts
		// the missing sequence numbers when it reaches the next segment.
		aside := freePath(seg.path + corruptExt)
		if err := os.Rename(seg.path, aside); err != nil {
			return fmt.Errorf("spool: quarantining %s: %w", seg.path, err)
		}
		s.log.Warn("spool: segment header unreadable; quarantined", "segment", seg.path, "moved_to", aside, "header_error", seg.hdrErr)
		s.forget(seg)
		return syncDir(s.dir)
	}
	data, err := os.ReadFile(seg.path)
	if err != nil {
		return fmt.Errorf("spool: reading damaged segment: %w", err)
	}
	if err := s.salvageSegment(seg, data, s.currentAck().seq, false); err != nil {
		return err
	}
	s.mu.Lock()
	stillListed := slices.Contains(s.segs, seg)
	s.mu.Unlock()
	if !stillListed {
		// Dropped by the overflow policy meanwhile: do not resurrect it.
		_ = os.Remove(seg.path)
	}
	return nil
}

// forget removes seg from the segment list.
func (s *Spool) forget(seg *segment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.segs, seg); i >= 0 {
		s.segs = slices.Delete(s.segs, i, i+1)
		s.bytes -= seg.size
	}
}

// salvageSegment rewrites seg (whose file content is data) with every record
// that still authenticates, re-sealed under the current key, and keeps the
// damaged file as <segment>.corrupt. Records lost in damaged regions between
// good frames are counted exactly; an unreadable tail is counted here only
// when countTail (the spool's last segment, which has no successor to bound
// it), otherwise by the reader's gap check.
func (s *Spool) salvageSegment(seg *segment, data []byte, countFrom uint64, countTail bool) error {
	oldAEAD, ok := s.opts.Keys.AEAD(seg.hdr.keyID)
	if !ok {
		return fmt.Errorf("spool: segment %s needs key id %s, which is not in the keyring", seg.path, seg.hdr.keyID)
	}
	verify := func(off int64, fh frameHeader, sealed []byte) ([]byte, bool) {
		plain, err := openFrame(nil, oldAEAD, &seg.hdr, off, fh.seq, sealed)
		return plain, err == nil
	}
	maxSealed := s.maxSealed()
	res := scanFrames(data, &seg.hdr, maxSealed, verify, countFrom)
	lost := res.lost
	if countTail {
		lost += tornFrames(data[res.tailAt:], maxSealed)
	}

	keyID, aead := s.opts.Keys.CurrentAEAD()
	hdr := segmentHeader{id: seg.id, firstSeq: seg.hdr.firstSeq, created: seg.hdr.created, keyID: keyID}
	if _, err := rand.Read(hdr.nonceBase[:]); err != nil {
		return fmt.Errorf("spool: nonce base: %w", err)
	}
	out := hdr.marshal(make([]byte, 0, len(data)))
	lastSeq := hdr.firstSeq - 1
	var sc frameScratch
	for _, fr := range res.frames {
		out = appendFrame(out, &sc, aead, &hdr, int64(len(out)), fr.fh.seq, fr.fh.time, fr.plain)
		clear(fr.plain)
		lastSeq = fr.fh.seq
	}

	// Keep the damaged file under a second name before replacing it, so that
	// a crash at any point leaves the original either in place or aside.
	aside := freePath(seg.path + corruptExt)
	if err := os.Link(seg.path, aside); err != nil {
		if err := writeFileSync(aside, data); err != nil {
			return err
		}
	}
	tmp := seg.path + salvageTmpExt
	if err := writeFileSync(tmp, out); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: salvaging %s: %w", seg.path, err)
	}
	if err := os.Rename(tmp, seg.path); err != nil {
		return fmt.Errorf("spool: salvaging %s: %w", seg.path, err)
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}

	s.mu.Lock()
	s.bytes += int64(len(out)) - seg.size
	seg.hdr, seg.size, seg.lastSeq = hdr, int64(len(out)), lastSeq
	s.mu.Unlock()

	// Offsets in the segment changed: re-anchor the ack and invalidate
	// cursors handed out before.
	s.ackMu.Lock()
	s.gen++
	if s.ack.segment == seg.id {
		if off, err := s.offsetOfSeq(seg, s.ack.seq, -1); err == nil {
			s.ack.offset = off
		}
	}
	s.ackMu.Unlock()

	s.recoveredLost.Add(lost)
	s.log.Warn("spool: salvaged damaged segment",
		"segment", seg.path, "kept_records", len(res.frames), "lost_records", lost,
		"damaged_file", aside, "torn_tail_bytes", int64(len(data))-res.tailAt)
	return nil
}
