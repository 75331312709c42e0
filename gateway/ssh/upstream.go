package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// upstream is the gateway's SSH connection to an account's target.
type upstream struct {
	conn  gossh.Conn
	chans <-chan gossh.NewChannel
	reqs  <-chan *gossh.Request
}

// upstreamCiphers is the gateway's preference toward targets; the client's
// (here the gateway's) order decides. AES-GCM comes first because Go has
// AES-NI/PCLMUL assembly for it and the gateway re-encrypts every byte;
// chacha20-poly1305 and AES-CTR stay for targets without AES-GCM (OpenSSH
// before 6.2, some appliances). It is x/crypto's current default, spelled
// out so that a change of that default cannot slow every session silently.
var upstreamCiphers = []string{
	gossh.CipherAES128GCM, gossh.CipherAES256GCM, gossh.CipherChaCha20Poly1305,
	gossh.CipherAES128CTR, gossh.CipherAES192CTR, gossh.CipherAES256CTR,
}

// upstreamError is a failed upstream connection with the auth-failure
// reason to record. Its message never contains the credential.
type upstreamError struct {
	reason string // schema.AuthHostKeyMismatch or schema.AuthUpstreamFailed
	err    error
}

func (e *upstreamError) Error() string { return e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// dialUpstream connects and authenticates to the account's target with the
// account's stored credential, verifying the target's host key against the
// account's pin.
func dialUpstream(ctx context.Context, dial engine.DialFunc, acct *config.Account, timeout time.Duration) (*upstream, error) {
	fail := func(format string, args ...any) error {
		return &upstreamError{reason: schema.AuthUpstreamFailed, err: fmt.Errorf(format, args...)}
	}
	pin, err := parseHostKeyPin(acct.KnownHosts)
	if err != nil {
		return nil, fail("account %q: %w", acct.Name, err)
	}
	auth, err := upstreamAuth(acct)
	if err != nil {
		return nil, fail("account %q: %w", acct.Name, err)
	}
	cfg := &gossh.ClientConfig{
		Config:            gossh.Config{Ciphers: upstreamCiphers},
		User:              acct.User,
		Auth:              auth,
		HostKeyCallback:   pin.callback(acct.Name),
		HostKeyAlgorithms: pin.algorithms(),
		ClientVersion:     "SSH-2.0-pamtrail",
	}
	addr := net.JoinHostPort(acct.Host, strconv.Itoa(acct.Port))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fail("connect to %s for account %q: %w", addr, acct.Name, err)
	}
	if tcp, ok := nc.(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(true) // keystrokes must not wait for Nagle
	}
	// The handshake gets the same deadline as the dial; the context cannot
	// interrupt NewClientConn, the deadline can.
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	conn, chans, reqs, err := gossh.NewClientConn(nc, addr, cfg)
	if err != nil {
		nc.Close()
		var mismatch *HostKeyMismatchError
		if errors.As(err, &mismatch) {
			return nil, &upstreamError{reason: schema.AuthHostKeyMismatch, err: mismatch}
		}
		return nil, fail("ssh to %s as %q for account %q: %w", addr, acct.User, acct.Name, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return &upstream{conn: conn, chans: chans, reqs: reqs}, nil
}

// upstreamAuth turns the account's secret into SSH auth methods. The secret
// is read at each connection so a rotated key or password takes effect
// without a restart.
func upstreamAuth(acct *config.Account) ([]gossh.AuthMethod, error) {
	secret, err := acct.Secret.Resolve()
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	switch acct.SecretKind {
	case "password":
		password := string(secret)
		clear(secret)
		// Servers that only offer keyboard-interactive ask for the
		// password there.
		answer := func(_, _ string, questions []string, _ []bool) ([]string, error) {
			answers := make([]string, len(questions))
			for i := range answers {
				answers[i] = password
			}
			return answers, nil
		}
		return []gossh.AuthMethod{gossh.Password(password), gossh.KeyboardInteractive(answer)}, nil
	default: // private_key; config validation allows nothing else
		signer, err := gossh.ParsePrivateKey(secret)
		clear(secret)
		if err != nil {
			var missing *gossh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, errors.New("secret: the private key is passphrase-protected; store an unencrypted key in the secret reference")
			}
			return nil, fmt.Errorf("secret: not a private key: %w", err)
		}
		return []gossh.AuthMethod{gossh.PublicKeys(signer)}, nil
	}
}
