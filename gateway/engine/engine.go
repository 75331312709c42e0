// Package engine is what every protocol engine shares, so the gateway
// process runs PostgreSQL, SSH and any later protocol the same way: the
// Engine interface, the Lifecycle that implements its serving, tracking and
// shutdown, and the small connection helpers every engine needs.
//
// An engine builds a Lifecycle with its connection handler and embeds it;
// the handler registers each session once it has one, so Shutdown and live
// control (Sessions, EndSession) see every protocol's sessions alike.
package engine

import (
	"context"
	"log/slog"
	"net"
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
	// Sessions lists the live sessions.
	Sessions() []SessionInfo
	// EndSession ends one live session by id, recording reason and message.
	EndSession(id, reason, message string) bool
	// EndSessions ends every live session match accepts and says how many.
	EndSessions(match func(SessionInfo) bool, reason, message string) int
}

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
