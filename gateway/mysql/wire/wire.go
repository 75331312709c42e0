// Package wire is the MySQL client/server protocol's framing and value
// encodings: packets (a 3-byte length, a sequence id, and payloads of
// 16 MiB - 1 continued in the next packet), length-encoded integers and
// strings, and the protocol's constants. It parses untrusted bytes from both
// sides and never panics on them.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxPayload is the largest payload one packet carries; a payload of
// exactly this length is continued in the next packet.
const MaxPayload = 1<<24 - 1

// Capability flags (only those the gateway reads or sets).
const (
	ClientLongPassword     uint32 = 1 << 0
	ClientFoundRows        uint32 = 1 << 1
	ClientLongFlag         uint32 = 1 << 2
	ClientConnectWithDB    uint32 = 1 << 3
	ClientCompress         uint32 = 1 << 5
	ClientLocalFiles       uint32 = 1 << 7
	ClientProtocol41       uint32 = 1 << 9
	ClientSSL              uint32 = 1 << 11
	ClientTransactions     uint32 = 1 << 13
	ClientSecureConnection uint32 = 1 << 15
	ClientMultiStatements  uint32 = 1 << 16
	ClientMultiResults     uint32 = 1 << 17
	ClientPSMultiResults   uint32 = 1 << 18
	ClientPluginAuth       uint32 = 1 << 19
	ClientConnectAttrs     uint32 = 1 << 20
	ClientPluginAuthLenenc uint32 = 1 << 21
	ClientSessionTrack     uint32 = 1 << 23
	ClientDeprecateEOF     uint32 = 1 << 24
	// ClientOptionalMetadata and ClientQueryAttributes change the shape
	// of result sets and COM_QUERY; the gateway never lets them be
	// negotiated, so it need not parse them.
	ClientOptionalMetadata uint32 = 1 << 25
	ClientQueryAttributes  uint32 = 1 << 27
	ClientSSLVerifyCert    uint32 = 1 << 30
	// MariaDB signals its extended capabilities by clearing bit 0 of the
	// capability flags; the gateway offers none of them.
)

// Server status flags.
const (
	StatusInTrans           uint16 = 0x0001
	StatusAutocommit        uint16 = 0x0002
	StatusMoreResultsExists uint16 = 0x0008
	StatusCursorExists      uint16 = 0x0040
	StatusLastRowSent       uint16 = 0x0080
)

// Commands.
const (
	ComQuit             byte = 0x01
	ComInitDB           byte = 0x02
	ComQuery            byte = 0x03
	ComFieldList        byte = 0x04
	ComStatistics       byte = 0x09
	ComProcessKill      byte = 0x0c
	ComPing             byte = 0x0e
	ComChangeUser       byte = 0x11
	ComBinlogDump       byte = 0x12
	ComStmtPrepare      byte = 0x16
	ComStmtExecute      byte = 0x17
	ComStmtSendLongData byte = 0x18
	ComStmtClose        byte = 0x19
	ComStmtReset        byte = 0x1a
	ComSetOption        byte = 0x1b
	ComStmtFetch        byte = 0x1c
	ComResetConnection  byte = 0x1f
	ComStmtBulkExecute  byte = 0xfa // MariaDB
)

// Response headers.
const (
	HeaderOK          byte = 0x00
	HeaderLocalInfile byte = 0xfb
	HeaderEOF         byte = 0xfe
	HeaderErr         byte = 0xff
)

// ErrMalformed reports bytes that are not what the protocol allows.
var ErrMalformed = errors.New("malformed MySQL packet")

// Conn reads and writes packets on a stream, tracking the sequence id.
type Conn struct {
	rw  io.ReadWriter
	Seq byte
	// MaxPayload bounds a reassembled payload; 0 means 64 MiB.
	MaxPayload int
	hdr        [4]byte
}

// NewConn wraps a stream.
func NewConn(rw io.ReadWriter) *Conn { return &Conn{rw: rw} }

// SetStream replaces the stream (after a TLS upgrade) keeping the sequence.
func (c *Conn) SetStream(rw io.ReadWriter) { c.rw = rw }

