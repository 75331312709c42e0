package spool

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// On-disk format, version 1. All integers are big-endian.
//
// Segment file "<id, 20 digits>.seg":
//
//	segment header (64 bytes)
//	  0  magic "PAMTRSEG"
//	  8  format version (uint16) = 1
//	 10  header length (uint16) = 64
//	 12  segment id (uint64), equal to the number in the file name
//	 20  first record sequence number (uint64)
//	 28  creation time (int64 unix nanoseconds)
//	 36  key id (8 ASCII hex characters) of the key that sealed every record
//	 44  nonce base (12 random bytes)
//	 56  reserved, zero
//	 60  CRC32C of bytes 0..60
//	frames, back to back
//
// Frame:
//
//	 0  sealed length L (uint32: ciphertext + GCM tag) XOR lengthMask
//	 4  CRC32C over bytes 0..4, 8..24 and the L sealed bytes
//	 8  record sequence number (uint64), spool-wide, strictly increasing
//	16  append time (int64 unix nanoseconds)
//	24  sealed bytes
//
// Nonce: the segment's random 96-bit base XOR the record's sequence number in
// its last 8 bytes. Within a segment the sequence numbers differ, so nonces
// are unique by construction; across segments (and across spool directories
// re-created with the same key) a collision needs two random bases to differ
// by exactly the XOR of two sequence numbers, the same birthday bound as fully
// random nonces. Deriving the nonce keeps it off the disk and out of the hot
// path (no random read per record). Rotate keys long before 2^32 records.
//
// AAD: segment id, frame offset, sequence number (24 bytes). A sealed record
// copied to another segment or offset, or replayed with another sequence
// number, fails authentication.
//
// The CRC lets recovery tell torn or damaged frames from good ones without
// decrypting; GCM then authenticates what the CRC let through.
//
// The length is masked so that a frame's first byte is never zero: a tail
// cut one byte into a frame is then distinguishable from the zero fill a
// filesystem leaves when a crash extended the file but lost the data.

const (
	segmentMagic      = "PAMTRSEG"
	formatVersion     = 1
	segmentHeaderSize = 64
	frameHeaderSize   = 24
	keyIDSize         = 8
	nonceSize         = 12
	segmentExt        = ".seg"
	brokenExt         = ".broken"  // a copy of a segment taken before truncating a torn tail
	corruptExt        = ".corrupt" // a damaged segment set aside after its records were salvaged
	ackFileName       = "ack"
	ackTmpFileName    = "ack.tmp"
	ackMagic          = "PAMTRACK"
	ackFileSize       = 40
	lengthMask        = 0xA5A5A5A5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segmentHeader is the decoded header of a segment file.
type segmentHeader struct {
	id        uint64
	firstSeq  uint64
	created   time.Time
	keyID     string
	nonceBase [nonceSize]byte
}

func (h *segmentHeader) marshal(dst []byte) []byte {
	var b [segmentHeaderSize]byte
	copy(b[0:8], segmentMagic)
	binary.BigEndian.PutUint16(b[8:10], formatVersion)
	binary.BigEndian.PutUint16(b[10:12], segmentHeaderSize)
	binary.BigEndian.PutUint64(b[12:20], h.id)
	binary.BigEndian.PutUint64(b[20:28], h.firstSeq)
	binary.BigEndian.PutUint64(b[28:36], uint64(h.created.UnixNano()))
	copy(b[36:44], h.keyID)
	copy(b[44:56], h.nonceBase[:])
	binary.BigEndian.PutUint32(b[60:64], crc32.Checksum(b[:60], castagnoli))
	return append(dst, b[:]...)
}

// errBadHeader marks a segment header that is short or fails its checks.
var errBadHeader = errors.New("invalid segment header")

func parseSegmentHeader(b []byte) (segmentHeader, error) {
	var h segmentHeader
	if len(b) < segmentHeaderSize {
		return h, fmt.Errorf("%w: %d bytes, want %d", errBadHeader, len(b), segmentHeaderSize)
	}
	if string(b[0:8]) != segmentMagic {
		return h, fmt.Errorf("%w: bad magic", errBadHeader)
	}
	if crc32.Checksum(b[:60], castagnoli) != binary.BigEndian.Uint32(b[60:64]) {
		return h, fmt.Errorf("%w: checksum mismatch", errBadHeader)
	}
	if v := binary.BigEndian.Uint16(b[8:10]); v != formatVersion {
		return h, fmt.Errorf("%w: unsupported format version %d", errBadHeader, v)
	}
	if n := binary.BigEndian.Uint16(b[10:12]); n != segmentHeaderSize {
		return h, fmt.Errorf("%w: header length %d", errBadHeader, n)
	}
	h.id = binary.BigEndian.Uint64(b[12:20])
	h.firstSeq = binary.BigEndian.Uint64(b[20:28])
	h.created = time.Unix(0, int64(binary.BigEndian.Uint64(b[28:36])))
	h.keyID = string(b[36:44])
	copy(h.nonceBase[:], b[44:56])
	return h, nil
}

// frameHeader is the decoded fixed part of a frame.
type frameHeader struct {
	length uint32
	crc    uint32
	seq    uint64
	time   int64
}

func parseFrameHeader(b []byte) frameHeader {
	return frameHeader{
		length: binary.BigEndian.Uint32(b[0:4]) ^ lengthMask,
		crc:    binary.BigEndian.Uint32(b[4:8]),
		seq:    binary.BigEndian.Uint64(b[8:16]),
		time:   int64(binary.BigEndian.Uint64(b[16:24])),
	}
}

// frameCRC computes the checksum of a frame from its header bytes and sealed
// bytes.
func frameCRC(hdr, sealed []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr[0:4])
	c = crc32.Update(c, castagnoli, hdr[8:24])
	return crc32.Update(c, castagnoli, sealed)
}

