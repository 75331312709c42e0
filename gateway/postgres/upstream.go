package postgres

import (
	"context"
	"crypto/md5" //nolint:gosec // PostgreSQL's md5 auth method is defined with MD5
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
	"github.com/pamtrail/pamtrail/gateway/config"
)

// Authentication request codes of AuthenticationXXX ('R') messages.
const (
	authOK           = 0
	authCleartext    = 3
	authMD5          = 5
	authSASL         = 10
	authSASLContinue = 11
	authSASLFinal    = 12
)

// upstreamConn is a logged-in connection to an account's server.
type upstreamConn struct {
	conn net.Conn
	key  cancelKey
	// initial holds the ParameterStatus and NoticeResponse messages the
	// server sent during startup, replayed verbatim to the client.
	initial  []byte
	txStatus byte
}

// upstreamError is a failed upstream login. wire is what the client sees:
// never the server's detail, which may name credentials.
type upstreamError struct {
	wire *wireError
	err  error
}

func (e *upstreamError) Error() string { return e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

func (e *Engine) upstreamFailed(acct *config.Account, err error) *upstreamError {
	return &upstreamError{
		wire: &wireError{code: codeConnectionFailure,
			message: fmt.Sprintf("pamtrail could not connect to the server of account %q", acct.Name)},
		err: err,
	}
}

// forwardedParam reports whether a client's startup parameter is passed to
// the upstream server. user and database name the gateway identity and the
// account; replication was refused earlier.
func forwardedParam(key string) bool {
	switch key {
	case "user", "database", "replication":
		return false
	}
	return true
}

// connectUpstream dials the account's server and logs in with the
// account's credentials.
func (e *Engine) connectUpstream(ctx context.Context, acct *config.Account, version uint32, clientParams []startupParam) (*upstreamConn, error) {
	var secret []byte
	if !acct.Secret.IsZero() {
		s, err := acct.Secret.Resolve()
		if err != nil {
			return nil, e.upstreamFailed(acct, fmt.Errorf("reading the account's secret: %w", err))
		}
		secret = s
		defer clear(secret)
	}
	conn, err := e.dialUpstream(ctx, acct)
	if err != nil {
		return nil, e.upstreamFailed(acct, err)
	}
	up, err := e.loginUpstream(conn, acct, secret, version, clientParams)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = up.conn.SetDeadline(time.Time{})
	return up, nil
}

// dialUpstream connects, with TLS when the account asks for it. The
// returned connection carries ctx's deadline.
func (e *Engine) dialUpstream(ctx context.Context, acct *config.Account) (net.Conn, error) {
	addr := net.JoinHostPort(acct.Host, strconv.Itoa(acct.Port))
	conn, err := e.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if cfg := e.upstreamTLS.For(acct.Name); cfg != nil {
		tc, err := startUpstreamTLS(conn, cfg)
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = tc
	}
	return conn, nil
}

// startUpstreamTLS sends SSLRequest and runs the TLS handshake with CA and
// server-name verification.
func startUpstreamTLS(conn net.Conn, cfg *tls.Config) (net.Conn, error) {
	var req [8]byte
	binary.BigEndian.PutUint32(req[:], 8)
	binary.BigEndian.PutUint32(req[4:], sslRequestCode)
	if _, err := conn.Write(req[:]); err != nil {
		return nil, err
	}
	var resp [1]byte
	if _, err := io.ReadFull(conn, resp[:]); err != nil {
		return nil, err
	}
	if resp[0] != 'S' {
		return nil, errors.New("server does not accept TLS connections, but the account requires TLS")
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// loginUpstream runs the startup and authentication exchange as a client,
// asking for the protocol version the client asked for.
func (e *Engine) loginUpstream(conn net.Conn, acct *config.Account, secret []byte, version uint32, clientParams []startupParam) (*upstreamConn, error) {
	params := []startupParam{{"user", acct.User}, {"database", acct.Database}}
	for _, p := range clientParams {
		if forwardedParam(p.key) {
			params = append(params, p)
		}
	}
	if _, err := conn.Write(appendStartupMessage(nil, version, params)); err != nil {
		return nil, e.upstreamFailed(acct, err)
	}
	up := &upstreamConn{conn: conn}
	var sc *scram.ClientExchange
	for {
		typ, body, err := readTypedMessage(conn, e.maxMessage)
		if err != nil {
			return nil, e.upstreamFailed(acct, err)
		}
		switch typ {
		case 'R':
			if sc, err = e.answerAuthRequest(conn, acct, secret, body, sc); err != nil {
				return nil, err
			}
		case 'E':
			return nil, upstreamLoginError(acct, parseErrorFields(&decoder{cs: utf8Charset}, body))
		case 'S', 'N':
			up.initial = appendMessage(up.initial, typ, body)
		case 'K':
			key, ok := parseBackendKeyData(body)
			if !ok {
				return nil, e.upstreamFailed(acct, errors.New("malformed BackendKeyData from server"))
			}
			up.key = key
		case 'Z':
			up.txStatus = 'I'
			if len(body) == 1 {
				up.txStatus = body[0]
			}
			return up, nil
		case 'v':
			// An older server answering a 3.2 request with 3.0: its
			// BackendKeyData then has a 4-byte secret, which is parsed
			// the same way. We never ask for protocol options.
		default:
			return nil, e.upstreamFailed(acct, fmt.Errorf("unexpected message type %q from server during startup", typ))
		}
	}
}

// answerAuthRequest answers one AuthenticationXXX message.
func (e *Engine) answerAuthRequest(conn net.Conn, acct *config.Account, secret, body []byte, sc *scram.ClientExchange) (*scram.ClientExchange, error) {
	if len(body) < 4 {
		return sc, e.upstreamFailed(acct, errors.New("malformed authentication request from server"))
	}
	code, data := binary.BigEndian.Uint32(body), body[4:]
	needSecret := func(method string) error {
		if secret == nil {
			return e.upstreamFailed(acct, fmt.Errorf("server requires %s authentication but the account has no secret", method))
		}
		return nil
	}
	var reply []byte
	switch code {
	case authOK:
		return sc, nil
	case authCleartext:
		if err := needSecret("password"); err != nil {
			return sc, err
		}
		reply = appendMessage(nil, 'p', append(slices.Clone(secret), 0))
	case authMD5:
		if err := needSecret("md5"); err != nil {
			return sc, err
		}
		if len(data) != 4 {
			return sc, e.upstreamFailed(acct, errors.New("malformed md5 authentication request"))
		}
		reply = appendMessage(nil, 'p', append([]byte(md5Password(secret, acct.User, data)), 0))
	case authSASL:
		if err := needSecret("SCRAM-SHA-256"); err != nil {
			return sc, err
		}
		mechs := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if !slices.Contains(mechs, scram.MechanismSHA256) {
			return sc, e.upstreamFailed(acct, fmt.Errorf("server offers SASL mechanisms %v but not %s", mechs, scram.MechanismSHA256))
		}
		var err error
		if sc, err = scram.NewClientExchange(string(secret)); err != nil {
			return sc, e.upstreamFailed(acct, err)
		}
		first := sc.First()
		var b []byte
		b = append(b, scram.MechanismSHA256...)
		b = append(b, 0)
		b = binary.BigEndian.AppendUint32(b, uint32(len(first)))
		reply = appendMessage(nil, 'p', append(b, first...))
	case authSASLContinue:
		if sc == nil {
			return sc, e.upstreamFailed(acct, errors.New("SASL continue without SASL start"))
		}
		final, err := sc.Final(data)
		if err != nil {
			return sc, e.upstreamFailed(acct, err)
		}
		reply = appendMessage(nil, 'p', final)
	case authSASLFinal:
		if sc == nil {
			return sc, e.upstreamFailed(acct, errors.New("SASL final without SASL start"))
		}
		if err := sc.Verify(data); err != nil {
			return sc, e.upstreamFailed(acct, err)
		}
		return sc, nil
	default:
		return sc, e.upstreamFailed(acct, fmt.Errorf("server requires authentication method %d, which pamtrail does not support (use scram-sha-256, md5, password or trust)", code))
	}
	defer clear(reply)
	if _, err := conn.Write(reply); err != nil {
		return sc, e.upstreamFailed(acct, err)
	}
	return sc, nil
}

// md5Password is PostgreSQL's md5 response: "md5" + md5(md5(password +
// user) + salt), both inner digests in hex.
func md5Password(password []byte, user string, salt []byte) string {
	inner := md5.Sum(append(slices.Clone(password), user...)) //nolint:gosec // protocol-defined
	innerHex := hex.EncodeToString(inner[:])
	outer := md5.Sum(append([]byte(innerHex), salt...)) //nolint:gosec // protocol-defined
	return "md5" + hex.EncodeToString(outer[:])
}

// upstreamLoginError turns the server's refusal into what the client sees.
// Authentication errors (class 28) become a generic connection failure:
// their text names the upstream user, which the gateway user must not
// learn. Others (database does not exist, too many connections, starting
// up) keep their SQLSTATE and message but never the detail or hint.
func upstreamLoginError(acct *config.Account, pe pgError) *upstreamError {
	err := fmt.Errorf("server refused login: SQLSTATE %s: %s", pe.code, pe.message)
	if strings.HasPrefix(pe.code, "28") || pe.code == "" {
		return &upstreamError{
			wire: &wireError{code: codeConnectionFailure,
				message: fmt.Sprintf("pamtrail could not log in to the server of account %q", acct.Name)},
			err: err,
		}
	}
	return &upstreamError{
		wire: &wireError{code: pe.code, message: fmt.Sprintf("server of account %q: %s", acct.Name, pe.message)},
		err:  err,
	}
}

// sendCancel forwards a cancel request to an account's server.
func (e *Engine) sendCancel(acct *config.Account) func(ctx context.Context, key cancelKey) error {
	return func(ctx context.Context, key cancelKey) error {
		conn, err := e.dialUpstream(ctx, acct)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.Write(appendCancelRequest(nil, key)); err != nil {
			return err
		}
		// The server closes the connection once it has read the request;
		// waiting for that keeps the cancel ahead of our next query.
		_, _ = io.Copy(io.Discard, conn)
		return nil
	}
}
