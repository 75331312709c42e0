package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// session is a live, recorded PostgreSQL session.
type session struct {
	e        *Engine
	log      *slog.Logger
	client   net.Conn
	upstream net.Conn
	rec      recorder.Session
	tr       *tracker // nil when recording is disabled
	key      cancelKey
	// limits end the session on the account's idle_timeout and
	// max_duration, or when asked (requested).
	limits engine.Limits

	// unregister takes the session out of the engine's registry.
	unregister func()
	// policy guards the account's statements; nil without SQL rules.
	policy *policy.Set
	// filter replaces blocked statements; nil unless the policy enforces.
	filter *sqlFilter

	// endOnce guards the end asked for from outside the session (engine
	// shutdown, live control): requested is closed once asked is set.
	endOnce   sync.Once
	asked     endState
	requested chan struct{}

	terminated atomic.Bool
	traffic    *engine.Traffic
}

// establish authenticates the client, logs in upstream, starts the
// recording and hands the client its session.
func (c *clientConn) establish() (*session, error) {
	if err := c.negotiate(); err != nil {
		return nil, err
	}
	acct, err := c.authenticate()
	if err != nil {
		return nil, err
	}
	e := c.e
	ctx, cancel := context.WithTimeout(e.stopCtx, e.connTimeout)
	defer cancel()
	up, err := e.connectUpstream(ctx, acct, 3<<16|c.protoMinor, c.params)
	if err != nil {
		var ue *upstreamError
		if !errors.As(err, &ue) {
			ue = e.upstreamFailed(acct, err)
		}
		return nil, &authFailure{wire: ue.wire, reason: schema.AuthUpstreamFailed,
			message: ue.err.Error(), account: acct.Name}
	}
	s, err := c.startSession(ctx, acct, up)
	if err != nil {
		_ = up.conn.Close()
		return nil, err
	}
	return s, nil
}

func (c *clientConn) startSession(ctx context.Context, acct *config.Account, up *upstreamConn) (*session, error) {
	e := c.e
	now := time.Now()
	info := recorder.SessionInfo{
		ID:           recorder.NewSessionID(),
		User:         c.user,
		Account:      acct.Name,
		ResourceType: schema.ResourcePostgres,
		ClientAddr:   c.remoteAddr,
		ClientPort:   c.remotePort,
		ServerAddr:   acct.Host,
		ServerPort:   acct.Port,
		Database:     acct.Database,
		UpstreamUser: acct.User,
		AuthMethod:   "scram-sha-256",
		Start:        now,
	}
	traffic := &engine.Traffic{}
	info.Traffic = traffic.Load
	rs, err := e.Recorder.SessionStart(ctx, info)
	if err != nil {
		e.Logger.Error("postgres: cannot start recording; session refused", "user", c.user, "account", acct.Name, "error", err)
		return nil, &wireError{code: codeCannotConnectNow, message: "pamtrail cannot record this session, so it is refused"}
	}
	s := &session{
		e:         e,
		log:       e.Logger.With("session", info.ID, "user", c.user, "account", acct.Name),
		client:    c.conn,
		upstream:  up.conn,
		rec:       rs,
		limits:    engine.AccountLimits(acct, now),
		requested: make(chan struct{}),
		traffic:   traffic,
	}
	s.limits.EndRequested = s.requested
	// Idle means no bytes either way and no statement running, so a long
	// query is not mistaken for an idle session.
	s.limits.Busy = func() bool { return s.tr != nil && s.tr.busy() }
	s.unregister = e.Register(c.raw, engine.SessionInfo{ID: info.ID, User: c.user, Account: acct.Name,
		ClientAddr: c.remoteAddr, Start: now}, s.requestEnd)
	if set := e.Control.Policy(acct.Name); set.HasSQL() {
		s.policy = set
		if set.Enforces() {
			s.filter = newSQLFilter(set, e.maxMessage)
		}
	}
	if e.recordOn {
		s.tr = newTracker(e.lim, rs.Query, s.log)
		s.tr.startWith(sessionCharset(up.initial, c.param("client_encoding")))
		s.tr.policy = s.policy
	}
	// Hand over: the server's parameters, the server's process id with
	// our secret, ReadyForQuery. A server that sent no key (a pooler
	// without cancel support) gives the client none either.
	msg := up.initial
	if up.key.secret != nil {
		secretLen := secretLen30
		if c.protoMinor >= protocolMinor32 {
			secretLen = secretLen32
		}
		s.key = e.cancels.register(up.key.pid, secretLen, cancelTarget{upstream: up.key, send: e.sendCancel(acct)})
		msg = appendBackendKeyData(msg, s.key)
	}
	msg = appendMessage(msg, 'Z', []byte{up.txStatus})
	if _, err := c.conn.Write(msg); err != nil {
		e.cancels.unregister(s.key)
		s.unregister()
		s.recordEnd(schema.EndNetworkError, "client went away before the session started", 0, 0)
		return nil, quiet("writing to client: %v", err)
	}
	_ = c.conn.SetDeadline(time.Time{})
	s.log.Info("postgres: session started", "client", c.remoteAddr)
	return s, nil
}

