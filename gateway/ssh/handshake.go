package ssh

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/control"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// handshake is one client connection's authentication. The SSH server runs
// its callbacks on the connection's goroutine, one at a time.
//
// Authorization and the upstream connection happen in
// VerifiedPublicKeyCallback, after the client has proved it holds the key:
// someone with only a user's public key learns nothing about grants or
// targets, and a refusal reaches the client as a banner before
// "Permission denied", so the user sees why.
type handshake struct {
	e      *Engine
	remote net.Addr

	login     string // the SSH login name: the account asked for
	attempted bool   // the client sent at least one authentication request
	failure   recorder.AuthFailure
	rank      int // how specific failure is; a more specific one replaces it

	ident identity
	acct  *config.Account
	up    *upstream
}

// Failure ranks: a bad key is the least specific (clients try several
// keys), then the authorization decision, then the upstream connection.
const (
	rankBadKey = iota + 1
	rankDenied
	rankUpstream
)

func (e *Engine) handleConn(nc net.Conn) {
	if tcp, ok := nc.(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(true)
	}
	hs := &handshake{e: e, remote: nc.RemoteAddr()}
	_ = nc.SetDeadline(time.Now().Add(e.opts.HandshakeTimeout))
	sniffed, err := sniffSSH(nc)
	if err != nil {
		e.Logger.Debug("not an SSH client; connection closed", "client", hs.remote.String(), "error", err)
		return
	}
	conn, chans, reqs, err := gossh.NewServerConn(sniffed, hs.serverConfig())
	if err != nil {
		nc.Close()
		if hs.up != nil {
			hs.up.conn.Close()
		}
		hs.refused(err)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	s := newSession(e, conn, hs)
	defer e.Register(nc, engine.SessionInfo{ID: s.info.ID, User: s.info.User, Account: s.info.Account,
		ClientAddr: s.info.ClientAddr, Start: s.info.Start}, s.endFunc)()
	s.run(chans, reqs)
}

func (hs *handshake) serverConfig() *gossh.ServerConfig {
	cfg := &gossh.ServerConfig{
		PublicKeyCallback:         hs.publicKey,
		VerifiedPublicKeyCallback: hs.verified,
		AuthLogCallback: func(meta gossh.ConnMetadata, method string, _ error) {
			hs.login = meta.User()
			hs.attempted = true
		},
		ServerVersion: "SSH-2.0-pamtrail",
	}
	cfg.Ciphers = hs.e.opts.Ciphers
	cfg.AddHostKey(hs.e.hostKey)
	return cfg
}

// publicKey maps the offered key to a user. It runs before the client has
// proved it holds the key, so it decides nothing else.
func (hs *handshake) publicKey(meta gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
	id, perms, err := hs.e.keys.Load().identify(key)
	if err != nil {
		hs.fail(rankBadKey, schema.AuthBadKey, "", fmt.Sprintf("%s %s: %v", key.Type(), gossh.FingerprintSHA256(key), err))
		return nil, err
	}
	perms.Extensions = map[string]string{extUser: id.user, extMethod: id.method}
	return perms, nil
}

// verified authorizes the proven user for the account and connects to the
// target. Only when both succeed does the client's authentication succeed.
func (hs *handshake) verified(meta gossh.ConnMetadata, _ gossh.PublicKey, perms *gossh.Permissions, _ string) (*gossh.Permissions, error) {
	user, account := perms.Extensions[extUser], meta.User()
	acct, err := hs.e.Control.Authorize(user, account, "ssh")
	var locked *control.LockedError
	if errors.As(err, &locked) {
		hs.fail(rankDenied, schema.AuthLocked, user, locked.Error())
		return nil, &gossh.BannerError{Err: err, Message: "pamtrail: " + locked.Error() + "\n"}
	}
	if err != nil {
		reason := schema.AuthNoGrant
		if errors.Is(err, config.ErrUnknownAccount) {
			reason = schema.AuthUnknownAccount
		}
		hs.fail(rankDenied, reason, user, err.Error())
		// One message for both: a user learns nothing about accounts
		// they may not use.
		return nil, &gossh.BannerError{Err: err, Message: fmt.Sprintf(
			"pamtrail: user %q may not use account %q (no such SSH account, or no grant)\n", user, account)}
	}
	up, err := dialUpstream(hs.e.ctx, hs.e.Dial, acct, hs.e.opts.UpstreamTimeout)
	if err != nil {
		reason := schema.AuthUpstreamFailed
		var ue *upstreamError
		if errors.As(err, &ue) {
			reason = ue.reason
		}
		hs.fail(rankUpstream, reason, user, err.Error())
		return nil, &gossh.BannerError{Err: err, Message: "pamtrail: " + err.Error() + "\n"}
	}
	hs.ident = identity{user: user, method: perms.Extensions[extMethod]}
	hs.acct = acct
	hs.up = up
	return perms, nil
}

func (hs *handshake) fail(rank int, reason, user, msg string) {
	hs.e.Logger.Info("ssh authentication refused", "client", hs.remote.String(), "account", hs.login, "user", user, "reason", reason, "error", msg)
	if rank < hs.rank {
		return
	}
	hs.rank = rank
	hs.failure = recorder.AuthFailure{User: user, Reason: reason, Message: msg}
}

// refused records a connection that did not authenticate. A connection
// that never asked to authenticate (a port scan, garbage, a timeout in the
// key exchange) is only logged: there is no claimed account to record.
func (hs *handshake) refused(err error) {
	if !hs.attempted {
		hs.e.Logger.Debug("ssh handshake failed", "client", hs.remote.String(), "error", err)
		return
	}
	f := hs.failure
	if hs.rank == 0 {
		f = recorder.AuthFailure{Reason: schema.AuthBadKey, Message: "no authorized public key was offered: " + err.Error()}
	}
	f.Time = time.Now()
	f.Account = hs.login
	f.ResourceType = schema.ResourceSSH
	f.ClientAddr, f.ClientPort = engine.SplitAddr(hs.remote)
	if rerr := hs.e.Recorder.AuthFailure(hs.e.ctx, f); rerr != nil {
		hs.e.Logger.Error("recording an ssh authentication failure failed", "error", rerr)
	}
}

// sniffSSH checks that a client starts with the SSH identification string.
// A client must send "SSH-" first (RFC 4253 4.2; only servers may send
// other lines before it), and the SSH library would otherwise wait for the
// handshake deadline on an HTTP request or a port scanner's bytes.
func sniffSSH(nc net.Conn) (net.Conn, error) {
	prefix := make([]byte, 4)
	if _, err := io.ReadFull(nc, prefix); err != nil {
		return nil, err
	}
	if string(prefix) != "SSH-" {
		return nil, fmt.Errorf("the client sent %q instead of an SSH identification string", prefix)
	}
	return engine.PrefixedConn(nc, prefix), nil
}