// ReadPayload reads one logical payload, joining continuation packets, and
// sets Seq to the next expected sequence id.
func (c *Conn) ReadPayload() ([]byte, error) {
	limit := c.MaxPayload
	if limit <= 0 {
		limit = 64 << 20
	}
	var out []byte
	for {
		if _, err := io.ReadFull(c.rw, c.hdr[:]); err != nil {
			return nil, err
		}
		n := int(c.hdr[0]) | int(c.hdr[1])<<8 | int(c.hdr[2])<<16
		c.Seq = c.hdr[3] + 1
		if len(out)+n > limit {
			return nil, fmt.Errorf("%w: payload over %d bytes", ErrMalformed, limit)
		}
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(c.rw, out[start:]); err != nil {
			return nil, err
		}
		if n < MaxPayload {
			return out, nil
		}
	}
}

// WritePayload writes a payload as one or more packets starting at Seq.
func (c *Conn) WritePayload(p []byte) error {
	_, err := c.rw.Write(AppendPackets(nil, &c.Seq, p))
	return err
}

// AppendPackets frames p as packets starting at *seq, advancing it.
func AppendPackets(dst []byte, seq *byte, p []byte) []byte {
	for {
		n := min(len(p), MaxPayload)
		dst = append(dst, byte(n), byte(n>>8), byte(n>>16), *seq)
		dst = append(dst, p[:n]...)
		*seq++
		p = p[n:]
		if n < MaxPayload {
			return dst
		}
	}
}

// Reader decodes values from a payload; the first error sticks and every
// later read returns zero values, so a caller checks Err once.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads p.
func NewReader(p []byte) *Reader { return &Reader{b: p} }

// Err is the first decoding error.
func (r *Reader) Err() error { return r.err }

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Rest returns the unread bytes.
func (r *Reader) Rest() []byte { b := r.b; r.b = nil; return b }

func (r *Reader) fail() {
	if r.err == nil {
		r.err = ErrMalformed
	}
	r.b = nil
}

// Bytes reads n bytes.
func (r *Reader) Bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if b := r.Bytes(1); b != nil {
		return b[0]
	}
	return 0
}

// Uint16 reads a little-endian uint16.
func (r *Reader) Uint16() uint16 {
	if b := r.Bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

// Uint24 reads a little-endian 3-byte integer.
func (r *Reader) Uint24() uint32 {
	if b := r.Bytes(3); b != nil {
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	}
	return 0
}

// Uint32 reads a little-endian uint32.
func (r *Reader) Uint32() uint32 {
	if b := r.Bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// Uint64 reads a little-endian uint64.
func (r *Reader) Uint64() uint64 {
	if b := r.Bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// LenencInt reads a length-encoded integer; null is set for 0xfb.
func (r *Reader) LenencInt() (v uint64, null bool) {
	switch b := r.Byte(); {
	case r.err != nil:
		return 0, false
	case b < 0xfb:
		return uint64(b), false
	case b == 0xfb:
		return 0, true
	case b == 0xfc:
		return uint64(r.Uint16()), false
	case b == 0xfd:
		return uint64(r.Uint24()), false
	case b == 0xfe:
		return r.Uint64(), false
	default:
		r.fail()
		return 0, false
	}
}

// LenencBytes reads a length-encoded string; null is set for 0xfb.
func (r *Reader) LenencBytes() (v []byte, null bool) {
	n, null := r.LenencInt()
	if null || r.err != nil {
		return nil, null
	}
	if n > uint64(len(r.b)) {
		r.fail()
		return nil, false
	}
	return r.Bytes(int(n)), false
}

// NulBytes reads up to a NUL byte and skips it; without one it fails.
func (r *Reader) NulBytes() []byte {
	for i, c := range r.b {
		if c == 0 {
			v := r.b[:i]
			r.b = r.b[i+1:]
			return v
		}
	}
	r.fail()
	return nil
}

// AppendLenencInt encodes v as a length-encoded integer.
func AppendLenencInt(dst []byte, v uint64) []byte {
	switch {
	case v < 0xfb:
		return append(dst, byte(v))
	case v <= 0xffff:
		return append(dst, 0xfc, byte(v), byte(v>>8))
	case v <= 0xffffff:
		return append(dst, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	default:
		return binary.LittleEndian.AppendUint64(append(dst, 0xfe), v)
	}
}

// AppendLenencBytes encodes b as a length-encoded string.
func AppendLenencBytes(dst, b []byte) []byte {
	return append(AppendLenencInt(dst, uint64(len(b))), b...)
}