// recordAAD fills aad with the data that binds a record to its place.
func recordAAD(aad *[24]byte, segID uint64, offset int64, seq uint64) {
	binary.BigEndian.PutUint64(aad[0:8], segID)
	binary.BigEndian.PutUint64(aad[8:16], uint64(offset))
	binary.BigEndian.PutUint64(aad[16:24], seq)
}

// recordNonce fills nonce with base XOR seq (in the last 8 bytes).
func recordNonce(nonce *[nonceSize]byte, base *[nonceSize]byte, seq uint64) {
	*nonce = *base
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	for i := range 8 {
		nonce[4+i] ^= s[i]
	}
}

// frameScratch holds the nonce and AAD of a seal. Passing slices of stack
// arrays to the cipher.AEAD interface would move them to the heap on every
// record; the appender reuses one scratch instead.
type frameScratch struct {
	nonce [nonceSize]byte
	aad   [24]byte
}

// appendFrame seals payload and appends the complete frame to dst. offset is
// where the frame starts in its segment.
func appendFrame(dst []byte, sc *frameScratch, aead cipher.AEAD, h *segmentHeader, offset int64, seq uint64, now int64, payload []byte) []byte {
	start := len(dst)
	sealedLen := len(payload) + aead.Overhead()
	dst = append(dst, make([]byte, frameHeaderSize)...)
	hdr := dst[start : start+frameHeaderSize]
	binary.BigEndian.PutUint32(hdr[0:4], uint32(sealedLen)^lengthMask)
	binary.BigEndian.PutUint64(hdr[8:16], seq)
	binary.BigEndian.PutUint64(hdr[16:24], uint64(now))

	recordNonce(&sc.nonce, &h.nonceBase, seq)
	recordAAD(&sc.aad, h.id, offset, seq)
	dst = aead.Seal(dst, sc.nonce[:], payload, sc.aad[:])

	hdr = dst[start : start+frameHeaderSize] // Seal may have reallocated dst
	binary.BigEndian.PutUint32(hdr[4:8], frameCRC(hdr, dst[start+frameHeaderSize:]))
	return dst
}

// openFrame authenticates and decrypts a frame's sealed bytes, appending the
// plaintext to dst.
func openFrame(dst []byte, aead cipher.AEAD, h *segmentHeader, offset int64, seq uint64, sealed []byte) ([]byte, error) {
	var nonce [nonceSize]byte
	var aad [24]byte
	recordNonce(&nonce, &h.nonceBase, seq)
	recordAAD(&aad, h.id, offset, seq)
	return aead.Open(dst, nonce[:], sealed, aad[:])
}

// frameCheck is the outcome of validating the frame at some offset.
type frameCheck int

const (
	frameOK        frameCheck = iota
	frameShort                // the data ends inside the frame
	frameBadLength            // the length field cannot be right
	frameBadCRC               // complete but the checksum fails
	frameZero                 // the frame header is all zero bytes
)

// checkFrame validates the frame starting at data[0] by length and CRC only
// (no decryption). minSeq is the smallest sequence number the frame may carry.
func checkFrame(data []byte, maxSealed uint32, minSeq uint64) (frameHeader, frameCheck) {
	if len(data) < frameHeaderSize {
		if allZero(data) {
			return frameHeader{}, frameZero
		}
		return frameHeader{}, frameShort
	}
	fh := parseFrameHeader(data)
	if allZero(data[:frameHeaderSize]) {
		return fh, frameZero
	}
	if fh.length == 0 || fh.length > maxSealed {
		return fh, frameBadLength
	}
	if uint64(len(data)-frameHeaderSize) < uint64(fh.length) {
		return fh, frameShort
	}
	if frameCRC(data, data[frameHeaderSize:frameHeaderSize+int(fh.length)]) != fh.crc {
		return fh, frameBadCRC
	}
	if fh.seq < minSeq {
		// A stale frame (a CRC-valid leftover) is as unusable as a bad one.
		return fh, frameBadCRC
	}
	return fh, frameOK
}

func allZero(b []byte) bool {
	return len(bytes.TrimLeft(b, "\x00")) == 0
}

// ackRecord is the durable acknowledged position: every record with a
// sequence number below seq has been delivered. segment and offset are a
// hint where seq starts, verified before use.
type ackRecord struct {
	seq     uint64
	segment uint64
	offset  int64
}

func (a ackRecord) marshal() []byte {
	b := make([]byte, ackFileSize)
	copy(b[0:8], ackMagic)
	binary.BigEndian.PutUint64(b[8:16], a.seq)
	binary.BigEndian.PutUint64(b[16:24], a.segment)
	binary.BigEndian.PutUint64(b[24:32], uint64(a.offset))
	binary.BigEndian.PutUint32(b[32:36], crc32.Checksum(b[:32], castagnoli))
	return b
}

func parseAck(b []byte) (ackRecord, error) {
	if len(b) != ackFileSize {
		return ackRecord{}, fmt.Errorf("size %d bytes, want %d", len(b), ackFileSize)
	}
	if string(b[0:8]) != ackMagic {
		return ackRecord{}, errors.New("bad magic")
	}
	if crc32.Checksum(b[:32], castagnoli) != binary.BigEndian.Uint32(b[32:36]) {
		return ackRecord{}, errors.New("checksum mismatch")
	}
	return ackRecord{
		seq:     binary.BigEndian.Uint64(b[8:16]),
		segment: binary.BigEndian.Uint64(b[16:24]),
		offset:  int64(binary.BigEndian.Uint64(b[24:32])),
	}, nil
}

func segmentFileName(id uint64) string {
	return fmt.Sprintf("%020d%s", id, segmentExt)
}
