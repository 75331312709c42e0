package ssh

import (
	"errors"
	"io"
	"path"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// The copy buffer of each relay direction starts at relayBufferMin and
// doubles up to relayBufferMax while reads fill it. A channel Read drains
// every packet already received, so a full read means a bulk transfer is
// backed up behind the relay: a larger buffer then moves up to eight 32 KiB
// packets per wake-up of the copy goroutine, with one window adjustment to
// the sender instead of one per 96 KiB, which cut the gateway's CPU per GiB
// by 12-20% (README, Throughput). Interactive channels never fill 32 KiB and
// keep the small buffer: there are three relays per channel.
const (
	relayBufferMin = 32 << 10
	relayBufferMax = 256 << 10
)

// sessionChannel relays one "session" channel between the client and the
// target: requests are filtered, data is copied as is, and a tap chosen by
// the channel's kind (shell, exec, sftp) sees a copy of the bytes.
type sessionChannel struct {
	s      *session
	client gossh.Channel
	target gossh.Channel
	opened time.Time
	pty    *ptyRequest // from pty-req, before the shell/exec

	mu          sync.Mutex
	requested   bool       // a shell, exec or subsystem was requested
	running     bool       // the relays have started
	tap         channelTap // set with the request; may be nil
	sftpGuard   *sftpGuard // an sftp subsystem under an enforced files rule
	relays      sync.WaitGroup
	outputsLeft atomic.Int32  // stdout and stderr copies still running
	outputDone  chan struct{} // both done: the client has the target's EOF
	liveCounted atomic.Bool   // still counted in session.liveSessions
	clientGone  atomic.Bool   // the client closed the channel (or its connection)
}

// channelTap records one channel's traffic. The copy loops call it from
// their own goroutines, so implementations synchronise themselves. A tap
// never fails the relay: it reports recording errors to the session.
type channelTap interface {
	clientData(p []byte) // client -> target (stdin, keys)
	serverData(p []byte) // target stdout -> client
	serverStderr(p []byte)
	exit(status *int, signal string)
	resize(cols, rows int)
	close(end time.Time) // the channel is over: record what is pending
}

func (s *session) serveSession(nc gossh.NewChannel) {
	target, targetReqs, err := s.up.conn.OpenChannel("session", nc.ExtraData())
	if err != nil {
		var oce *gossh.OpenChannelError
		if errors.As(err, &oce) {
			_ = nc.Reject(oce.Reason, oce.Message)
		} else {
			_ = nc.Reject(gossh.ConnectionFailed, "pamtrail: the target refused the session: "+err.Error())
		}
		return
	}
	client, clientReqs, err := nc.Accept()
	if err != nil {
		target.Close()
		go gossh.DiscardRequests(targetReqs)
		return
	}
	c := &sessionChannel{s: s, client: client, target: target, opened: time.Now(), outputDone: make(chan struct{})}
	c.outputsLeft.Store(2)
	c.liveCounted.Store(true)
	s.liveSessions.Add(1)
	defer s.trackChannel(c)()
	c.run(clientReqs, targetReqs)
}

func (c *sessionChannel) run(clientReqs, targetReqs <-chan *gossh.Request) {
	targetDone := make(chan struct{})
	go func() {
		defer close(targetDone)
		c.forwardTargetRequests(targetReqs)
		// The target closed the channel: once its output is relayed the
		// client's side is closed too. Closed mid-command, with neither an
		// exit status nor the client leaving first, the target dropped it:
		// the client leaving afterwards is a consequence, not the cause.
		if c.notLive() && !c.clientGone.Load() {
			c.s.targetDropped.Store(true)
		}
		c.startRelays()
		<-c.outputDone
		c.client.Close()
	}()
	c.serveClientRequests(clientReqs)
	// The client closed the channel, or the connection is gone.
	c.clientGone.Store(true)
	c.startRelays()
	c.target.Close()
	<-targetDone
	c.relays.Wait()
	c.notLive()
	if tap := c.currentTap(); tap != nil {
		tap.close(time.Now())
	}
}

// notLive takes the channel out of the session's live count once, and
// reports whether this call did.
func (c *sessionChannel) notLive() bool {
	if c.liveCounted.CompareAndSwap(true, false) {
		c.s.liveSessions.Add(-1)
		return true
	}
	return false
}

func (c *sessionChannel) serveClientRequests(reqs <-chan *gossh.Request) {
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			pty, err := parsePtyRequest(req.Payload)
			if err != nil {
				c.s.log.Info("malformed pty-req refused", "error", err)
				reply(req, false)
				continue
			}
			if c.started() {
				reply(req, false)
				continue
			}
			c.mu.Lock() // notice reads it from the session's end
			c.pty = pty
			c.mu.Unlock()
			forwardRequest(c.target, req)
		case "env":
			name, ok := parseEnvName(req.Payload)
			if !ok || !c.envAllowed(name) {
				c.s.log.Debug("environment variable refused", "name", name)
				reply(req, false)
				continue
			}
			forwardRequest(c.target, req)
		case "shell", "exec", "subsystem":
			c.start(req)
		case "window-change":
			cols, rows, ok := parseWindowChange(req.Payload)
			if tap := c.currentTap(); ok && tap != nil {
				tap.resize(cols, rows)
			}
			forwardRequest(c.target, req)
		case "signal", "break", "xon-xoff":
			forwardRequest(c.target, req)
		case "auth-agent-req@openssh.com", "x11-req":
			c.s.log.Info("forwarding request refused", "request", req.Type)
			reply(req, false)
		default:
			reply(req, false)
		}
	}
}

