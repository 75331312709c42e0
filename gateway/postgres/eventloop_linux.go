//go:build linux

package postgres

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// The event loop relays plaintext sessions the way pgbouncer does: a few
// goroutines each wait in epoll_wait on many sockets, and a readable socket
// is read once and written straight to its peer. The goroutine-per-direction
// relay in relay.go costs, per round trip, a failed read (EAGAIN) on each
// side, a goroutine park and wake-up, and often a thread hand-off through
// the scheduler; under pgbench -S on two cores that was about a third of the
// gateway's CPU per transaction. Sessions the loop cannot take keep the
// goroutine relay: TLS on either hop, and recording that may wait for the
// disk (strict mode, spool.fsync: always), which would stall every session
// of the loop for each fsync (BenchmarkFsyncAlwaysEventLoop).

// eventLoops is the engine's set of loops, started on first use.
type eventLoops struct {
	count int
	once  sync.Once
	err   error
	loops []*eventLoop
	next  atomic.Uint32
}

// pick returns a loop for a new session, starting the loops on first use.
func (ls *eventLoops) pick() (*eventLoop, error) {
	ls.once.Do(func() {
		for range max(1, ls.count) {
			l, err := newEventLoop()
			if err != nil {
				ls.err = err
				break
			}
			ls.loops = append(ls.loops, l)
		}
		if ls.err != nil {
			for _, l := range ls.loops {
				l.close()
			}
			ls.loops = nil
		}
	})
	if ls.err != nil {
		return nil, ls.err
	}
	if len(ls.loops) == 0 {
		// close ran before any session needed a loop: the engine is
		// shutting down.
		return nil, errLoopsClosed
	}
	return ls.loops[ls.next.Add(1)%uint32(len(ls.loops))], nil
}

var errLoopsClosed = errors.New("postgres: event loops are closed")

// close stops every loop; sessions must have ended first.
func (ls *eventLoops) close() {
	ls.once.Do(func() {}) // no loops may start after this
	for _, l := range ls.loops {
		l.close()
	}
}

// eventLoop owns an epoll instance and the sockets registered in it. Only
// its goroutine touches ends; others hand it work through submit.
type eventLoop struct {
	epfd, wakefd int
	ends         map[int]*loopEnd // by socket fd

	mu     sync.Mutex
	queue  []func()
	closed bool
	done   chan struct{}
}

// loopEnd is one direction of a session: it reads fd and writes to
// peer.fd, as one pump of relay.go does.
type loopEnd struct {
	s          *session
	fd         int
	peer       *loopEnd
	sc         *frameScanner
	fromClient bool
	result     chan pumpResult

	buf        []byte
	pending    []byte // read but not yet written to peer.fd
	chunk      int    // size of the chunk pending belongs to
	finished   bool   // result delivered; fd no longer read
	registered bool
	events     uint32 // interest registered in epoll
}

func newEventLoop() (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	// The loop never blocks in epoll_wait: a goroutine in a blocking
	// syscall keeps the runtime's sysmon busy taking its P away and
	// handing it back, which cost more than the loop saved. Instead the
	// epoll descriptor itself goes into the runtime's poller (it is
	// readable while it has events), and the loop parks like any
	// goroutine waiting on a socket.
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	file := os.NewFile(uintptr(epfd), "postgres-event-loop")
	raw, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		_ = unix.Close(wakefd)
		return nil, err
	}
	l := &eventLoop{epfd: epfd, wakefd: wakefd, ends: map[int]*loopEnd{}, done: make(chan struct{})}
	go l.run(file, raw)
	return l, nil
}

// submit runs f on the loop's goroutine; it reports false once the loop is
// closed.
func (l *eventLoop) submit(f func()) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.queue = append(l.queue, f)
	l.mu.Unlock()
	var one = [8]byte{1}
	_, _ = unix.Write(l.wakefd, one[:])
	return true
}

func (l *eventLoop) close() {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.mu.Unlock()
	if already {
		return
	}
	var one = [8]byte{1}
	_, _ = unix.Write(l.wakefd, one[:])
	<-l.done
}

