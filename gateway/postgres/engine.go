// Package postgres is pamtrail's PostgreSQL engine: it authenticates gateway
// users over the PostgreSQL wire protocol (SCRAM-SHA-256), connects to the
// account's server with the account's own credentials, relays the session
// and records every statement with its response.
//
// Layout: engine.go accepts connections; startup.go and clientauth.go run
// the client's startup and authentication; upstream.go logs in upstream;
// session.go supervises a live session and relay.go moves its bytes;
// framer.go splits streams into messages; tracker*.go pair statements with
// responses for the recorder.
package postgres

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// Options configure an Engine. Config and Recorder are required.
type Options struct {
	Config    *config.Config
	Recorder  recorder.Recorder
	Logger    *slog.Logger
	GatewayID string
	// Dial connects to upstream servers; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// ConnectTimeout bounds connecting and logging in upstream; zero
	// means the listener's auth_timeout.
	ConnectTimeout time.Duration
}

// Engine serves the PostgreSQL protocol. It implements engine.Engine.
type Engine struct {
	cfg       *config.Config
	rec       recorder.Recorder
	log       *slog.Logger
	gatewayID string
	dial      func(ctx context.Context, network, address string) (net.Conn, error)

	serverTLS   *tls.Config
	cbind       []byte
	upstreamTLS map[string]*tls.Config
	mockSecret  []byte
	cancels     *cancelRegistry
	lim         limits
	recordOn    bool
	authTimeout time.Duration
	connTimeout time.Duration
	maxMessage  int
	loops       *eventLoops // nil when postgres.event_loop is off

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closing   bool
	stop      chan struct{} // closed by Shutdown
	stopCtx   context.Context
	stopAll   context.CancelFunc
	wg        sync.WaitGroup
}

var _ engine.Engine = (*Engine)(nil)

// New validates what the engine needs from the configuration and prepares
// TLS material; it does not listen.
func New(opts Options) (*Engine, error) {
	cfg := opts.Config
	switch {
	case cfg == nil:
		return nil, errors.New("postgres: Options.Config is required")
	case cfg.Postgres == nil:
		return nil, errors.New("postgres: config has no postgres listener section")
	case opts.Recorder == nil:
		return nil, errors.New("postgres: Options.Recorder is required")
	}
	e := &Engine{
		cfg:         cfg,
		rec:         opts.Recorder,
		log:         opts.Logger,
		gatewayID:   opts.GatewayID,
		dial:        opts.Dial,
		upstreamTLS: map[string]*tls.Config{},
		cancels:     newCancelRegistry(),
		recordOn:    cfg.Recording.RecordingEnabled(),
		authTimeout: cfg.Postgres.AuthTimeout.D(),
		connTimeout: opts.ConnectTimeout,
		maxMessage:  int(cfg.Postgres.MaxMessageBytes),
		listeners:   map[net.Listener]struct{}{},
		conns:       map[net.Conn]struct{}{},
		stop:        make(chan struct{}),
		lim: limits{
			previewRows:   cfg.Recording.PreviewRows,
			previewBytes:  int(cfg.Recording.PreviewBytes),
			maxParamBytes: int(cfg.Recording.MaxParamBytes),
			maxTextBytes:  int(cfg.Recording.MaxTextBytes),
		},
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.With("engine", "postgres")
	if e.gatewayID != "" {
		e.log = e.log.With("gateway", e.gatewayID)
	}
	if e.dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		e.dial = d.DialContext
	}
	if n := eventLoopCount(cfg.Postgres.EventLoops); n > 0 {
		e.loops = &eventLoops{count: n}
	}
	if e.authTimeout <= 0 {
		e.authTimeout = 30 * time.Second
	}
	if e.connTimeout <= 0 {
		e.connTimeout = e.authTimeout
	}
	if e.maxMessage <= 0 {
		e.maxMessage = 64 << 20
	}
	if e.lim.maxParamBytes <= 0 {
		e.lim.maxParamBytes = 1 << 10
	}
	if e.lim.previewBytes <= 0 {
		e.lim.previewBytes = 4 << 10
	}
	if cfg.Postgres.TLS != nil {
		var err error
		if e.serverTLS, e.cbind, err = serverTLSConfig(cfg.Postgres.TLS); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		if a.Type != "postgres" {
			continue
		}
		t, err := upstreamTLSConfig(fmt.Sprintf("accounts[%d]", i), a)
		if err != nil {
			return nil, err
		}
		e.upstreamTLS[a.Name] = t
	}
	e.stopCtx, e.stopAll = context.WithCancel(context.Background())
	e.mockSecret = make([]byte, 32)
	if _, err := rand.Read(e.mockSecret); err != nil {
		return nil, err
	}
	return e, nil
}

// Protocol implements engine.Engine.
func (e *Engine) Protocol() string { return "postgres" }

// Serve accepts client connections on ln until ln is closed or Shutdown.
func (e *Engine) Serve(ln net.Listener) error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	e.listeners[ln] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.listeners, ln)
		e.mu.Unlock()
	}()
	for {
		conn, err := engine.Accept(ln, e.isClosing, e.log)
		if err != nil {
			if e.isClosing() {
				return nil
			}
			return fmt.Errorf("postgres: accept: %w", err)
		}
		if !e.track(conn) {
			_ = conn.Close()
			return nil
		}
		e.wg.Add(1)
		go e.serveConn(conn)
	}
}

func (e *Engine) isClosing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closing
}

// track registers a connection so Shutdown can close it; false when the
// engine is shutting down.
func (e *Engine) track(c net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

func (e *Engine) untrack(c net.Conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
}

// Shutdown stops accepting, ends live sessions with reason gateway_shutdown
// and waits for them until ctx is done, then closes what is left.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if !e.closing {
		e.closing = true
		close(e.stop)
		e.stopAll()
		for ln := range e.listeners {
			_ = ln.Close()
		}
	}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		e.closeLoops()
		return nil
	case <-ctx.Done():
		e.mu.Lock()
		for c := range e.conns {
			_ = c.Close()
		}
		e.mu.Unlock()
		// Sessions in an event loop hold their own sockets: closing the
		// loops ends them.
		e.closeLoops()
		<-done
		return ctx.Err()
	}
}

// eventLoopCount is postgres.event_loops, or when unset one loop per four
// CPUs: a loop relays many sessions at a time, and on a small machine the
// client and the server want the other CPUs.
func eventLoopCount(configured *int) int {
	if configured != nil {
		return max(0, *configured)
	}
	return max(1, runtime.GOMAXPROCS(0)/4)
}

func (e *Engine) closeLoops() {
	if e.loops != nil {
		e.loops.close()
	}
}

// serveConn runs one client connection from startup to session end.
func (e *Engine) serveConn(raw net.Conn) {
	defer e.wg.Done()
	defer e.untrack(raw)
	c := &clientConn{e: e, raw: raw, conn: raw}
	defer func() { _ = c.conn.Close() }()
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c.remoteAddr, c.remotePort = splitAddr(raw.RemoteAddr())
	// Everything before the session is bounded by the auth timeout, and
	// an engine shutdown aborts it at once.
	_ = raw.SetDeadline(time.Now().Add(e.authTimeout))
	stopWatch := context.AfterFunc(e.stopCtx, func() { _ = raw.SetDeadline(time.Now()) })
	sess, err := c.establish()
	stopWatch()
	if err != nil {
		c.fail(err)
		return
	}
	sess.run()
}

func splitAddr(a net.Addr) (string, int) {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String(), ta.Port
	}
	if a == nil {
		return "", 0
	}
	return a.String(), 0
}
