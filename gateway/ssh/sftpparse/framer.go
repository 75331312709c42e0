package sftpparse

import (
	"encoding/binary"
	"fmt"
)

// MaxPacket is the largest SFTP packet accepted, as OpenSSH's sftp-server
// (SFTP_MAX_MSG_LENGTH, 256 KiB) plus headroom. A larger length means the
// stream is not SFTP (or is out of step) and parsing stops.
const MaxPacket = 256<<10 + 1024

// keepBytes is how much of each packet is kept for decoding. Requests and
// responses need only their leading fields; the data of READ and WRITE is
// counted, never copied, so a transfer costs no extra copy of its bytes.
const keepBytes = 8 << 10

// framer cuts one direction of the stream into packets.
type framer struct {
	hdr  [4]byte
	hdrN int
	body []byte // the kept prefix of the current packet
	size int    // the current packet's length
	got  int    // body bytes seen so far
}

// packet is one framed packet: its type, its length (without the length
// field) and up to keepBytes of its body after the type byte.
type packet struct {
	typ    byte
	length int
	body   []byte
}

// feed consumes p and calls emit for every complete packet. After an error
// the stream cannot be parsed any further.
func (f *framer) feed(p []byte, emit func(packet)) error {
	for len(p) > 0 {
		if f.hdrN < 4 {
			n := copy(f.hdr[f.hdrN:], p)
			f.hdrN += n
			p = p[n:]
			if f.hdrN < 4 {
				return nil
			}
			f.size = int(binary.BigEndian.Uint32(f.hdr[:]))
			if f.size < 1 || f.size > MaxPacket {
				return fmt.Errorf("sftp: packet length %d out of range", f.size)
			}
			f.got = 0
			f.body = f.body[:0]
		}
		n := min(len(p), f.size-f.got)
		if keep := min(n, keepBytes-len(f.body)); keep > 0 {
			f.body = append(f.body, p[:keep]...)
		}
		f.got += n
		p = p[n:]
		if f.got == f.size {
			emit(packet{typ: f.body[0], length: f.size, body: f.body[1:]})
			f.hdrN = 0
		}
	}
	return nil
}

// reader decodes SFTP fields from a packet body. Reads past the end set
// short, which callers check once at the end.
type reader struct {
	b     []byte
	short bool
}

func (r *reader) uint32() uint32 {
	if len(r.b) < 4 {
		r.short = true
		r.b = nil
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) uint64() uint64 {
	if len(r.b) < 8 {
		r.short = true
		r.b = nil
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) string() string {
	n := r.uint32()
	if r.short || uint64(n) > uint64(len(r.b)) {
		r.short = true
		r.b = nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// stringLen reads a string's length only: the data of READ and WRITE is
// not kept.
func (r *reader) stringLen() uint32 {
	return r.uint32()
}
