package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// EndGrace is how long Shutdown waits, after its deadline has ended the
// live sessions, for them to record their end, and then again after
// closing what is left. It bounds a shutdown at its deadline plus twice
// EndGrace, whatever a session or a peer does.
const EndGrace = 5 * time.Second

// ShutdownMessage is the message a session ended by Shutdown records.
const ShutdownMessage = "the gateway is shutting down"

// EndFunc ends one live session: the engine stops relaying, tells the
// client why where its protocol can, and records the end with reason (a
// schema.End* value) and message before its handler returns. It may be
// called more than once and after the session ended on its own; only the
// first call counts. It must not block: the ending happens on the
// session's own goroutines.
type EndFunc func(reason, message string)

// Options configure a Lifecycle.
type Options struct {
	// Protocol names the engine ("postgres", "ssh").
	Protocol string
	// Logger is the engine's logger (see Logger).
	Logger *slog.Logger
	// Handle serves one accepted connection until it is done, in its own
	// goroutine. The lifecycle closes the connection after Handle returns.
	Handle func(net.Conn)
	// Release, if set, frees what sessions share (the PostgreSQL event
	// loops). Shutdown calls it once: after every handler has returned, or
	// when EndGrace has run out, to unblock the sessions still using it.
	Release func()
}

// Lifecycle serves an engine's listeners, tracks its connections and
// sessions, and shuts it down. It implements Engine.
type Lifecycle struct {
	opts   Options
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	pending   map[net.Conn]struct{}   // accepted, no session yet
	sessions  map[string]*liveSession // by session id
	handlers  sync.WaitGroup
	release   sync.Once
}

type liveSession struct {
	info SessionInfo
	conn net.Conn
	end  EndFunc
}

var _ Engine = (*Lifecycle)(nil)

// NewLifecycle returns a lifecycle that runs opts.Handle for every
// connection its Serve accepts.
func NewLifecycle(opts Options) *Lifecycle {
	if opts.Logger == nil {
		opts.Logger = Logger(nil, opts.Protocol)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Lifecycle{
		opts:      opts,
		log:       opts.Logger,
		ctx:       ctx,
		cancel:    cancel,
		listeners: map[net.Listener]struct{}{},
		pending:   map[net.Conn]struct{}{},
		sessions:  map[string]*liveSession{},
	}
}

// Protocol implements Engine.
func (l *Lifecycle) Protocol() string { return l.opts.Protocol }

// Context is cancelled when Shutdown starts. Engines bound the work before
// a session exists with it (upstream dials, handshakes); live sessions go
// on until Shutdown's deadline.
func (l *Lifecycle) Context() context.Context { return l.ctx }

// Stopping reports whether Shutdown has started.
func (l *Lifecycle) Stopping() bool { return l.ctx.Err() != nil }

// Serve implements Engine: it accepts connections on ln and hands each to
// Options.Handle until ln is closed or Shutdown is called.
func (l *Lifecycle) Serve(ln net.Listener) error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	l.listeners[ln] = struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.listeners, ln)
		l.mu.Unlock()
	}()
	for {
		c, err := Accept(ln, l.Stopping, l.log)
		if err != nil {
			if l.Stopping() {
				return nil
			}
			return fmt.Errorf("%s: accept: %w", l.opts.Protocol, err)
		}
		l.mu.Lock()
		if l.closing {
			l.mu.Unlock()
			_ = c.Close()
			return nil
		}
		l.pending[c] = struct{}{}
		l.handlers.Add(1)
		l.mu.Unlock()
		go l.handle(c)
	}
}

func (l *Lifecycle) handle(c net.Conn) {
	defer l.handlers.Done()
	defer func() {
		l.mu.Lock()
		delete(l.pending, c)
		l.mu.Unlock()
		_ = c.Close()
	}()
	l.opts.Handle(c)
}

