package postgres

import "encoding/binary"

// messageObserver is told about each message of a stream. The relay copies
// bytes through as they arrive; the observer only sees message boundaries.
type messageObserver interface {
	// wants returns how many leading body bytes of a message of type typ
	// with a body of size bytes must be captured when the message spans
	// reads. Messages that arrive whole in one read are handed over as is
	// at no cost, whatever wants says.
	wants(typ byte, size int) int
	// message delivers one message: body is the whole body when
	// len(body) == size, else the captured prefix. body is only valid
	// during the call. A returned error ends the relay.
	message(typ byte, body []byte, size int) error
}

// frameScanner splits a byte stream into PostgreSQL messages (a type byte
// and an int32 length that counts itself) without holding the stream back:
// it never needs a message to be complete before its bytes are forwarded,
// so memory stays bounded whatever the message or result size.
type frameScanner struct {
	maxLen int // largest accepted length field
	obs    messageObserver
	// side names the stream in errors ("client" or "server").
	side string

	hdr    [5]byte
	hdrN   int
	inBody bool
	typ    byte
	size   int // body size of the current message
	remain int // body bytes of the current message not yet seen
	want   int
	// capture accumulates the wanted prefix of a message spanning reads.
	capture []byte
}

// captureRetain is the capture buffer size kept between messages; larger
// buffers are dropped after use so idle sessions stay small.
const captureRetain = 64 << 10

// feed scans one chunk read from the stream.
func (s *frameScanner) feed(p []byte) error {
	for len(p) > 0 {
		if !s.inBody {
			if s.hdrN == 0 && len(p) >= 5 {
				copy(s.hdr[:], p[:5])
				p = p[5:]
			} else {
				n := copy(s.hdr[s.hdrN:], p)
				s.hdrN += n
				p = p[n:]
				if s.hdrN < 5 {
					return nil
				}
			}
			s.hdrN = 0
			if err := s.startMessage(); err != nil {
				return err
			}
			if s.remain == 0 {
				s.inBody = false
				if err := s.obs.message(s.typ, nil, 0); err != nil {
					return err
				}
				continue
			}
			if len(p) >= s.remain {
				// Fast path: the whole body is in this read.
				body := p[:s.remain]
				p = p[s.remain:]
				s.inBody = false
				if err := s.obs.message(s.typ, body, s.size); err != nil {
					return err
				}
				continue
			}
		}
		k := min(len(p), s.remain)
		if c := s.want - len(s.capture); c > 0 {
			s.capture = append(s.capture, p[:min(k, c)]...)
		}
		p = p[k:]
		s.remain -= k
		if s.remain == 0 {
			s.inBody = false
			err := s.obs.message(s.typ, s.capture, s.size)
			if cap(s.capture) > captureRetain {
				s.capture = nil
			} else {
				s.capture = s.capture[:0]
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *frameScanner) startMessage() error {
	s.typ = s.hdr[0]
	length := int(binary.BigEndian.Uint32(s.hdr[1:]))
	if length < 4 {
		return protocolErrorf("invalid %s message length %d for message type %q", s.side, length, s.typ)
	}
	if length > s.maxLen {
		return protocolErrorf("%s message of type %q is %d bytes, over the limit of %d bytes (postgres.max_message_bytes)",
			s.side, s.typ, length, s.maxLen)
	}
	s.size = length - 4
	s.remain = s.size
	s.inBody = true
	s.want = 0
	if s.size > 0 {
		s.want = min(s.obs.wants(s.typ, s.size), s.size)
	}
	return nil
}

// midMessage reports whether the stream stopped inside a message.
func (s *frameScanner) midMessage() bool { return s.inBody || s.hdrN > 0 }
