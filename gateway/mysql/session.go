package mysql

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/mysql/wire"
	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// session is a live, recorded MySQL session.
type session struct {
	e        *Engine
	log      *slog.Logger
	acct     *config.Account
	client   net.Conn
	upstream net.Conn
	rec      recorder.Session
	clientID uint32
	idle     time.Duration
	maxDur   time.Duration
	start    time.Time

	// policy guards the account's statements; nil allows everything.
	policy *policy.Set

	mu sync.Mutex // serialises the tracker between the two pumps
	tr *tracker   // nil when recording is off

	// replySeq is the sequence id the client expects next from the
	// server, for an error the gateway writes in the server's place.
	replySeq   atomic.Uint32
	busy       atomic.Bool // a command is waiting for its response
	quit       atomic.Bool // the client sent COM_QUIT
	activity   atomic.Int64
	bytesIn    atomic.Int64
	bytesOut   atomic.Int64
	recordErr  atomic.Bool
	unregister func()

	endOnce   sync.Once
	requested chan struct{}
	asked     endState
}

// endState is why a session ended and what the client is told.
type endState struct {
	reason  string
	message string
	err     *wire.Err
}

func newSession(c *clientConn, acct *config.Account, up *upstreamConn, rs recorder.Session, now time.Time) *session {
	e := c.e
	s := &session{
		e: e, acct: acct, client: c.conn, upstream: up.conn, rec: rs, clientID: c.id,
		log:  e.log.With("session", rs.ID(), "user", c.user, "account", acct.Name),
		idle: acct.IdleTimeout.D(), maxDur: acct.MaxDuration.D(), start: now,
		requested: make(chan struct{}),
	}
	if set := e.ctl.Policy(acct.Name); set.HasSQL() {
		s.policy = set
	}
	if e.recordOn {
		s.tr = newTracker(e.lim, up.caps, s.emit)
		s.tr.policy = s.policy
	}
	e.threads.Store(c.id, thread{account: acct.Name, upstream: up.threadID})
	s.unregister = e.Register(c.raw, engine.SessionInfo{ID: rs.ID(), User: c.user, Account: acct.Name,
		ClientAddr: c.remoteAddr, Start: now}, s.requestEnd)
	return s
}

// emit hands an event to the recorder; under fail-closed its error ends
// the session.
func (s *session) emit(q recorder.Query) error {
	err := s.rec.Query(q)
	if err != nil {
		s.recordErr.Store(true)
	}
	return err
}

// abandon ends a session that never got going.
func (s *session) abandon(why string) {
	s.e.threads.Delete(s.clientID)
	s.unregister()
	s.recordEnd(endState{reason: schema.EndNetworkError, message: why})
}

// requestEnd implements engine.EndFunc.
func (s *session) requestEnd(reason, message string) {
	s.endOnce.Do(func() {
		text := "pamtrail ended this session: " + message
		if reason == schema.EndShutdown {
			text = "the pamtrail gateway is shutting down"
		}
		s.asked = endState{reason: reason, message: message,
			err: &wire.Err{Code: erConnectionKill, SQLState: "70100", Message: text}}
		close(s.requested)
	})
}

type pumpResult struct {
	err         error
	writeFailed bool
}

// run relays the session until one side ends it, a limit is hit or the
// session is asked to end, then records the end.
func (s *session) run() {
	defer s.unregister()
	defer s.e.threads.Delete(s.clientID)
	s.activity.Store(time.Now().UnixNano())
	clientDone := make(chan pumpResult, 1)
	serverDone := make(chan pumpResult, 1)
	go func() { clientDone <- s.pumpClient() }()
	go func() { serverDone <- s.pumpServer() }()

	end, gotClient, gotServer := s.supervise(clientDone, serverDone)
	_ = s.upstream.Close()
	_ = s.client.SetReadDeadline(time.Unix(1, 0))
	if !gotServer {
		select {
		case <-serverDone:
		case <-time.After(2 * time.Second):
			_ = s.client.SetWriteDeadline(time.Unix(1, 0))
			<-serverDone
		}
	}
	if !gotClient {
		<-clientDone
	}
	if end.err != nil {
		seq := byte(0)
		if s.busy.Load() {
			seq = byte(s.replySeq.Load())
		}
		_ = s.client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = s.client.Write(wire.AppendPackets(nil, &seq, wire.AppendErr(nil, end.err.Code, end.err.SQLState, end.err.Message)))
	}
	_ = s.client.Close()
	if s.tr != nil {
		s.mu.Lock()
		err := s.tr.close(time.Now())
		s.mu.Unlock()
		if err != nil && end.reason != schema.EndRecordingError {
			s.log.Error("mysql: recording the last statements failed", "error", err)
		}
	}
	s.recordEnd(end)
	s.log.Info("mysql: session ended", "reason", end.reason, "message", end.message,
		"bytes_in", s.bytesIn.Load(), "bytes_out", s.bytesOut.Load())
}

func (s *session) recordEnd(end endState) {
	err := s.rec.End(recorder.End{Time: time.Now(), Reason: end.reason, Message: end.message,
		BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load()})
	if err != nil {
		s.log.Error("mysql: recording the session end failed", "error", err)
	}
}

