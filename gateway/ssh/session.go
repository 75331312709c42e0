package ssh

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// session is one authenticated client connection and its upstream
// connection, from SessionStart to End.
type session struct {
	e     *Engine
	log   *slog.Logger
	conn  *gossh.ServerConn
	up    *upstream
	acct  *config.Account
	ident identity
	info  recorder.SessionInfo
	rec   recorder.Session // set before any channel is served

	bytesIn  atomic.Int64    // client -> target, all channels
	bytesOut atomic.Int64    // target -> client
	activity engine.Activity // when data was last relayed, for idle_timeout
	// liveSessions counts session channels whose target side is still
	// open: a client that disconnects while one is live dropped mid-session.
	liveSessions atomic.Int32
	// targetDropped: the target closed a session channel mid-command. Its
	// connection's end can be seen after the client, told of the close,
	// has already left, so the client's end must not claim the cause.
	targetDropped atomic.Bool

	endOnce sync.Once
	end     endCause
	// noticeOnce: an end from outside (engine.EndFunc) tells the channels once.
	noticeOnce sync.Once
	chansMu    sync.Mutex
	chans      map[*sessionChannel]struct{}
	done       chan struct{} // closed by terminate
	wg         sync.WaitGroup
}

// negotiatedCipher is the cipher a connection sends with. Both hops are
// logged because the slower cipher of the two sets the session's
// throughput (see README, Throughput).
func negotiatedCipher(c gossh.Conn) string {
	if m, ok := c.(gossh.AlgorithmsConnMetadata); ok {
		return m.Algorithms().Write.Cipher
	}
	return ""
}

// endCause is why a session ended (schema.End*) and a human message.
type endCause struct{ reason, message string }

// endFunc implements engine.EndFunc: every open channel gets a line saying
// why (on the terminal, or stderr without a pty) and is closed, then the
// connections are. It returns at once; a client that does not read its
// channel delays the end by noticeTimeout at most.
func (s *session) endFunc(reason, message string) {
	s.noticeOnce.Do(func() {
		go func() {
			s.notifyChannels("pamtrail: session ended (" + reason + "): " + message)
			s.terminate(endCause{reason, message})
		}()
	})
}

// noticeTimeout bounds telling the client why its session ends.
const noticeTimeout = time.Second

func (s *session) notifyChannels(line string) {
	s.chansMu.Lock()
	chans := make([]*sessionChannel, 0, len(s.chans))
	for c := range s.chans {
		chans = append(chans, c)
	}
	s.chansMu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, c := range chans {
			c.notice(line)
			_ = c.client.Close()
		}
	}()
	select {
	case <-done:
	case <-time.After(noticeTimeout):
	}
}

// trackChannel adds a session channel for notices; the result removes it.
func (s *session) trackChannel(c *sessionChannel) func() {
	s.chansMu.Lock()
	if s.chans == nil {
		s.chans = map[*sessionChannel]struct{}{}
	}
	s.chans[c] = struct{}{}
	s.chansMu.Unlock()
	return func() {
		s.chansMu.Lock()
		delete(s.chans, c)
		s.chansMu.Unlock()
	}
}

func newSession(e *Engine, conn *gossh.ServerConn, hs *handshake) *session {
	s := &session{
		e:     e,
		conn:  conn,
		up:    hs.up,
		acct:  hs.acct,
		ident: hs.ident,
		done:  make(chan struct{}),
	}
	addr, port := engine.SplitAddr(conn.RemoteAddr())
	s.info = recorder.SessionInfo{
		ID:           recorder.NewSessionID(),
		User:         hs.ident.user,
		Account:      hs.acct.Name,
		ResourceType: schema.ResourceSSH,
		ClientAddr:   addr,
		ClientPort:   port,
		ServerAddr:   hs.acct.Host,
		ServerPort:   hs.acct.Port,
		UpstreamUser: hs.acct.User,
		AuthMethod:   hs.ident.method,
		Start:        time.Now(),
		Traffic:      func() (int64, int64) { return s.bytesIn.Load(), s.bytesOut.Load() },
	}
	s.log = e.Logger.With("session", s.info.ID, "user", s.info.User, "account", s.info.Account)
	s.touch()
	return s
}

// run serves the session until either side goes away or it is terminated,
// then records its end once every channel has finished recording.
func (s *session) run(chans <-chan gossh.NewChannel, reqs <-chan *gossh.Request) {
	rec, err := s.e.Recorder.SessionStart(s.e.ctx, s.info)
	if err != nil {
		s.log.Error("cannot record the session start; refusing the session", "error", err)
		s.terminate(endCause{schema.EndRecordingError, err.Error()})
		s.spawn(func() { gossh.DiscardRequests(reqs) })
		s.spawn(func() { gossh.DiscardRequests(s.up.reqs) })
		for nc := range chans {
			_ = nc.Reject(gossh.ConnectionFailed, "pamtrail: recording is unavailable")
		}
		s.wg.Wait()
		return
	}
	s.rec = rec
	s.log.Info("ssh session started", "client", s.conn.RemoteAddr().String(), "target", fmt.Sprintf("%s:%d", s.acct.Host, s.acct.Port),
		"client_cipher", negotiatedCipher(s.conn.Conn), "target_cipher", negotiatedCipher(s.up.conn))

	s.spawn(func() { refuseGlobalRequests(reqs) })
	s.spawn(func() { refuseGlobalRequests(s.up.reqs) })
	s.spawn(s.refuseUpstreamChannels)
	s.spawn(func() { s.serveChannels(chans) })
	s.spawn(func() { s.terminate(s.clientEnded(s.conn.Wait())) })
	s.spawn(func() { s.terminate(s.upstreamEnded(s.up.conn.Wait())) })
	s.spawn(func() { s.keepalive(s.conn, "client") })
	s.spawn(func() { s.keepalive(s.up.conn, "target") })
	s.spawn(s.watchLimits)

	<-s.done
	s.wg.Wait()
	err = s.rec.End(recorder.End{
		Time:     time.Now(),
		Reason:   s.end.reason,
		Message:  s.end.message,
		BytesIn:  s.bytesIn.Load(),
		BytesOut: s.bytesOut.Load(),
	})
	if err != nil {
		s.log.Error("recording the session end failed", "error", err)
	}
	s.log.Info("ssh session ended", "reason", s.end.reason, "message", s.end.message)
}

