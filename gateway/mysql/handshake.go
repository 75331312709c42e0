package mysql

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/control"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/mysql/wire"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Error numbers and SQLSTATEs the gateway answers with.
const (
	erAccessDenied    = 1045 // 28000
	erBadDB           = 1049 // 42000
	erHandshake       = 1043 // 08S01
	erNotSupported    = 1235 // 42000
	erServerShutdown  = 1053 // 08S01
	erConnectionKill  = 1927 // 70100
	erNotAllowed      = 1148 // 42000: the used command is not allowed
	erSpecificAccess  = 1227 // 42000: access denied; you need a privilege
	erCannotRecord    = 1040 // 08004: too many connections is what clients retry on
	erUpstreamFailure = 2013 // HY000
)

// capsOffered are the capabilities the gateway offers clients: those every
// MySQL >= 5.7 and MariaDB >= 10.2 server has, so the upstream login can
// grant whatever subset the client picks. Compression, LOCAL INFILE (until
// an account allows it), query attributes and optional metadata are left
// out: the gateway would have to rewrite them.
const capsOffered = wire.ClientLongPassword | wire.ClientFoundRows | wire.ClientLongFlag |
	wire.ClientConnectWithDB | wire.ClientProtocol41 | wire.ClientTransactions |
	wire.ClientSecureConnection | wire.ClientMultiStatements | wire.ClientMultiResults |
	wire.ClientPSMultiResults | wire.ClientPluginAuth | wire.ClientConnectAttrs |
	wire.ClientPluginAuthLenenc | wire.ClientSessionTrack | wire.ClientDeprecateEOF

const (
	pluginCachingSHA2 = "caching_sha2_password"
	pluginNative      = "mysql_native_password"
	defaultCollation  = 45 // utf8mb4_general_ci, known to MySQL and MariaDB
)

// clientConn is a client connection before its session starts.
type clientConn struct {
	e          *Engine
	raw        net.Conn
	conn       net.Conn // raw, or TLS over it
	pc         *wire.Conn
	tls        bool
	remoteAddr string
	remotePort int
	id         uint32
	nonce      []byte
	caps       uint32 // the client's capabilities within capsOffered
	collation  byte
	maxPacket  uint32
	user       string
	account    string
	attrs      []byte // connection attributes, passed upstream as sent
}

func newClientConn(e *Engine, raw net.Conn) *clientConn {
	c := &clientConn{e: e, raw: raw, conn: raw, pc: wire.NewConn(raw)}
	c.pc.MaxPayload = 1 << 20 // handshake packets are small
	c.remoteAddr, c.remotePort = engine.SplitAddr(raw.RemoteAddr())
	c.id = e.nextID.Add(1) & 0x7fffffff
	return c
}

// authFailure is a refused login: recorded, then answered with err.
type authFailure struct {
	reason  string // schema.Auth*
	message string // for the record and the log; never a credential
	err     *wire.Err
}

func (a *authFailure) Error() string { return a.reason + ": " + a.message }

// refusal is a connection refused with a MySQL error but not recorded as
// a login failure (a protocol problem, a shutdown).
type refusal struct{ err *wire.Err }

func (r *refusal) Error() string { return r.err.Error() }

func refuse(code uint16, state, format string, args ...any) *refusal {
	return &refusal{err: &wire.Err{Code: code, SQLState: state, Message: fmt.Sprintf(format, args...)}}
}

// establish runs the handshake, authenticates the user, logs in upstream
// and starts the recording.
func (c *clientConn) establish() (*session, error) {
	if err := c.greet(); err != nil {
		return nil, err
	}
	plugin, resp, err := c.readResponse()
	if err != nil {
		return nil, err
	}
	if err := c.authenticate(plugin, resp); err != nil {
		return nil, err
	}
	acct, err := c.authorize()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.e.Context(), c.e.authTimeout)
	defer cancel()
	up, err := c.e.connectUpstream(ctx, acct, c)
	if err != nil {
		c.e.Logger.Warn("mysql: upstream login failed", "account", acct.Name, "error", err)
		return nil, &authFailure{reason: schema.AuthUpstreamFailed, message: err.Error(),
			err: &wire.Err{Code: erUpstreamFailure, SQLState: "HY000", Message: "pamtrail could not log in to the account's server: " + upstreamMessage(err)}}
	}
	s, err := c.startSession(ctx, acct, up)
	if err != nil {
		_ = up.conn.Close()
		return nil, err
	}
	return s, nil
}

