// Package engine is what every protocol engine shares, so the gateway
// process builds and runs PostgreSQL, MySQL, SSH and any later protocol the
// same way: the Deps every engine is built from, the Engine interface, the
// Lifecycle that implements its serving, tracking and shutdown, the
// supervision that ends sessions on their account's limits, and the small
// connection helpers every engine needs.
//
// An engine embeds its resolved Deps (ResolveDeps) and a Lifecycle built
// with its connection handler; the handler registers each session once it
// has one, so Shutdown and live control (Sessions, EndSession) see every
// protocol's sessions alike, and supervises it with Supervise or
// SuperviseSession.
package engine

import (
	"context"
	"log/slog"
	"net"

	"github.com/pamtrail/pamtrail/gateway/engine/live"
)

// Engine serves one protocol on a listener. *Lifecycle implements all of it
// but Protocol's name, which it takes from its options.
type Engine interface {
	// Protocol names the engine ("postgres", "ssh") for logs and metrics.
	Protocol() string
	// Serve accepts connections until ln is closed or Shutdown is called.
	// It returns nil after Shutdown.
	Serve(ln net.Listener) error
	// Shutdown follows the contract documented on Lifecycle.Shutdown.
	Shutdown(ctx context.Context) error
	// Registry lists and ends the live sessions, for live control.
	live.Registry
}

// SessionInfo is what the lifecycle knows of a live session (see
// live.SessionInfo); the alias lets engines register sessions without
// importing package live.
type SessionInfo = live.SessionInfo

// Logger is an engine's logger: l, or a discarding one when l is nil (a
// library logs only where its caller asks), with the engine's name.
func Logger(l *slog.Logger, protocol string) *slog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With("engine", protocol)
}

// SplitAddr returns the host and port of a connection's address; the port
// is 0 for an address that is not TCP, and both are empty for nil.
func SplitAddr(a net.Addr) (string, int) {
	switch a := a.(type) {
	case nil:
		return "", 0
	case *net.TCPAddr:
		if a == nil {
			return "", 0
		}
		return a.IP.String(), a.Port
	default:
		return a.String(), 0
	}
}

// PrefixedConn returns c with prefix, bytes already read from c while
// sniffing the protocol, put back in front of what c reads next.
func PrefixedConn(c net.Conn, prefix []byte) net.Conn {
	return &prefixedConn{Conn: c, prefix: prefix}
}

type prefixedConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixedConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