func (l *eventLoop) run(file *os.File, raw syscall.RawConn) {
	defer close(l.done)
	defer unix.Close(l.wakefd)
	defer file.Close()
	events := make([]unix.EpollEvent, 128)
	err := raw.Read(func(uintptr) bool {
		for {
			n, err := unix.EpollWait(l.epfd, events, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				// Cannot happen with a valid epfd; end the sessions
				// rather than spin.
				l.abandonAll(os.NewSyscallError("epoll_wait", err))
				return true
			}
			if n == 0 {
				return false // park until the epoll descriptor is readable
			}
			for _, ev := range events[:n] {
				fd := int(ev.Fd)
				if fd == l.wakefd {
					if !l.runQueue() {
						l.abandonAll(net.ErrClosed)
						return true
					}
					continue
				}
				if end := l.ends[fd]; end != nil {
					l.handle(end, ev.Events)
				}
			}
		}
	})
	if err != nil {
		l.abandonAll(err)
	}
}

// runQueue drains the wake-up counter and runs submitted work; it reports
// false when the loop must stop.
func (l *eventLoop) runQueue() bool {
	var b [8]byte
	_, _ = unix.Read(l.wakefd, b[:])
	l.mu.Lock()
	queue, closed := l.queue, l.closed
	l.queue = nil
	l.mu.Unlock()
	for _, f := range queue {
		f()
	}
	return !closed
}

// handle serves one readiness event of end's socket: writable means the
// peer's pending bytes can go on; readable means a chunk can be relayed.
func (l *eventLoop) handle(end *loopEnd, ev uint32) {
	if end.peer.pending != nil && ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		l.flush(end.peer)
	}
	if !end.finished && end.pending == nil && ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		l.relay(end)
	}
	canRead := !end.finished && end.pending == nil
	if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 && !canRead && end.peer.pending == nil {
		// A hung-up socket stays ready for ever, and nothing can be done
		// with it now: stop watching it so the loop does not spin. update
		// adds it back once it is wanted again.
		l.unregister(end)
	} else {
		l.update(end)
	}
	l.update(end.peer)
}

// relay reads one chunk from end's socket and writes it to the peer.
func (l *eventLoop) relay(end *loopEnd) {
	n, err := unix.Read(end.fd, end.buf)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil:
		l.finish(end, pumpResult{err: os.NewSyscallError("read", err)})
		return
	case n == 0:
		l.finish(end, pumpResult{err: io.EOF})
		return
	}
	if err := end.s.observe(end.buf[:n], end.sc, end.fromClient); err != nil {
		l.finish(end, pumpResult{err: err})
		return
	}
	end.pending, end.chunk = end.buf[:n], n
	l.flush(end)
}

// flush writes end's pending bytes to the peer socket, as far as it takes
// them now; the rest waits for the peer to become writable, and end's
// socket is not read meanwhile (backpressure, as a blocking write gives).
func (l *eventLoop) flush(end *loopEnd) {
	for len(end.pending) > 0 {
		w, err := unix.Write(end.peer.fd, end.pending)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			end.pending = nil
			l.finish(end, pumpResult{err: os.NewSyscallError("write", err), writeFailed: true})
			return
		}
		end.pending = end.pending[w:]
	}
	end.pending = nil
	end.s.counter(end.fromClient).Add(int64(end.chunk))
	if end.fromClient && end.s.terminated.Load() {
		l.finish(end, pumpResult{})
	}
}

// finish delivers end's result, as a returning pump does.
func (l *eventLoop) finish(end *loopEnd, r pumpResult) {
	if end.finished {
		return
	}
	end.finished = true
	end.result <- r // buffered; each end delivers once
}

// update registers the interest end's socket needs now: reading while its
// direction runs and nothing waits to be written, writing while the peer
// has pending bytes for it.
func (l *eventLoop) update(end *loopEnd) {
	var want uint32
	if !end.finished && end.pending == nil {
		want |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if end.peer.pending != nil {
		want |= unix.EPOLLOUT
	}
	if end.registered && want == end.events {
		return
	}
	ev := unix.EpollEvent{Events: want, Fd: int32(end.fd)}
	op := unix.EPOLL_CTL_MOD
	if !end.registered {
		if want == 0 {
			return
		}
		op = unix.EPOLL_CTL_ADD
	}
	if err := unix.EpollCtl(l.epfd, op, end.fd, &ev); err != nil {
		l.finish(end, pumpResult{err: os.NewSyscallError("epoll_ctl", err)})
		return
	}
	end.registered, end.events = true, want
}

func (l *eventLoop) unregister(end *loopEnd) {
	if end.registered {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, end.fd, nil)
		end.registered = false
	}
}