// greet sends the initial handshake (protocol 10).
func (c *clientConn) greet() error {
	if err := c.newNonce(); err != nil {
		return err
	}
	caps := capsOffered
	if c.e.serverTLS != nil {
		caps |= wire.ClientSSL
	}
	p := []byte{10}
	p = append(p, c.e.serverVersion()...)
	p = append(p, 0)
	p = append(p, byte(c.id), byte(c.id>>8), byte(c.id>>16), byte(c.id>>24))
	p = append(p, c.nonce[:8]...)
	p = append(p, 0, byte(caps), byte(caps>>8), defaultCollation)
	p = append(p, byte(wire.StatusAutocommit), 0, byte(caps>>16), byte(caps>>24), 21)
	p = append(p, make([]byte, 10)...)
	p = append(p, c.nonce[8:]...)
	p = append(p, 0)
	p = append(p, pluginCachingSHA2...)
	p = append(p, 0)
	return c.pc.WritePayload(p)
}

// accountSeparator splits a login of the form user#account; '#' is not
// allowed in gateway user or account names.
const accountSeparator = "#"

// readResponse reads the client's handshake response, upgrading to TLS
// first when the client asks for it.
func (c *clientConn) readResponse() (plugin string, resp []byte, err error) {
	p, err := c.pc.ReadPayload()
	if err != nil {
		return "", nil, quietErr(err)
	}
	r := wire.NewReader(p)
	caps := r.Uint32()
	if caps&wire.ClientProtocol41 == 0 {
		return "", nil, refuse(erHandshake, "08S01", "pamtrail needs a client that speaks protocol 4.1")
	}
	if caps&wire.ClientSSL != 0 {
		if c.e.serverTLS == nil {
			return "", nil, refuse(erHandshake, "08S01", "TLS is not configured on this pamtrail listener")
		}
		tc := tls.Server(c.raw, c.e.serverTLS)
		if err := tc.Handshake(); err != nil {
			return "", nil, quietErr(fmt.Errorf("TLS handshake: %w", err))
		}
		c.conn, c.tls = tc, true
		c.pc.SetStream(tc)
		if p, err = c.pc.ReadPayload(); err != nil {
			return "", nil, quietErr(err)
		}
		r = wire.NewReader(p)
		caps = r.Uint32()
	} else if c.e.Config.MySQL.RequireTLS {
		return "", nil, refuse(erAccessDenied, "28000", "pamtrail requires TLS: connect with --ssl (ssl-mode=REQUIRED or VERIFY_IDENTITY)")
	}
	c.caps = caps & capsOffered
	c.maxPacket = r.Uint32()
	c.collation = r.Byte()
	r.Bytes(23)
	c.user = string(r.NulBytes())
	switch {
	case caps&wire.ClientPluginAuthLenenc != 0:
		resp, _ = r.LenencBytes()
	case caps&wire.ClientSecureConnection != 0:
		resp = r.Bytes(int(r.Byte()))
	default:
		resp = r.NulBytes()
	}
	if caps&wire.ClientConnectWithDB != 0 && r.Len() > 0 {
		c.account = string(r.NulBytes())
	}
	plugin = pluginNative
	if caps&wire.ClientPluginAuth != 0 && r.Len() > 0 {
		plugin = string(r.NulBytes())
	}
	if caps&wire.ClientConnectAttrs != 0 && r.Len() > 0 {
		c.attrs = r.Rest()
	}
	if r.Err() != nil {
		return "", nil, refuse(erHandshake, "08S01", "malformed handshake response")
	}
	// Tools that connect without a database (mysqldump, mysqladmin) name
	// the account in the login instead: user#account.
	if user, account, ok := strings.Cut(c.user, accountSeparator); ok {
		if c.account != "" && c.account != account {
			return "", nil, refuse(erBadDB, "42000", "the login names account '%s' and the database names '%s': name the account once", account, c.account)
		}
		c.user, c.account = user, account
	}
	return plugin, append([]byte(nil), resp...), nil
}

// authorize resolves the account the client named as its database and
// checks the grant.
func (c *clientConn) authorize() (*config.Account, error) {
	if c.account == "" {
		return nil, &authFailure{reason: schema.AuthUnknownAccount, message: "no account named (the database of the connection)",
			err: &wire.Err{Code: erBadDB, SQLState: "42000", Message: "name the pamtrail account as the database, e.g. mysql -D demo-mysql"}}
	}
	acct, err := c.e.Control.Authorize(c.user, c.account, "mysql")
	var locked *control.LockedError
	if errors.As(err, &locked) {
		return nil, &authFailure{reason: schema.AuthLocked, message: locked.Error(),
			err: &wire.Err{Code: erAccessDenied, SQLState: "28000", Message: "pamtrail: " + locked.Error()}}
	}
	if err != nil {
		reason := schema.AuthNoGrant
		if errors.Is(err, config.ErrUnknownAccount) {
			reason = schema.AuthUnknownAccount
		}
		return nil, &authFailure{reason: reason, message: err.Error(),
			err: &wire.Err{Code: erBadDB, SQLState: "42000", Message: fmt.Sprintf("Access denied for user '%s' to account '%s'", c.user, c.account)}}
	}
	return acct, nil
}