func (s *session) spawn(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// terminate ends the session: the first cause wins, both connections are
// closed, and every channel unwinds.
func (s *session) terminate(c endCause) {
	s.endOnce.Do(func() {
		s.end = c
		s.conn.Close()
		if s.up != nil {
			s.up.conn.Close()
		}
		close(s.done)
	})
}

// clientEnded classifies the client connection's end. A client that leaves
// after its sessions finished quit; one that vanishes mid-session dropped.
func (s *session) clientEnded(err error) endCause {
	if s.targetDropped.Load() {
		return endCause{schema.EndUpstreamClosed, "the target closed a session channel mid-command"}
	}
	if n := s.liveSessions.Load(); n > 0 {
		msg := fmt.Sprintf("client connection lost with %d session channel(s) open", n)
		if err != nil && !errors.Is(err, io.EOF) {
			msg += ": " + err.Error()
		}
		return endCause{schema.EndNetworkError, msg}
	}
	return endCause{schema.EndClientQuit, "client disconnected"}
}

func (s *session) upstreamEnded(err error) endCause {
	msg := "the target closed the connection"
	if err != nil && !errors.Is(err, io.EOF) {
		msg += ": " + err.Error()
	}
	return endCause{schema.EndUpstreamClosed, msg}
}

// record checks a recorder call. Under fail-closed the recorder returns an
// error and the session must end.
func (s *session) record(err error) {
	if err != nil {
		s.log.Error("recording failed; ending the session (fail-closed)", "error", err)
		s.terminate(endCause{schema.EndRecordingError, err.Error()})
	}
}

func (s *session) touch() { s.activity.Touch(time.Now()) }

// serveChannels dispatches the channels the client opens.
func (s *session) serveChannels(chans <-chan gossh.NewChannel) {
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			s.spawn(func() { s.serveSession(nc) })
		case "direct-tcpip":
			if !s.acct.AllowPortForward {
				s.log.Info("port forward refused", "reason", "allow_port_forwarding is off for the account")
				_ = nc.Reject(gossh.Prohibited, fmt.Sprintf("pamtrail: port forwarding is not allowed for account %q", s.acct.Name))
				continue
			}
			s.spawn(func() { s.serveForward(nc) })
		default:
			// x11 and auth-agent channels are opened by the server side,
			// never by a client; anything else is unknown.
			_ = nc.Reject(gossh.UnknownChannelType, fmt.Sprintf("pamtrail: channel type %q is not supported", nc.ChannelType()))
		}
	}
}

// refuseUpstreamChannels rejects channels the target opens toward the
// client: X11, agent and remote port forwards are all refused.
func (s *session) refuseUpstreamChannels() {
	for nc := range s.up.chans {
		_ = nc.Reject(gossh.Prohibited, "pamtrail: channels from the target are not allowed")
	}
}

// refuseGlobalRequests answers every global request with failure:
// keepalive@openssh.com (a failure reply proves liveness), tcpip-forward
// (remote forwarding is not supported), hostkeys-00@openssh.com and the rest.
func refuseGlobalRequests(reqs <-chan *gossh.Request) {
	for req := range reqs {
		if req.WantReply {
			_ = req.Reply(false, nil)
		}
	}
}

// watchLimits enforces the account's idle_timeout and max_duration until
// the session ends for another reason (done).
func (s *session) watchLimits() {
	limits := engine.AccountLimits(s.acct, s.info.Start)
	limits.Activity, limits.EndRequested = &s.activity, s.done
	if r := engine.WatchLimits(limits); r == engine.StopIdle || r == engine.StopMaxDuration {
		reason, message := limits.LimitEnd(r)
		s.terminate(endCause{reason, message})
	}
}

// keepalive probes one side with keepalive@openssh.com and drops the
// session when KeepaliveMax probes in a row go unanswered: a peer that
// vanished without closing TCP would otherwise hold the session forever.
func (s *session) keepalive(conn gossh.Conn, side string) {
	interval, maxMissed := s.e.opts.KeepaliveInterval, s.e.opts.KeepaliveMax
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	replies := make(chan error, 1)
	inflight, missed := false, 0
	for {
		select {
		case <-s.done:
			if inflight {
				<-replies // SendRequest returns once the connection is closed
			}
			return
		case <-replies:
			inflight, missed = false, 0
		case <-ticker.C:
			if inflight {
				missed++
				if missed >= maxMissed {
					s.terminate(endCause{schema.EndNetworkError, fmt.Sprintf("the %s did not answer %d keepalives %s apart", side, missed, interval)})
				}
				continue
			}
			inflight = true
			go func() {
				_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
				replies <- err
			}()
		}
	}
}
