package postgres

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/engine"
)

// clientConn is a client connection before its session starts.
type clientConn struct {
	e          *Engine
	raw        net.Conn // the TCP connection
	conn       net.Conn // raw, or TLS over raw
	tls        bool
	remoteAddr string
	remotePort int
	params     []startupParam
	// protoMinor is the protocol minor version agreed with the client: 0,
	// or 2 (3.2: longer cancel secrets).
	protoMinor uint32
	user       string
	database   string
}

// errQuiet ends a connection without an ErrorResponse: the client went
// away, or asked for something that needs no answer (a cancel request).
type quietError struct{ reason string }

func (e *quietError) Error() string { return e.reason }

func quiet(format string, args ...any) error {
	return &quietError{reason: fmt.Sprintf(format, args...)}
}

// param returns a startup parameter sent by the client.
func (c *clientConn) param(key string) string {
	for _, p := range c.params {
		if p.key == key {
			return p.value
		}
	}
	return ""
}

// negotiate runs the startup phase up to the StartupMessage: SSLRequest,
// GSSENCRequest, direct TLS (PostgreSQL 17's sslnegotiation=direct) and
// CancelRequest.
func (c *clientConn) negotiate() error {
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
			return quiet("reading startup packet: %v", err)
		}
		if hdr[0] == 0x16 && !c.tls {
			// A TLS ClientHello record: the client starts TLS without
			// asking first.
			if c.e.serverTLS == nil {
				return quiet("client started TLS directly but postgres.tls is not configured")
			}
			if err := c.startTLS(engine.PrefixedConn(c.conn, hdr[:]), true); err != nil {
				return err
			}
			continue
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n < 8 || n > maxStartupPacket {
			return protocolErrorf("invalid startup packet length %d (must be 8..%d bytes)", n, maxStartupPacket)
		}
		body := make([]byte, n-4)
		if _, err := io.ReadFull(c.conn, body); err != nil {
			return quiet("reading startup packet: %v", err)
		}
		code := binary.BigEndian.Uint32(body)
		switch code {
		case sslRequestCode, gssEncRequestCode:
			if n != 8 {
				return protocolErrorf("invalid length %d of SSLRequest/GSSENCRequest", n)
			}
			if c.tls {
				return protocolErrorf("encryption requested again after TLS was established")
			}
			if code == gssEncRequestCode || c.e.serverTLS == nil {
				if _, err := c.conn.Write([]byte{'N'}); err != nil {
					return quiet("writing to client: %v", err)
				}
				continue
			}
			if _, err := c.conn.Write([]byte{'S'}); err != nil {
				return quiet("writing to client: %v", err)
			}
			if err := c.startTLS(c.conn, false); err != nil {
				return err
			}
			continue
		case cancelRequestCode:
			c.e.handleCancel(body)
			return quiet("cancel request handled")
		}
		return c.startupMessage(code, body[4:])
	}
}

// startupMessage checks the protocol version and keeps the parameters.
func (c *clientConn) startupMessage(version uint32, rest []byte) error {
	major, minor := version>>16, version&0xffff
	if major != 3 {
		return &wireError{code: codeFeatureNotSupported,
			message: fmt.Sprintf("unsupported frontend protocol %d.%d: pamtrail supports 3.0 to 3.2", major, minor)}
	}
	params, err := parseStartupParams(rest)
	if err != nil {
		return err
	}
	var unsupported []string
	for _, p := range params {
		if strings.HasPrefix(p.key, "_pq_.") {
			unsupported = append(unsupported, p.key)
		} else {
			c.params = append(c.params, p)
		}
	}
	// 3.1 does not exist; 3.2 only lengthens the cancel secret, which the
	// gateway issues itself. Newer versions and protocol options are
	// negotiated down, as PostgreSQL does for what it lacks.
	if minor >= protocolMinor32 {
		c.protoMinor = protocolMinor32
	}
	if minor != c.protoMinor || len(unsupported) > 0 {
		if _, err := c.conn.Write(appendNegotiateProtocolVersion(nil, 3<<16|c.protoMinor, unsupported)); err != nil {
			return quiet("writing to client: %v", err)
		}
	}
	if clientCertRequired(c.e.serverTLS) && !c.tls {
		return c.plaintextWithoutCert()
	}
	if c.e.Config.Postgres.RequireTLS && !c.tls {
		return &wireError{code: codeInvalidAuthorization,
			message: "pamtrail requires an encrypted connection: connect with sslmode=require or stronger"}
	}
	return nil
}