// startSession starts the recording, registers the session and tells the
// client it is logged in.
func (c *clientConn) startSession(ctx context.Context, acct *config.Account, up *upstreamConn) (*session, error) {
	e := c.e
	now := time.Now()
	info := recorder.SessionInfo{
		ID: recorder.NewSessionID(), User: c.user, Account: acct.Name, ResourceType: schema.ResourceMySQL,
		ClientAddr: c.remoteAddr, ClientPort: c.remotePort, ServerAddr: acct.Host, ServerPort: acct.Port,
		Database: acct.Database, UpstreamUser: acct.User, AuthMethod: c.authMethod(), Start: now,
	}
	traffic := &engine.Traffic{}
	info.Traffic = traffic.Load
	rs, err := e.Recorder.SessionStart(ctx, info)
	if err != nil {
		e.Logger.Error("mysql: cannot start recording; session refused", "user", c.user, "account", acct.Name, "error", err)
		return nil, refuse(erCannotRecord, "08004", "pamtrail cannot record this session, so it is refused")
	}
	s := newSession(c, acct, up, rs, now, traffic)
	// The client is told it is in as the server told the gateway, with the
	// server's status (autocommit, session state) and the next sequence id.
	okp := up.ok
	if len(okp) == 0 || okp[0] != wire.HeaderOK {
		okp = wire.AppendOK(nil, 0, 0, wire.StatusAutocommit, 0)
	}
	if err := c.pc.WritePayload(okp); err != nil {
		s.abandon("client went away before the session started")
		return nil, quietErr(err)
	}
	_ = c.conn.SetDeadline(time.Time{})
	s.log.Info("mysql: session started", "client", c.remoteAddr)
	return s, nil
}

func (c *clientConn) authMethod() string {
	if c.tls {
		return pluginCachingSHA2 + "+tls"
	}
	return pluginCachingSHA2
}

// quietError ends a connection that went away or timed out: logged at
// debug level, not recorded.
type quietError struct{ err error }

func (q *quietError) Error() string { return q.err.Error() }

func quietErr(err error) error { return &quietError{err: err} }

// fail answers a connection that did not become a session.
func (c *clientConn) fail(err error) {
	var (
		af *authFailure
		rf *refusal
		qe *quietError
	)
	switch {
	case errors.As(err, &af):
		c.e.recordAuthFailure(c, af)
		c.writeErr(af.err)
	case errors.As(err, &rf):
		c.e.Logger.Info("mysql: connection refused", "client", c.remoteAddr, "error", rf.err.Message)
		c.writeErr(rf.err)
	case errors.As(err, &qe):
		c.e.Logger.Debug("mysql: connection closed", "client", c.remoteAddr, "reason", qe.err)
	default:
		c.e.Logger.Info("mysql: connection failed", "client", c.remoteAddr, "error", err)
	}
	if c.e.Stopping() {
		c.writeErr(&wire.Err{Code: erServerShutdown, SQLState: "08S01", Message: "the pamtrail gateway is shutting down"})
	}
}

func (c *clientConn) writeErr(e *wire.Err) {
	_ = c.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_ = c.pc.WritePayload(wire.AppendErr(nil, e.Code, e.SQLState, e.Message))
}

func (e *Engine) recordAuthFailure(c *clientConn, af *authFailure) {
	e.Logger.Info("mysql: login refused", "user", c.user, "account", c.account, "client", c.remoteAddr, "reason", af.reason, "detail", af.message)
	err := e.Recorder.AuthFailure(context.Background(), recorder.AuthFailure{
		Time: time.Now(), User: c.user, Account: c.account, ResourceType: schema.ResourceMySQL,
		ClientAddr: c.remoteAddr, ClientPort: c.remotePort, Reason: af.reason, Message: af.message,
	})
	if err != nil {
		e.Logger.Error("mysql: recording a refused login failed", "error", err)
	}
}

// upstreamMessage is what the client is told of a failed upstream login:
// the server's own error, never the gateway's credentials.
func upstreamMessage(err error) string {
	var we *wire.Err
	if errors.As(err, &we) {
		return we.Message
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg)-i < 120 {
		return msg[i+2:]
	}
	return "connection failed"
}