// supervise waits for the first reason to end the session.
func (s *session) supervise(clientDone, serverDone chan pumpResult) (end endState, gotClient, gotServer bool) {
	var idleC, maxC <-chan time.Time
	var idleT *time.Timer
	if s.idle > 0 {
		idleT = time.NewTimer(s.idle)
		defer idleT.Stop()
		idleC = idleT.C
	}
	if s.maxDur > 0 {
		maxT := time.NewTimer(time.Until(s.start.Add(s.maxDur)))
		defer maxT.Stop()
		maxC = maxT.C
	}
	for {
		select {
		case r := <-clientDone:
			return s.classify(r, true), true, false
		case r := <-serverDone:
			return s.classify(r, false), false, true
		case <-idleC:
			// Idle means no bytes either way and no command running, so
			// a long query is not mistaken for an idle session.
			wait := s.idle - time.Since(time.Unix(0, s.activity.Load()))
			if wait <= 0 && s.busy.Load() {
				wait = s.idle
			}
			if wait > 0 {
				idleT.Reset(wait)
				continue
			}
			return endState{reason: schema.EndIdleTimeout, message: fmt.Sprintf("no activity for %s (idle_timeout)", s.idle),
				err: &wire.Err{Code: 4031, SQLState: "HY000", Message: "The client was disconnected by the pamtrail gateway because of inactivity (idle_timeout)"}}, false, false
		case <-maxC:
			return s.maxDurationEnd(), false, false
		case <-s.requested:
			return s.asked, false, false
		}
	}
}

func (s *session) maxDurationEnd() endState {
	return endState{reason: schema.EndMaxDuration,
		message: fmt.Sprintf("session reached its maximum duration of %s (max_duration)", s.maxDur),
		err: &wire.Err{Code: erConnectionKill, SQLState: "70100",
			Message: fmt.Sprintf("pamtrail ended this session: maximum session duration of %s reached", s.maxDur)}}
}

var errRecording = errors.New("an event could not be recorded (fail-closed policy)")

// classify turns the first pump to stop into the session's end.
func (s *session) classify(r pumpResult, fromClient bool) endState {
	switch {
	case errors.Is(r.err, errRecording):
		return endState{reason: schema.EndRecordingError, message: errRecording.Error(),
			err: &wire.Err{Code: erConnectionKill, SQLState: "70100", Message: "pamtrail could not record this session (fail-closed policy)"}}
	case s.quit.Load():
		return endState{reason: schema.EndClientQuit}
	case errors.Is(r.err, wire.ErrMalformed):
		return endState{reason: schema.EndProtocolError, message: r.err.Error()}
	case fromClient && !r.writeFailed:
		return endState{reason: schema.EndNetworkError, message: "client connection closed without COM_QUIT: " + errText(r.err)}
	case fromClient:
		return endState{reason: schema.EndUpstreamClosed, message: "writing to the server failed: " + errText(r.err)}
	case !r.writeFailed && (errors.Is(r.err, io.EOF) || errors.Is(r.err, net.ErrClosed)):
		return endState{reason: schema.EndUpstreamClosed, message: "server closed the connection"}
	case !r.writeFailed:
		return endState{reason: schema.EndNetworkError, message: "reading from the server failed: " + errText(r.err)}
	default:
		return endState{reason: schema.EndNetworkError, message: "writing to the client failed: " + errText(r.err)}
	}
}

func errText(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return "EOF"
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "deadline exceeded"
	}
	return err.Error()
}

// packetReader reads physical packets and reassembles a bounded prefix of
// each logical payload for the tracker.
type packetReader struct {
	r    *bufio.Reader
	hdr  [4]byte
	body []byte // the current packet's payload
	// payload is the prefix (at most limit bytes) of the logical payload
	// the current packet belongs to; cut reports whether bytes were left out.
	payload []byte
	limit   int
	cut     bool
	more    bool // the current packet is continued in the next one
}

// next reads one packet; last reports that it ends its logical payload.
func (p *packetReader) next() (seq byte, last bool, err error) {
	if !p.more {
		p.payload, p.cut = p.payload[:0], false
	}
	if _, err := io.ReadFull(p.r, p.hdr[:]); err != nil {
		return 0, false, err
	}
	n := int(p.hdr[0]) | int(p.hdr[1])<<8 | int(p.hdr[2])<<16
	if cap(p.body) < n {
		p.body = make([]byte, n, max(n, 16<<10))
	}
	p.body = p.body[:n]
	if _, err := io.ReadFull(p.r, p.body); err != nil {
		return 0, false, err
	}
	if room := p.limit - len(p.payload); room > 0 {
		p.payload = append(p.payload, p.body[:min(room, n)]...)
		p.cut = p.cut || n > room
	} else if n > 0 {
		p.cut = true
	}
	p.more = n == wire.MaxPayload
	return p.hdr[3], !p.more, nil
}

// packet is the current packet, header included, as read.
func (p *packetReader) write(w *bufio.Writer) error {
	if _, err := w.Write(p.hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(p.body)
	return err
}