// start handles the one shell, exec or subsystem request of the channel:
// it picks the tap, forwards the request and starts relaying. The tap is
// in place before the request goes out: a quick command's output and exit
// status can come back before the reply has been handled here.
func (c *sessionChannel) start(req *gossh.Request) {
	c.mu.Lock()
	already := c.requested
	c.requested = true
	c.mu.Unlock()
	if already {
		reply(req, false) // a channel runs one program
		return
	}
	var tap channelTap
	switch req.Type {
	case "exec":
		command, ok := parseString(req.Payload)
		if !ok {
			reply(req, false)
			return
		}
		m := c.s.checkExec(command)
		if m.Blocks() {
			c.refuseExec(req, command, m)
			return
		}
		tap = c.execTap(command, m)
	case "subsystem":
		name, ok := parseString(req.Payload)
		if !ok || name != "sftp" {
			c.s.log.Info("subsystem refused", "subsystem", name)
			reply(req, false)
			return
		}
		tap = c.sftpTap()
		if set := c.s.policy(); set.HasFiles() && set.Enforces() {
			c.mu.Lock()
			c.sftpGuard = newSFTPGuard(c, set)
			c.mu.Unlock()
		}
	case "shell":
		tap = c.shellTap()
	}
	c.mu.Lock()
	c.tap = tap
	c.mu.Unlock()
	ok, err := c.target.SendRequest(req.Type, req.WantReply, req.Payload)
	if req.WantReply {
		ok = ok && err == nil
		_ = req.Reply(ok, nil)
		if !ok && tap != nil {
			// The target refused: nothing ran, nothing to record, unless
			// the channel's end already took the tap over.
			c.mu.Lock()
			unused := !c.running
			if unused {
				c.tap = nil
			}
			c.mu.Unlock()
			if unused {
				tap.close(time.Now())
			}
		}
	}
	c.startRelays()
}

// notice writes a line for the user: on the terminal when the channel has
// a pty, else on stderr (stdout may carry a protocol: sftp, scp, rsync).
func (c *sessionChannel) notice(line string) {
	c.mu.Lock()
	pty := c.pty
	c.mu.Unlock()
	if pty != nil {
		_, _ = c.client.Write([]byte("\r\n" + line + "\r\n"))
		return
	}
	_, _ = c.client.Stderr().Write([]byte(line + "\n"))
}

// started reports whether a shell, exec or subsystem was requested.
func (c *sessionChannel) started() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requested
}

// currentTap returns the tap, nil before a program was requested.
func (c *sessionChannel) currentTap() channelTap {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tap
}

