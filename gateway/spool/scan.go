package spool

import (
	"encoding/binary"
	"math"
)

// resyncWindow bounds how far ahead of the expected sequence number a frame
// found while resynchronising may be. Sequence gaps come only from earlier
// losses, so a frame far outside the window is garbage that happened to look
// like a header.
const resyncWindow = 1 << 32

// frameRef is a frame found by a scan. plain holds the decrypted payload
// when the scan decrypted it.
type frameRef struct {
	off   int64
	fh    frameHeader
	plain []byte
}

func (f frameRef) end() int64 { return f.off + frameHeaderSize + int64(f.fh.length) }

// scanResult describes a segment's frames after a scan.
type scanResult struct {
	frames []frameRef
	// lost counts records missing in damaged regions followed by a good
	// frame (exact: the sequence numbers on both sides bound the gap).
	lost uint64
	// damaged is set when a bad region was followed by a good frame, which
	// a torn write cannot explain.
	damaged bool
	// tailAt is where the unreadable tail begins (len(data) if none).
	tailAt int64
	// nextSeq is the smallest sequence number a frame after the last good
	// one may have.
	nextSeq uint64
}

// verifyFunc authenticates a CRC-valid frame; it may return the plaintext.
type verifyFunc func(off int64, fh frameHeader, sealed []byte) (plain []byte, ok bool)

// scanFrames walks the frames of a whole segment file. Frames are checked by
// length and CRC, and by verify when it is not nil. A bad frame starts a
// damaged region; the scan resumes at the next offset holding a good frame
// with a plausible sequence number. countFrom excludes already acknowledged
// sequence numbers from lost.
func scanFrames(data []byte, hdr *segmentHeader, maxSealed uint32, verify verifyFunc, countFrom uint64) scanResult {
	res := scanResult{nextSeq: hdr.firstSeq, tailAt: int64(len(data))}
	off := int64(segmentHeaderSize)
	for off < int64(len(data)) {
		if ref, ok := frameAt(data, off, maxSealed, res.nextSeq, verify); ok {
			res.frames = append(res.frames, ref)
			res.nextSeq = ref.fh.seq + 1
			off = ref.end()
			continue
		}
		next, ok := resync(data, off+1, maxSealed, res.nextSeq, verify)
		if !ok {
			res.tailAt = off
			break
		}
		res.lost += countRange(res.nextSeq, next.fh.seq, countFrom)
		res.damaged = true
		res.frames = append(res.frames, next)
		res.nextSeq = next.fh.seq + 1
		off = next.end()
	}
	return res
}

// frameAt validates the frame at off.
func frameAt(data []byte, off int64, maxSealed uint32, minSeq uint64, verify verifyFunc) (frameRef, bool) {
	fh, chk := checkFrame(data[off:], maxSealed, minSeq)
	if chk != frameOK {
		return frameRef{}, false
	}
	ref := frameRef{off: off, fh: fh}
	if verify != nil {
		sealed := data[off+frameHeaderSize : ref.end()]
		plain, ok := verify(off, fh, sealed)
		if !ok {
			return frameRef{}, false
		}
		ref.plain = plain
	}
	return ref, true
}

// resync looks for the next good frame at or after from. The sequence-number
// window is checked before the CRC so that scanning garbage costs a few
// loads per byte.
func resync(data []byte, from int64, maxSealed uint32, minSeq uint64, verify verifyFunc) (frameRef, bool) {
	maxSeq := uint64(math.MaxUint64)
	if minSeq < math.MaxUint64-resyncWindow {
		maxSeq = minSeq + resyncWindow
	}
	for off := from; off+frameHeaderSize <= int64(len(data)); off++ {
		seq := binary.BigEndian.Uint64(data[off+8 : off+16])
		if seq < minSeq || seq >= maxSeq {
			continue
		}
		n := binary.BigEndian.Uint32(data[off:off+4]) ^ lengthMask
		if n == 0 || n > maxSealed || off+frameHeaderSize+int64(n) > int64(len(data)) {
			continue
		}
		if ref, ok := frameAt(data, off, maxSealed, minSeq, verify); ok {
			return ref, true
		}
	}
	return frameRef{}, false
}

// countRange is the number of sequence numbers in [lo, hi) at or above from.
func countRange(lo, hi, from uint64) uint64 {
	lo = max(lo, from)
	if hi <= lo {
		return 0
	}
	return hi - lo
}

// tornFrames estimates how many records an unreadable tail held, for a tail
// with no good frame after it (so no sequence number bounds it). An all-zero
// tail held none that were ever written (the filesystem extended the file but
// the data never landed: a torn write); otherwise the frame headers are
// followed while their lengths are plausible, counting at least one.
func tornFrames(tail []byte, maxSealed uint32) uint64 {
	if allZero(tail) {
		return 0
	}
	var n uint64
	for off := 0; off < len(tail); {
		if allZero(tail[off:]) {
			break
		}
		n++
		if len(tail)-off < frameHeaderSize {
			break
		}
		l := binary.BigEndian.Uint32(tail[off:off+4]) ^ lengthMask
		if l == 0 || l > maxSealed {
			break
		}
		off += frameHeaderSize + int(l)
	}
	return max(n, 1)
}
