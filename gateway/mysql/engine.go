// Package mysql is pamtrail's MySQL and MariaDB engine: it authenticates
// gateway users over the MySQL protocol, logs in to the account's server
// with the account's own credentials, relays the session and records every
// command with its response.
//
// Layout: engine.go accepts connections; handshake.go runs the client's
// handshake and authentication; upstream.go logs in upstream; session.go
// supervises a live session and relays its packets; tracker*.go pair
// commands with responses for the recorder; wire/ is the protocol's framing.
package mysql

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
)

// Options configure an Engine: the MySQL engine needs only the Deps every
// engine takes.
type Options struct {
	engine.Deps
}

// Engine serves the MySQL protocol. Its embedded Lifecycle serves, tracks
// and shuts it down (engine.Engine).
type Engine struct {
	*engine.Lifecycle
	engine.Deps
	serverTLS   *tls.Config
	upstreamTLS *engine.UpstreamTLS
	// rsaKey answers caching_sha2_password clients without TLS, which send
	// the password encrypted to it.
	rsaKey      *rsa.PrivateKey
	rsaPEM      []byte
	mockSecret  []byte
	lim         limits
	recordOn    bool
	authTimeout time.Duration
	maxPacket   int
	// fastAuth caches SHA256(SHA256(password)) of users who completed a
	// full authentication, as MySQL's caching_sha2_password does, so their
	// next logins need neither TLS nor RSA.
	fastAuth sync.Map // user name -> [32]byte
	// threads maps the connection ids the gateway hands clients to their
	// upstream thread, so KILL [QUERY] n from another connection reaches it.
	threads sync.Map // uint32 -> thread
	nextID  atomic.Uint32

	versionOnce sync.Once
	version     string
}

// thread is a live session's upstream connection, for KILL.
type thread struct {
	account  string
	upstream uint32
}

var _ engine.Engine = (*Engine)(nil)

// New checks what the engine needs from the configuration, which must be
// defaulted and validated (config.Parse), and prepares TLS and RSA keys;
// it does not listen.
func New(opts Options) (*Engine, error) {
	deps, err := engine.ResolveDeps(opts.Deps, "mysql", func(c *config.Config) bool { return c.MySQL != nil })
	if err != nil {
		return nil, err
	}
	cfg := deps.Config
	if cfg.MySQL.AuthTimeout <= 0 || cfg.MySQL.MaxPacketBytes <= 0 {
		return nil, errors.New("mysql: mysql.auth_timeout and max_packet_bytes must be set (use a config from config.Parse)")
	}
	e := &Engine{
		Deps:        deps,
		recordOn:    cfg.Recording.RecordingEnabled(),
		authTimeout: cfg.MySQL.AuthTimeout.D(),
		maxPacket:   int(cfg.MySQL.MaxPacketBytes),
		lim:         newLimits(cfg.Recording),
	}
	if t := cfg.MySQL.TLS; t != nil {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mysql.tls: loading cert_file/key_file: %w", err)
		}
		e.serverTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if t.ClientCAFile != "" {
			pool, err := config.LoadCertPool(t.ClientCAFile)
			if err != nil {
				return nil, fmt.Errorf("mysql.tls.client_ca_file: %w", err)
			}
			e.serverTLS.ClientCAs, e.serverTLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	// A cached fast-auth hash may belong to a password a reload changed.
	if e.upstreamTLS, err = engine.WatchUpstreamTLS(deps, "mysql", e.fastAuth.Clear); err != nil {
		return nil, err
	}
	if e.rsaKey, e.rsaPEM, err = newRSAKey(); err != nil {
		return nil, fmt.Errorf("mysql: generating the RSA key for caching_sha2_password: %w", err)
	}
	e.mockSecret = make([]byte, 32)
	if _, err := rand.Read(e.mockSecret); err != nil {
		return nil, err
	}
	var seed [4]byte
	_, _ = rand.Read(seed[:])
	e.nextID.Store(uint32(seed[0])<<16 | uint32(seed[1])<<8 | uint32(seed[2]))
	e.Lifecycle = engine.NewLifecycle(engine.Options{Protocol: "mysql", Logger: e.Logger, Handle: e.serveConn})
	return e, nil
}

// serveConn runs one client connection from handshake to session end.
func (e *Engine) serveConn(raw net.Conn) {
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := newClientConn(e, raw)
	defer func() { _ = c.conn.Close() }()
	// Everything before the session is bounded by the auth timeout.
	_ = raw.SetDeadline(time.Now().Add(e.authTimeout))
	s, err := c.establish()
	if err != nil {
		c.fail(err)
		return
	}
	s.run()
}
