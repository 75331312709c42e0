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
	"net"
	"runtime"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
)

// Options configure an Engine: the Deps every engine takes, and how long
// logging in upstream may take.
type Options struct {
	engine.Deps
	// ConnectTimeout bounds connecting and logging in upstream; zero
	// means the listener's auth_timeout.
	ConnectTimeout time.Duration
}

// Engine serves the PostgreSQL protocol. Its embedded Lifecycle serves,
// tracks and shuts it down (engine.Engine).
type Engine struct {
	*engine.Lifecycle
	engine.Deps
	// stopCtx is cancelled when Shutdown starts: it bounds logins and
	// cancel requests still in progress.
	stopCtx context.Context

	serverTLS   *tls.Config
	cbind       []byte
	upstreamTLS *engine.UpstreamTLS
	mockSecret  []byte
	cancels     *cancelRegistry
	lim         limits
	recordOn    bool
	authTimeout time.Duration
	connTimeout time.Duration
	maxMessage  int
	loops       *eventLoops // nil when postgres.event_loop is off
}

var _ engine.Engine = (*Engine)(nil)

// New checks what the engine needs from the configuration, which must be
// defaulted and validated (config.Parse), and prepares TLS material; it
// does not listen.
func New(opts Options) (*Engine, error) {
	deps, err := engine.ResolveDeps(opts.Deps, "postgres", func(c *config.Config) bool { return c.Postgres != nil })
	if err != nil {
		return nil, err
	}
	cfg := deps.Config
	if cfg.Postgres.AuthTimeout <= 0 || cfg.Postgres.MaxMessageBytes <= 0 {
		return nil, errors.New("postgres: postgres.auth_timeout and max_message_bytes must be set (use a config from config.Parse or config.Default)")
	}
	e := &Engine{
		Deps:        deps,
		cancels:     newCancelRegistry(),
		recordOn:    cfg.Recording.RecordingEnabled(),
		authTimeout: cfg.Postgres.AuthTimeout.D(),
		connTimeout: opts.ConnectTimeout,
		maxMessage:  int(cfg.Postgres.MaxMessageBytes),
		lim:         newLimits(cfg.Recording),
	}
	if n := eventLoopCount(cfg.Postgres.EventLoops); n > 0 {
		e.loops = &eventLoops{count: n}
	}
	if e.connTimeout <= 0 {
		e.connTimeout = e.authTimeout
	}
	if cfg.Postgres.TLS != nil {
		if e.serverTLS, e.cbind, err = serverTLSConfig(cfg.Postgres.TLS); err != nil {
			return nil, err
		}
	}
	if e.upstreamTLS, err = engine.WatchUpstreamTLS(deps, "postgres", nil); err != nil {
		return nil, err
	}
	e.Lifecycle = engine.NewLifecycle(engine.Options{Protocol: "postgres", Logger: e.Logger, Handle: e.serveConn, Release: e.closeLoops})
	e.stopCtx = e.Context()
	e.mockSecret = make([]byte, 32)
	if _, err := rand.Read(e.mockSecret); err != nil {
		return nil, err
	}
	return e, nil
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
	c := &clientConn{e: e, raw: raw, conn: raw}
	defer func() { _ = c.conn.Close() }()
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c.remoteAddr, c.remotePort = engine.SplitAddr(raw.RemoteAddr())
	// Everything before the session is bounded by the auth timeout; an
	// engine shutdown closes the connection.
	_ = raw.SetDeadline(time.Now().Add(e.authTimeout))
	sess, err := c.establish()
	if err != nil {
		c.fail(err)
		return
	}
	sess.run()
}
