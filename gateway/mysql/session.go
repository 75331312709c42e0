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
	// limits end the session on the account's idle_timeout and
	// max_duration, or when asked (requested).
	limits engine.Limits

	// policy guards the account's statements; nil allows everything.
	policy *policy.Set

	mu sync.Mutex // serialises the tracker between the two pumps
	tr *tracker   // nil when recording is off

	// replySeq is the sequence id the client expects next from the
	// server, for an error the gateway writes in the server's place.
	replySeq   atomic.Uint32
	busy       atomic.Bool // a command is waiting for its response
	quit       atomic.Bool // the client sent COM_QUIT
	traffic    *engine.Traffic
	recordErr  atomic.Bool
	unregister func()

	endOnce   sync.Once
	requested chan struct{}
	asked     endState
}

// endState is why a session ended and the ERR packet, if any, that tells
// the client.
type endState = engine.End[*wire.Err]

func newSession(c *clientConn, acct *config.Account, up *upstreamConn, rs recorder.Session, now time.Time, traffic *engine.Traffic) *session {
	e := c.e
	s := &session{
		e: e, acct: acct, client: c.conn, upstream: up.conn, rec: rs, clientID: c.id,
		log:       e.Logger.With("session", rs.ID(), "user", c.user, "account", acct.Name),
		limits:    engine.AccountLimits(acct, now),
		requested: make(chan struct{}),
		traffic:   traffic,
	}
	s.limits.EndRequested = s.requested
	// Idle means no bytes either way and no command running, so a long
	// query is not mistaken for an idle session.
	s.limits.Busy = s.busy.Load
	if set := e.Control.Policy(acct.Name); set.HasSQL() {
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
	s.recordEnd(endState{Reason: schema.EndNetworkError, Message: why})
}

// requestEnd implements engine.EndFunc.
func (s *session) requestEnd(reason, message string) {
	s.endOnce.Do(func() {
		text := "pamtrail ended this session: " + message
		if reason == schema.EndShutdown {
			text = "the pamtrail gateway is shutting down"
		}
		s.asked = endState{Reason: reason, Message: message,
			Notice: &wire.Err{Code: erConnectionKill, SQLState: "70100", Message: text}}
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
	clientDone := make(chan pumpResult, 1)
	serverDone := make(chan pumpResult, 1)
	go func() { clientDone <- s.pumpClient() }()
	go func() { serverDone <- s.pumpServer() }()

	end, stopped := engine.SuperviseSession[pumpResult, *wire.Err](s, s.limits, clientDone, serverDone)
	gotClient, gotServer := stopped == engine.StopClient, stopped == engine.StopServer
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
	if end.Notice != nil {
		seq := byte(0)
		if s.busy.Load() {
			seq = byte(s.replySeq.Load())
		}
		_ = s.client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = s.client.Write(wire.AppendPackets(nil, &seq, wire.AppendErr(nil, end.Notice.Code, end.Notice.SQLState, end.Notice.Message)))
	}
	_ = s.client.Close()
	if s.tr != nil {
		s.mu.Lock()
		err := s.tr.close(time.Now())
		s.mu.Unlock()
		if err != nil && end.Reason != schema.EndRecordingError {
			s.log.Error("mysql: recording the last statements failed", "error", err)
		}
	}
	s.recordEnd(end)
	s.log.Info("mysql: session ended", "reason", end.Reason, "message", end.Message,
		"bytes_in", s.traffic.In.Load(), "bytes_out", s.traffic.Out.Load())
}

func (s *session) recordEnd(end endState) {
	err := s.rec.End(recorder.End{Time: time.Now(), Reason: end.Reason, Message: end.Message,
		BytesIn: s.traffic.In.Load(), BytesOut: s.traffic.Out.Load()})
	if err != nil {
		s.log.Error("mysql: recording the session end failed", "error", err)
	}
}

// LimitNotice implements engine.Supervised: the client is told as MySQL
// tells its own idle disconnects (ER_CLIENT_INTERACTION_TIMEOUT) and
// killed connections (ER_CONNECTION_KILLED).
func (s *session) LimitNotice(r engine.StopReason) *wire.Err {
	if r == engine.StopIdle {
		return &wire.Err{Code: 4031, SQLState: "HY000", Message: "The client was disconnected by the pamtrail gateway because of inactivity (idle_timeout)"}
	}
	return &wire.Err{Code: erConnectionKill, SQLState: "70100",
		Message: fmt.Sprintf("pamtrail ended this session: maximum session duration of %s reached", s.limits.MaxDuration)}
}

// Requested implements engine.Supervised.
func (s *session) Requested() endState { return s.asked }

var errRecording = errors.New("an event could not be recorded (fail-closed policy)")

// RelayEnded implements engine.Supervised: it turns the first pump to stop
// into the session's end.
func (s *session) RelayEnded(r pumpResult, fromClient bool) endState {
	switch {
	case errors.Is(r.err, errRecording):
		return endState{Reason: schema.EndRecordingError, Message: errRecording.Error(),
			Notice: &wire.Err{Code: erConnectionKill, SQLState: "70100", Message: "pamtrail could not record this session (fail-closed policy)"}}
	case s.quit.Load():
		return endState{Reason: schema.EndClientQuit}
	case errors.Is(r.err, wire.ErrMalformed):
		return endState{Reason: schema.EndProtocolError, Message: r.err.Error()}
	case fromClient && !r.writeFailed:
		return endState{Reason: schema.EndNetworkError, Message: "client connection closed without COM_QUIT: " + errText(r.err)}
	case fromClient:
		return endState{Reason: schema.EndUpstreamClosed, Message: "writing to the server failed: " + errText(r.err)}
	case !r.writeFailed && (errors.Is(r.err, io.EOF) || errors.Is(r.err, net.ErrClosed)):
		return endState{Reason: schema.EndUpstreamClosed, Message: "server closed the connection"}
	case !r.writeFailed:
		return endState{Reason: schema.EndNetworkError, Message: "reading from the server failed: " + errText(r.err)}
	default:
		return endState{Reason: schema.EndNetworkError, Message: "writing to the client failed: " + errText(r.err)}
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