// envAllowed applies the account's env_allow list (exact names or
// path.Match patterns such as LC_*).
func (c *sessionChannel) envAllowed(name string) bool {
	for _, pattern := range c.s.acct.EnvAllow {
		if ok, _ := path.Match(pattern, name); ok || pattern == name {
			return true
		}
	}
	return false
}

// startRelays starts the copy loops once, with the tap set by then.
func (c *sessionChannel) startRelays() {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return
	}
	c.running = true
	tap := c.tap
	c.mu.Unlock()

	var clientData, serverData, serverStderr func([]byte)
	if tap != nil {
		clientData, serverData, serverStderr = tap.clientData, tap.serverData, tap.serverStderr
	}
	var keys func([]byte) []byte
	var toClient io.Writer = c.client
	if tt, ok := tap.(*terminalTap); ok {
		if set := c.s.policy(); set.HasCommands() && set.Enforces() {
			keys = newTerminalGuard(c, tt, set).filter
		}
	}
	c.mu.Lock()
	if g := c.sftpGuard; g != nil {
		keys, toClient = g.filter, g
	}
	c.mu.Unlock()
	c.relays.Add(3)
	go func() {
		defer c.relays.Done()
		c.s.copyFiltered(c.target, c.client, keys, clientData, &c.s.bytesIn)
		_ = c.target.CloseWrite()
	}()
	go func() {
		defer c.relays.Done()
		c.s.copyData(toClient, c.target, serverData, &c.s.bytesOut)
		c.outputFinished()
	}()
	go func() {
		defer c.relays.Done()
		c.s.copyData(c.client.Stderr(), c.target.Stderr(), serverStderr, &c.s.bytesOut)
		c.outputFinished()
	}()
}

// outputFinished runs as each of stdout and stderr ends; after both, the
// client gets the target's EOF.
func (c *sessionChannel) outputFinished() {
	if c.outputsLeft.Add(-1) == 0 {
		_ = c.client.CloseWrite()
		close(c.outputDone)
	}
}

// copyData copies src to dst until either fails, showing each chunk to the
// tap before it is forwarded. Taps copy what they keep, so the buffer is
// reused, or replaced by a larger one once a read fills it.
func (s *session) copyData(dst io.Writer, src io.Reader, tap func([]byte), counter *atomic.Int64) {
	s.copyFiltered(dst, src, nil, tap, counter)
}

// copyFiltered is copyData where filter, when set, decides what of each
// chunk is forwarded (and shown to the tap).
func (s *session) copyFiltered(dst io.Writer, src io.Reader, filter func([]byte) []byte, tap func([]byte), counter *atomic.Int64) {
	buf := make([]byte, relayBufferMin)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			s.touch()
			counter.Add(int64(n))
			out := buf[:n]
			if filter != nil {
				out = filter(out)
			}
			if tap != nil {
				tap(out)
			}
			if _, werr := dst.Write(out); werr != nil {
				return
			}
			if n == len(buf) && len(buf) < relayBufferMax {
				buf = make([]byte, 2*len(buf))
			}
		}
		if err != nil {
			return
		}
	}
}

// forwardTargetRequests relays the target's channel requests (exit-status,
// exit-signal, eow@openssh.com, keepalives) to the client.
func (c *sessionChannel) forwardTargetRequests(reqs <-chan *gossh.Request) {
	for req := range reqs {
		switch req.Type {
		case "exit-status":
			if status, ok := parseUint32(req.Payload); ok {
				c.exit(intPtr(int(status)), "")
			}
		case "exit-signal":
			if signal, ok := parseString(req.Payload); ok {
				c.exit(nil, signal)
			}
		}
		forwardRequest(c.client, req)
	}
}

// exit notes the program's end: from here on the client leaving is not a
// drop mid-session.
func (c *sessionChannel) exit(status *int, signal string) {
	c.notLive()
	if tap := c.currentTap(); tap != nil {
		tap.exit(status, signal)
	}
}

func forwardRequest(dst gossh.Channel, req *gossh.Request) {
	ok, err := dst.SendRequest(req.Type, req.WantReply, req.Payload)
	reply(req, ok && err == nil)
}

func reply(req *gossh.Request, ok bool) {
	if req.WantReply {
		_ = req.Reply(ok, nil)
	}
}

func intPtr(v int) *int { return &v }