// endState is why a session ended and the ErrorResponse, if any, that
// tells the client.
type endState = engine.End[*wireError]

// run relays the session until one side ends it, a limit is hit or the
// engine shuts down, then records the end.
func (s *session) run() {
	defer s.e.cancels.unregister(s.key)
	defer s.unregister()
	cs := &frameScanner{maxLen: s.e.maxMessage, side: "client"}
	ss := &frameScanner{maxLen: s.e.maxMessage, side: "server"}
	if s.tr != nil {
		cs.obs, ss.obs = clientSide{s.tr}, serverSide{s.tr}
	} else {
		cs.obs, ss.obs = &clientChecker{s: s}, serverChecker{}
	}
	clientDone := make(chan pumpResult, 1)
	serverDone := make(chan pumpResult, 1)
	loop, inLoop := s.startLoopRelay(cs, ss, clientDone, serverDone)
	if !inLoop {
		go func() { clientDone <- s.pump(s.client, s.upstream, cs, true) }()
		go func() { serverDone <- s.pump(s.upstream, s.client, ss, false) }()
	}

	end, stopped := engine.SuperviseSession[pumpResult, *wireError](s, s.limits, clientDone, serverDone)
	gotClient, gotServer := stopped == engine.StopClient, stopped == engine.StopServer
	s.cancelAbandoned(end)

	var serverRes pumpResult
	clientUsable := true
	if inLoop {
		serverRes, clientUsable = s.stopLoopRelay(loop, gotServer, serverDone)
	} else {
		serverRes = s.stopPumps(gotServer, serverDone)
	}
	if !gotClient {
		<-clientDone
	}
	if clientUsable && end.Notice != nil && !ss.midMessage() && !serverRes.writeFailed {
		_ = s.client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = s.client.Write(appendErrorResponse(nil, end.Notice))
	}
	if clientUsable {
		_ = s.client.Close()
	}

	if s.tr != nil {
		if err := s.tr.close(time.Now()); err != nil && end.Reason != schema.EndRecordingError {
			s.log.Error("postgres: recording the last statements failed", "error", err)
		}
	}
	s.recordEnd(end.Reason, end.Message, s.traffic.In.Load(), s.traffic.Out.Load())
	s.log.Info("postgres: session ended", "reason", end.Reason, "message", end.Message,
		"bytes_in", s.traffic.In.Load(), "bytes_out", s.traffic.Out.Load())
}

// stopPumps stops the goroutine relay: closing upstream ends the server
// pump's read and the client pump's write; a past read deadline ends the
// client pump's read while keeping the client writable for the final
// message. It returns the server pump's result.
func (s *session) stopPumps(gotServer bool, serverDone chan pumpResult) pumpResult {
	_ = s.upstream.Close()
	_ = s.client.SetReadDeadline(time.Unix(1, 0))
	if gotServer {
		return pumpResult{}
	}
	select {
	case r := <-serverDone:
		return r
	case <-time.After(2 * time.Second):
		// The client is not reading what we write to it.
		_ = s.client.SetWriteDeadline(time.Unix(1, 0))
		return <-serverDone
	}
}

// stopLoopRelay takes the session out of its event loop and gets the
// client socket back for the final message, after writing any server
// bytes still on their way to the client. clientUsable is false when the
// socket could not be taken back (it is closed then).
func (s *session) stopLoopRelay(loop *loopRelay, gotServer bool, serverDone chan pumpResult) (serverRes pumpResult, clientUsable bool) {
	client, unsent, err := loop.stop()
	if !gotServer {
		serverRes = <-serverDone
	}
	if err != nil {
		s.log.Warn("postgres: taking the client socket back from the event loop failed", "error", err)
		return serverRes, false
	}
	s.client = client
	if len(unsent) > 0 && !serverRes.writeFailed {
		_ = s.client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := s.client.Write(unsent); err != nil {
			serverRes.writeFailed = true // the final message would land mid-message
		}
	}
	return serverRes, true
}

