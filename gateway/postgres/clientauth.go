package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/control"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// maxAuthMessage bounds the password messages a client may send; SCRAM
// messages are a few hundred bytes.
const maxAuthMessage = 8 << 10

// authFailure is a refused login: what the client is told (wire) and what
// is recorded (reason, message). The client's message never says whether
// the user exists.
type authFailure struct {
	wire    *wireError
	reason  string // schema.Auth*
	message string // for the record and the log; never a credential
	account string
}

func (a *authFailure) Error() string { return a.reason + ": " + a.message }

// passwordFailed is the one answer to a wrong password and an unknown user.
func (c *clientConn) passwordFailed(known bool, why string) *authFailure {
	reason := schema.AuthBadPassword
	if !known {
		reason = schema.AuthUnknownUser
	}
	return &authFailure{
		wire:    &wireError{code: codeInvalidPassword, message: fmt.Sprintf("password authentication failed for user %q", c.user)},
		reason:  reason,
		message: why,
		account: c.database,
	}
}

// authenticate runs SCRAM-SHA-256 against the user's verifier and checks
// the user's grant on the account named by the database parameter.
func (c *clientConn) authenticate() (*config.Account, error) {
	c.user = c.param("user")
	if c.user == "" {
		return nil, &wireError{code: codeInvalidAuthorization, message: "no PostgreSQL user name specified in startup packet"}
	}
	c.database = c.param("database")
	if c.database == "" {
		c.database = c.user
	}
	if r := c.param("replication"); r != "" && !isFalse(r) {
		return nil, &wireError{code: codeFeatureNotSupported, message: "replication connections are not supported by pamtrail"}
	}
	verifier, known := c.e.Control.Config().PostgresVerifier(c.user)
	if !known {
		// Run the whole exchange against a mock verifier so an unknown
		// user looks exactly like a wrong password.
		verifier = scram.MockVerifier(c.e.mockSecret, c.user)
	}
	var cbind []byte
	if c.tls {
		cbind = c.e.cbind
	}
	ex := scram.NewServerExchange(verifier, cbind)
	if err := c.send(&pgproto3.AuthenticationSASL{AuthMechanisms: ex.Mechanisms()}); err != nil {
		return nil, err
	}
	body, err := c.readPasswordMessage()
	if err != nil {
		return nil, err
	}
	mechanism, data, ok := parseSASLInitialResponse(body)
	if !ok {
		return nil, protocolErrorf("malformed SASLInitialResponse message")
	}
	serverFirst, err := ex.First(mechanism, data)
	if err != nil {
		return nil, c.malformedSCRAM(known, err)
	}
	if err := c.send(&pgproto3.AuthenticationSASLContinue{Data: serverFirst}); err != nil {
		return nil, err
	}
	if body, err = c.readPasswordMessage(); err != nil {
		return nil, err
	}
	serverFinal, err := ex.Final(body)
	switch {
	case errors.Is(err, scram.ErrAuthFailed) && known:
		return nil, c.passwordFailed(known, "SCRAM proof does not match the user's verifier")
	case errors.Is(err, scram.ErrAuthFailed):
		return nil, c.passwordFailed(known, "user is not configured for PostgreSQL")
	case err != nil:
		return nil, c.malformedSCRAM(known, err)
	}
	if err := c.send(&pgproto3.AuthenticationSASLFinal{Data: serverFinal}, &pgproto3.AuthenticationOk{}); err != nil {
		return nil, err
	}
	acct, err := c.e.Control.Authorize(c.user, c.database, "postgres")
	var locked *control.LockedError
	if errors.As(err, &locked) {
		return nil, &authFailure{
			wire:    &wireError{code: codeInvalidAuthorization, message: "pamtrail: " + locked.Error()},
			reason:  schema.AuthLocked,
			message: locked.Error(),
			account: c.database,
		}
	}
	if err != nil {
		reason := schema.AuthNoGrant
		if errors.Is(err, config.ErrUnknownAccount) {
			reason = schema.AuthUnknownAccount
		}
		// Same answer for both, so a user can't probe which accounts exist.
		return nil, &authFailure{
			wire: &wireError{code: codeInvalidAuthorization,
				message: fmt.Sprintf("user %q may not use account %q", c.user, c.database)},
			reason:  reason,
			message: err.Error(),
			account: c.database,
		}
	}
	return acct, nil
}

// parseSASLInitialResponse decodes mechanism, then an int32 length and the
// data (-1: none). pgproto3's decoder trusts the length, so it is not used
// on untrusted input.
func parseSASLInitialResponse(body []byte) (mechanism string, data []byte, ok bool) {
	r := msgReader{b: body}
	mechanism = string(r.cstring())
	n := int(r.int32())
	if n >= 0 {
		data = r.next(n)
	}
	return mechanism, data, !r.bad && len(r.b) == 0 && n >= -1
}

func (c *clientConn) malformedSCRAM(known bool, err error) *authFailure {
	af := c.passwordFailed(known, "malformed SCRAM exchange: "+err.Error())
	af.wire = &wireError{code: codeProtocolViolation, message: "malformed SCRAM message: " + strings.TrimPrefix(err.Error(), "scram: ")}
	return af
}

// readPasswordMessage reads the client's next 'p' message. A client that
// hangs up here (psql does, to prompt for a password) is not a failed login.
func (c *clientConn) readPasswordMessage() ([]byte, error) {
	typ, body, err := readTypedMessage(c.conn, maxAuthMessage)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, quiet("client closed the connection during authentication")
	case err != nil:
		return nil, err
	case typ == 'X':
		return nil, quiet("client terminated during authentication")
	case typ != 'p':
		return nil, protocolErrorf("expected a password message, got message type %q", typ)
	}
	return body, nil
}

// send writes backend messages in one write.
func (c *clientConn) send(msgs ...pgproto3.BackendMessage) error {
	var buf []byte
	for _, m := range msgs {
		var err error
		if buf, err = m.Encode(buf); err != nil {
			return err
		}
	}
	if _, err := c.conn.Write(buf); err != nil {
		return quiet("writing to client: %v", err)
	}
	return nil
}

func (e *Engine) recordAuthFailure(c *clientConn, af *authFailure) {
	e.Logger.Info("postgres: authentication failed", "client", c.remoteAddr, "user", c.user,
		"account", af.account, "reason", af.reason, "detail", af.message)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := e.Recorder.AuthFailure(ctx, recorder.AuthFailure{
		Time:         time.Now(),
		User:         c.user,
		Account:      af.account,
		ResourceType: schema.ResourcePostgres,
		ClientAddr:   c.remoteAddr,
		ClientPort:   c.remotePort,
		Reason:       af.reason,
		Message:      af.message,
	})
	if err != nil {
		e.Logger.Error("postgres: recording an authentication failure failed", "error", err)
	}
}

func isFalse(s string) bool {
	switch strings.ToLower(s) {
	case "0", "false", "off", "no", "f", "n":
		return true
	}
	return false
}