// detach takes a session's two ends out of the loop. Directions still
// running stop with net.ErrClosed, like a pump whose socket was closed.
// It returns the server bytes read but not yet written to the client.
func (l *eventLoop) detach(client, server *loopEnd) []byte {
	for _, end := range []*loopEnd{client, server} {
		l.unregister(end)
		delete(l.ends, end.fd)
		l.finish(end, pumpResult{err: net.ErrClosed})
	}
	unsent := server.pending
	client.pending, server.pending = nil, nil
	return unsent
}

// abandonAll ends every session on a loop that has to stop.
func (l *eventLoop) abandonAll(err error) {
	for _, end := range l.ends {
		l.unregister(end)
		l.finish(end, pumpResult{err: err})
	}
	clear(l.ends)
}

// loopRelay is a session relayed by an event loop.
type loopRelay struct {
	loop           *eventLoop
	client, server *loopEnd
}

// startLoopRelay moves the session's sockets into an event loop. It
// reports false, leaving the session untouched, when they cannot move.
func (s *session) startLoopRelay(cs, ss *frameScanner, clientDone, serverDone chan pumpResult) (*loopRelay, bool) {
	// A filtered session rewrites messages, which the loop's one-read,
	// one-write relay does not do.
	if s.e.loops == nil || s.rec.MayBlock() || s.filter != nil {
		return nil, false
	}
	cfd, ok1 := plainSocketFD(s.client)
	ufd, ok2 := plainSocketFD(s.upstream)
	if !ok1 || !ok2 {
		return nil, false
	}
	l, err := s.e.loops.pick()
	if err != nil {
		s.log.Warn("postgres: event loop unavailable; relaying with goroutines", "error", err)
		return nil, false
	}
	// Own duplicates of the sockets, and close the originals so the Go
	// runtime's poller stops watching them: it would otherwise wake up for
	// every packet the loop handles.
	cdup, err := dupCloexec(cfd)
	if err != nil {
		return nil, false
	}
	udup, err := dupCloexec(ufd)
	if err != nil {
		_ = unix.Close(cdup)
		return nil, false
	}
	_ = s.client.Close()
	_ = s.upstream.Close()
	client := &loopEnd{s: s, fd: cdup, sc: cs, fromClient: true, result: clientDone, buf: make([]byte, clientBufSize)}
	server := &loopEnd{s: s, fd: udup, sc: ss, result: serverDone, buf: make([]byte, serverBufSize)}
	client.peer, server.peer = server, client
	r := &loopRelay{loop: l, client: client, server: server}
	registered := l.submit(func() {
		l.ends[cdup], l.ends[udup] = client, server
		l.update(client)
		l.update(server)
	})
	if !registered {
		// The engine is shutting down: end both directions at once.
		client.finished, server.finished = true, true
		clientDone <- pumpResult{err: net.ErrClosed}
		serverDone <- pumpResult{err: net.ErrClosed}
	}
	return r, true
}

// stop takes the session out of the loop, closes the upstream socket and
// gives the client socket back as a net.Conn for the session's last words.
// Server bytes already read are written to the client first (bounded by
// the caller's write deadline), so a final error message never lands in
// the middle of a message.
func (r *loopRelay) stop() (client net.Conn, unsent []byte, err error) {
	done := make(chan struct{})
	if r.loop.submit(func() {
		unsent = r.loop.detach(r.client, r.server)
		close(done)
	}) {
		<-done
	}
	_ = unix.Close(r.server.fd)
	f := os.NewFile(uintptr(r.client.fd), "postgres-client")
	client, err = net.FileConn(f) // duplicates the socket into the runtime's poller
	_ = f.Close()
	return client, unsent, err
}

// plainSocketFD returns the socket of a plain TCP or unix connection.
func plainSocketFD(c net.Conn) (int, bool) {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return -1, false
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, false
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, false
	}
	return fd, fd >= 0
}

func dupCloexec(fd int) (int, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, errors.Join(errors.New("duplicating a socket for the event loop"), err)
	}
	return nfd, nil
}