// cancelAbandoned cancels a statement still running upstream when the
// session ends under it: PostgreSQL would otherwise run it to completion
// (holding its locks) and notice the closed connection only when it tries
// to answer.
func (s *session) cancelAbandoned(end endState) {
	if end.Reason == schema.EndClientQuit || end.Reason == schema.EndUpstreamClosed || s.tr == nil || !s.tr.busy() {
		return
	}
	target, ok := s.e.cancels.lookup(s.key)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.e.connTimeout)
	defer cancel()
	if err := target.send(ctx, target.upstream); err != nil {
		s.log.Warn("postgres: cancelling the abandoned statement upstream failed", "error", err)
	}
}

// LimitNotice implements engine.Supervised: the client is told as
// PostgreSQL tells its own idle-session timeout (57P05) and admin
// shutdown (57P01).
func (s *session) LimitNotice(r engine.StopReason) *wireError {
	if r == engine.StopIdle {
		return &wireError{code: codeIdleSessionTimeout, message: "terminating connection due to idle-session timeout"}
	}
	return &wireError{code: codeAdminShutdown,
		message: fmt.Sprintf("terminating connection: maximum session duration of %s reached", s.limits.MaxDuration)}
}

// Requested implements engine.Supervised.
func (s *session) Requested() endState { return s.asked }

// requestEnd implements engine.EndFunc: the session's supervisor ends it
// with reason and tells the client as PostgreSQL's own admin shutdown does
// (57P01).
func (s *session) requestEnd(reason, message string) {
	s.endOnce.Do(func() {
		wire := "terminating connection: " + message
		if reason == schema.EndShutdown {
			wire = "terminating connection because the pamtrail gateway is shutting down"
		}
		s.asked = endState{Reason: reason, Message: message, Notice: &wireError{code: codeAdminShutdown, message: wire}}
		close(s.requested)
	})
}

// RelayEnded implements engine.Supervised: it turns the first pump to stop
// into the session's end.
func (s *session) RelayEnded(r pumpResult, fromClient bool) endState {
	var we *wireError
	switch {
	case errors.Is(r.err, errRecording):
		return endState{Reason: schema.EndRecordingError, Message: "an event could not be recorded (fail-closed policy)",
			Notice: &wireError{code: codeInternalError, message: "terminating connection: pamtrail could not record this session (fail-closed policy)"}}
	case errors.As(r.err, &we):
		return endState{Reason: schema.EndProtocolError, Message: we.message, Notice: we}
	case s.terminated.Load():
		return endState{Reason: schema.EndClientQuit}
	case s.tr != nil && s.tr.endedByServer() != "":
		// The client may close before the server's EOF reaches us.
		return endState{Reason: schema.EndUpstreamClosed, Message: "server ended the session: " + s.tr.endedByServer()}
	case fromClient && !r.writeFailed:
		return endState{Reason: schema.EndNetworkError, Message: "client connection closed without Terminate: " + errText(r.err)}
	case fromClient:
		return endState{Reason: schema.EndUpstreamClosed, Message: "writing to the server failed: " + errText(r.err),
			Notice: &wireError{code: codeConnectionFailure, message: "server connection lost"}}
	case !r.writeFailed && isEOF(r.err):
		return endState{Reason: schema.EndUpstreamClosed, Message: "server closed the connection"}
	case !r.writeFailed:
		return endState{Reason: schema.EndNetworkError, Message: "reading from the server failed: " + errText(r.err),
			Notice: &wireError{code: codeConnectionFailure, message: "server connection lost"}}
	default:
		return endState{Reason: schema.EndNetworkError, Message: "writing to the client failed: " + errText(r.err)}
	}
}

func (s *session) recordEnd(reason, message string, in, out int64) {
	err := s.rec.End(recorder.End{Time: time.Now(), Reason: reason, Message: message, BytesIn: in, BytesOut: out})
	if err != nil {
		s.log.Error("postgres: recording the session end failed", "error", err)
	}
}

func errText(err error) string {
	if err == nil {
		return "EOF"
	}
	return err.Error()
}