func (c *clientConn) startTLS(conn net.Conn, direct bool) error {
	tc := tls.Server(conn, c.e.serverTLS)
	if err := tc.Handshake(); err != nil {
		if af := clientCertRefusal(c.e.serverTLS, err); af != nil {
			// Recorded here, not by fail: the TLS alert already answered
			// the client, and a plaintext ErrorResponse would be garbage.
			c.e.recordAuthFailure(c, af)
		}
		return quiet("TLS handshake: %v", err)
	}
	if direct && tc.ConnectionState().NegotiatedProtocol != alpnPostgres {
		// PostgreSQL requires ALPN for direct TLS, so a connection meant
		// for another protocol can't be confused with ours.
		return quiet("direct TLS connection without ALPN %q", alpnPostgres)
	}
	c.conn, c.tls = tc, true
	return nil
}

// handleCancel forwards a client's CancelRequest for a gateway key to the
// upstream server with the upstream key. Unknown keys are ignored, as
// PostgreSQL does, so the sender learns nothing.
func (e *Engine) handleCancel(body []byte) {
	key, ok := parseCancelRequest(body)
	if !ok {
		e.Logger.Debug("postgres: malformed cancel request ignored")
		return
	}
	target, ok := e.cancels.lookup(key)
	if !ok {
		e.Logger.Debug("postgres: cancel request for an unknown key ignored")
		return
	}
	ctx, cancel := context.WithTimeout(e.stopCtx, e.connTimeout)
	defer cancel()
	if err := target.send(ctx, target.upstream); err != nil {
		e.Logger.Warn("postgres: forwarding cancel request upstream failed", "error", err)
	}
}

// readTypedMessage reads one message during authentication, where nothing
// is pipelined, so unbuffered reads lose nothing.
func readTypedMessage(r io.Reader, maxBody int) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:]))
	if n < 4 || n-4 > maxBody {
		return 0, nil, protocolErrorf("invalid length %d of message type %q during startup", n, hdr[0])
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return hdr[0], body, nil
}

// fail reports a connection that ended before its session started.
func (c *clientConn) fail(err error) {
	var (
		af *authFailure
		we *wireError
		qe *quietError
	)
	switch {
	case errors.As(err, &af):
		c.e.recordAuthFailure(c, af)
		c.writeFatal(af.wire)
	case errors.As(err, &we):
		c.e.Logger.Info("postgres: connection refused", "client", c.remoteAddr, "error", we.message)
		c.writeFatal(we)
	case errors.As(err, &qe):
		c.e.Logger.Debug("postgres: connection closed", "client", c.remoteAddr, "reason", qe.reason)
		if c.e.Stopping() {
			c.writeFatal(&wireError{code: codeAdminShutdown, message: "the pamtrail gateway is shutting down"})
		}
	default:
		c.e.Logger.Info("postgres: connection failed", "client", c.remoteAddr, "error", err)
		var ne net.Error
		switch {
		case c.e.Stopping():
			c.writeFatal(&wireError{code: codeAdminShutdown, message: "the pamtrail gateway is shutting down"})
		case errors.As(err, &ne) && ne.Timeout():
			c.writeFatal(&wireError{code: codeConnectionFailure, message: "canceling authentication due to timeout"})
		}
	}
}

// writeFatal sends a final ErrorResponse, best effort.
func (c *clientConn) writeFatal(we *wireError) {
	_ = c.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.conn.Write(appendErrorResponse(nil, we))
}
