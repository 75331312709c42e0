package rsyncparse

import (
	"encoding/binary"
	"errors"
)

// errShort means the buffered bytes end inside the item being decoded: the
// caller keeps them and retries once more bytes arrive.
var errShort = errors.New("rsync: item continues in later bytes")

// reader decodes rsync's integer encodings (io.c) from a byte slice. It
// never reads past the slice: once short, every call returns zero and the
// item is retried later from its first byte.
type reader struct {
	b     []byte
	off   int
	short bool
}

func (r *reader) take(n int) []byte {
	if r.short || n < 0 || len(r.b)-r.off < n {
		r.short = true
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) byte() byte {
	p := r.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

// int32 is write_int: four bytes, little-endian, signed.
func (r *reader) int32() int32 {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return int32(binary.LittleEndian.Uint32(p))
}

// uint16 is write_shortint: two bytes, little-endian.
func (r *reader) uint16() uint16 {
	p := r.take(2)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(p)
}

// extraBytes is int_byte_extra[]: the count of leading one bits of a
// varint's first byte is the count of bytes that follow it.
func extraBytes(first byte) int {
	n := 0
	for b := first; b&0x80 != 0 && n < 6; b <<= 1 {
		n++
	}
	return n
}

// varint is read_varint: the first byte's leading one bits count the bytes
// that follow (at most four); the value is little-endian with the first
// byte's remaining low bits on top.
func (r *reader) varint() (int32, error) {
	first := r.byte()
	if r.short {
		return 0, errShort
	}
	extra := extraBytes(first)
	if extra > 4 {
		return 0, errors.New("rsync: varint overflow")
	}
	var u [5]byte
	if extra == 0 {
		return int32(first), nil
	}
	tail := r.take(extra)
	if tail == nil {
		return 0, errShort
	}
	copy(u[:], tail)
	u[extra] = first & (1<<(8-extra) - 1)
	return int32(binary.LittleEndian.Uint32(u[:4])), nil
}

// varlong is read_varlong(min): min bytes, of which the first holds the
// count of extra bytes in its leading one bits; the value is little-endian
// with the first byte's remaining low bits on top.
func (r *reader) varlong(min int) (int64, error) {
	head := r.take(min)
	if head == nil {
		return 0, errShort
	}
	extra := extraBytes(head[0])
	if min+extra > 9 {
		return 0, errors.New("rsync: varlong overflow")
	}
	var u [9]byte
	copy(u[:], head[1:])
	if extra > 0 {
		tail := r.take(extra)
		if tail == nil {
			return 0, errShort
		}
		copy(u[min-1:], tail)
		u[min-1+extra] = head[0] & (1<<(8-extra) - 1)
	} else {
		u[min-1] = head[0]
	}
	if u[8] != 0 || u[7]&0x80 != 0 {
		return 0, errors.New("rsync: varlong overflow")
	}
	return int64(binary.LittleEndian.Uint64(u[:8])), nil
}

// vstring is read_vstring: a one-byte length, or two bytes when the first
// has its top bit set, then the bytes.
func (r *reader) vstring() []byte {
	n := int(r.byte())
	if n&0x80 != 0 {
		n = (n&0x7f)<<8 | int(r.byte())
	}
	return r.take(n)
}

// ndx decodes write_ndx (protocol 30 and later): indexes travel as
// differences from the previous one of the same sign, so the state lives
// for the whole stream.
type ndxDecoder struct {
	prevPositive, prevNegative int32
}

// Special indexes (rsync.h).
const (
	ndxDone       = -1
	ndxFlistEOF   = -2
	ndxFlistOffer = -101 // NDX_FLIST_OFFSET: a new file list follows
)

func newNDXDecoder() ndxDecoder { return ndxDecoder{prevPositive: -1, prevNegative: 1} }

// read returns the next index. The decoder's state changes only when the
// whole index was present.
func (d *ndxDecoder) read(r *reader) int32 {
	b := r.byte()
	if r.short {
		return 0
	}
	if b == 0 {
		return ndxDone
	}
	prev := &d.prevPositive
	negative := b == 0xFF
	if negative {
		prev = &d.prevNegative
		b = r.byte()
	}
	var num int32
	if b == 0xFE {
		hi := r.byte()
		lo := r.byte()
		if hi&0x80 != 0 {
			rest := r.take(2)
			if rest == nil {
				return 0
			}
			num = int32(uint32(lo) | uint32(rest[0])<<8 | uint32(rest[1])<<16 | uint32(hi&0x7f)<<24)
		} else {
			num = (int32(hi)<<8 | int32(lo)) + *prev
		}
	} else {
		num = int32(b) + *prev
	}
	if r.short {
		return 0
	}
	*prev = num
	if negative {
		return -num
	}
	return num
}
