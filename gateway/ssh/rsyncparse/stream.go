package rsyncparse

import (
	"encoding/binary"
	"fmt"
)

// maxPending bounds the bytes kept while an item spans reads: the largest
// item is a file-list entry with a name and a symlink target of maxName
// bytes each, or a filter rule.
const maxPending = 3 * maxName

// itemFunc decodes items from the start of b until it needs more bytes and
// returns how many it consumed. It may also consume bulk bytes (file data)
// without looking at them.
type itemFunc func(b []byte) (int, error)

// assembler feeds a byte stream, arriving in arbitrary pieces, to an
// itemFunc: an item cut by a read boundary is kept and completed by the
// next read.
type assembler struct {
	pending []byte
}

func (a *assembler) feed(p []byte, items itemFunc) error {
	in := p
	if len(a.pending) > 0 {
		a.pending = append(a.pending, p...)
		in = a.pending
	}
	n, err := items(in)
	if err != nil {
		return err
	}
	rest := in[n:]
	if len(rest) > maxPending {
		return fmt.Errorf("rsync: an item of more than %d bytes", maxPending)
	}
	if len(a.pending) > 0 {
		// Compact in place; rest aliases the tail of a.pending.
		a.pending = a.pending[:copy(a.pending, rest)]
		if cap(a.pending) > 4*relayChunk {
			a.pending = append([]byte(nil), a.pending...)
		}
	} else {
		a.pending = append(a.pending, rest...)
	}
	return nil
}

// relayChunk is the size of the reads the relay typically hands over.
const relayChunk = 64 << 10

// Multiplexed messages (io.c): a four-byte little-endian header, the tag
// (MPLEX_BASE + message code) in the top byte and the length below it.
const (
	mplexBase = 7
	msgData   = 0
)

// demux splits a multiplexed stream: MSG_DATA payloads go to data, the
// other messages (errors, warnings, statistics) are skipped.
type demux struct {
	header  [4]byte
	have    int // header bytes collected
	left    int // payload bytes still to come in the current message
	payload bool
	isData  bool
}

func (d *demux) feed(p []byte, data func([]byte) error) error {
	for len(p) > 0 {
		if d.payload {
			n := min(d.left, len(p))
			if d.isData {
				if err := data(p[:n]); err != nil {
					return err
				}
			}
			p = p[n:]
			d.left -= n
			if d.left == 0 {
				d.payload = false
			}
			continue
		}
		n := copy(d.header[d.have:], p)
		d.have += n
		p = p[n:]
		if d.have < len(d.header) {
			return nil
		}
		d.have = 0
		h := binary.LittleEndian.Uint32(d.header[:])
		tag := int(h >> 24)
		if tag < mplexBase {
			return fmt.Errorf("rsync: multiplexed header with tag %d", tag)
		}
		d.left = int(h & 0xFFFFFF)
		d.isData = tag == mplexBase+msgData
		d.payload = d.left > 0
	}
	return nil
}