// Register adds the session served on conn (the connection Handle was
// given) to the registry, where Shutdown and EndSession find it; call the
// returned function once the session's end is recorded. If the engine is
// already shutting down, end is called at once with gateway_shutdown.
func (l *Lifecycle) Register(conn net.Conn, info SessionInfo, end EndFunc) (unregister func()) {
	info.Protocol = l.opts.Protocol
	s := &liveSession{info: info, conn: conn, end: end}
	l.mu.Lock()
	delete(l.pending, conn)
	l.sessions[info.ID] = s
	closing := l.closing
	l.mu.Unlock()
	if closing {
		end(schema.EndShutdown, ShutdownMessage)
	}
	return func() {
		l.mu.Lock()
		if l.sessions[info.ID] == s {
			delete(l.sessions, info.ID)
		}
		l.mu.Unlock()
	}
}

// Sessions implements Engine, oldest session first.
func (l *Lifecycle) Sessions() []SessionInfo {
	l.mu.Lock()
	out := make([]SessionInfo, 0, len(l.sessions))
	for _, s := range l.sessions {
		out = append(out, s.info)
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.Start.Compare(b.Start) })
	return out
}

// EndSession implements Engine; false when no live session has that id.
func (l *Lifecycle) EndSession(id, reason, message string) bool {
	return l.EndSessions(func(s SessionInfo) bool { return s.ID == id }, reason, message) > 0
}

// EndSessions implements Engine.
func (l *Lifecycle) EndSessions(match func(SessionInfo) bool, reason, message string) int {
	var ends []EndFunc
	l.mu.Lock()
	for _, s := range l.sessions {
		if match(s.info) {
			ends = append(ends, s.end)
		}
	}
	l.mu.Unlock()
	for _, end := range ends {
		end(reason, message)
	}
	return len(ends)
}

// Shutdown implements Engine, and is the one shutdown contract of every
// engine:
//
//  1. It stops accepting at once: listeners close, connections without a
//     session yet (handshakes, authentication) get a past deadline, and
//     Context is cancelled.
//  2. Live sessions go on until ctx is done; Shutdown returns nil as soon
//     as the last one ends on its own.
//  3. At ctx's deadline every live session is ended with reason
//     gateway_shutdown, which the engine records, and Shutdown waits up to
//     EndGrace for them to finish.
//  4. Then it closes whatever connections are left, releases what sessions
//     share, waits up to EndGrace once more and returns an error naming
//     what is still running. It never waits without bound.
//
// It is safe to call before Serve and more than once.
func (l *Lifecycle) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	if !l.closing {
		l.closing = true
		l.cancel()
		for ln := range l.listeners {
			_ = ln.Close()
		}
		// A past deadline rather than a close: the handler can still
		// tell its client why, under a deadline of its own.
		for c := range l.pending {
			_ = c.SetDeadline(time.Now())
		}
	}
	l.mu.Unlock()
	done := make(chan struct{})
	go func() {
		l.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		l.releaseShared()
		return nil
	case <-ctx.Done():
	}
	if n := l.EndSessions(func(SessionInfo) bool { return true }, schema.EndShutdown, ShutdownMessage); n > 0 {
		l.log.Info("shutdown deadline reached; ending live sessions", "sessions", n)
	}
	if waitFor(done, EndGrace) {
		l.releaseShared()
		return nil
	}
	l.mu.Lock()
	left := len(l.pending) + len(l.sessions)
	for c := range l.pending {
		_ = c.Close()
	}
	for _, s := range l.sessions {
		_ = s.conn.Close()
	}
	l.mu.Unlock()
	l.log.Warn("sessions did not end in time; closing their connections", "connections", left, "grace", EndGrace)
	l.releaseShared()
	if waitFor(done, EndGrace) {
		return nil
	}
	return fmt.Errorf("%s: shutdown: connections still closing %s after the deadline", l.opts.Protocol, 2*EndGrace)
}

func (l *Lifecycle) releaseShared() {
	if l.opts.Release != nil {
		l.release.Do(l.opts.Release)
	}
}

func waitFor(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
