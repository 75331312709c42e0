package postgres

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// Read buffer sizes. Bytes are forwarded in the chunks they are read in:
// one read, one write, no copy; a full buffer simply means more reads.
const (
	clientBufSize = 16 << 10
	serverBufSize = 32 << 10
)

// pumpResult is why a pump stopped.
type pumpResult struct {
	err         error
	writeFailed bool // the error came from writing to the other side
}

// pump copies src to dst while the scanner watches the messages go by. A
// message is observed before the read that completes it is forwarded, so
// a fail-closed recording error stops the response it concerns, and a
// statement's event is recorded before the client sees its ReadyForQuery.
func (s *session) pump(src, dst net.Conn, sc *frameScanner, fromClient bool) pumpResult {
	size := serverBufSize
	if fromClient {
		size = clientBufSize
	}
	counter := s.counter(fromClient)
	buf := make([]byte, size)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			out, scanErr := s.filterAndObserve(buf[:n], sc, fromClient)
			if scanErr != nil {
				return pumpResult{err: scanErr}
			}
			if _, werr := dst.Write(out); werr != nil {
				return pumpResult{err: werr, writeFailed: true}
			}
			counter.Add(int64(n))
			if fromClient && s.terminated.Load() {
				return pumpResult{}
			}
		}
		if err != nil {
			return pumpResult{err: err}
		}
	}
}

// filterAndObserve returns what to forward for a chunk. Without an enforce
// policy that is the chunk itself, observed. With one, the tracker sees
// the client's statements as sent (the recorded text is what the user
// typed) and the server's responses as forwarded (the recorded error of a
// blocked statement is the 42501 the client got).
func (s *session) filterAndObserve(chunk []byte, sc *frameScanner, fromClient bool) ([]byte, error) {
	if s.filter == nil {
		return chunk, s.observe(chunk, sc, fromClient)
	}
	if fromClient {
		if err := s.observe(chunk, sc, true); err != nil {
			return nil, err
		}
		return s.filter.client.apply(chunk)
	}
	out, err := s.filter.server.apply(chunk)
	if err != nil {
		return nil, err
	}
	return out, s.observe(out, sc, false)
}

// observe shows one chunk read from one side to the scanner, and through
// it to the tracker, before the chunk is forwarded.
func (s *session) observe(chunk []byte, sc *frameScanner, fromClient bool) error {
	var now time.Time
	if s.tr != nil || s.limits.Idle > 0 {
		now = time.Now()
	}
	if s.limits.Idle > 0 {
		s.limits.Activity.Touch(now)
	}
	if s.tr == nil {
		return sc.feed(chunk)
	}
	s.tr.begin(now)
	err := sc.feed(chunk)
	if fromClient && s.tr.terminated {
		s.terminated.Store(true)
	}
	s.tr.end()
	return err
}

// counter is the byte count of one direction.
func (s *session) counter(fromClient bool) *atomic.Int64 {
	if fromClient {
		return &s.traffic.In
	}
	return &s.traffic.Out
}

// clientChecker validates client messages when nothing is recorded: the
// protocol limits hold with recording off too.
type clientChecker struct{ s *session }

func (clientChecker) wants(byte, int) int { return 0 }

func (c *clientChecker) message(typ byte, _ []byte, _ int) error {
	if !frontendTypes[typ] {
		return protocolErrorf("invalid frontend message type %q", typ)
	}
	if typ == 'X' {
		c.s.terminated.Store(true)
	}
	return nil
}

// serverChecker validates server messages when nothing is recorded.
type serverChecker struct{}

func (serverChecker) wants(byte, int) int { return 0 }

func (serverChecker) message(typ byte, _ []byte, _ int) error {
	if !backendTypes[typ] {
		return protocolErrorf("server sent invalid message type %q after startup", typ)
	}
	return nil
}

func isEOF(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}
