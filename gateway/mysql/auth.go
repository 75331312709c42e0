package mysql

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // mysql_native_password and RSA-OAEP as MySQL defines them
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
	"github.com/pamtrail/pamtrail/gateway/mysql/wire"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Gateway users log in with their gateway password, the one whose SCRAM
// verifier (users[].postgres_scram) also serves PostgreSQL: one identity,
// one secret, stored only as a verifier. caching_sha2_password's full
// authentication hands the gateway the password (over TLS, or encrypted to
// the gateway's RSA key), which it checks against the verifier; after that
// the user's SHA256(SHA256(password)) is cached in memory, as MySQL itself
// does, for fast logins. Clients that start with mysql_native_password are
// switched to caching_sha2_password, unless the user has a
// mysql_native_password hash configured.

// AuthMoreData markers of caching_sha2_password.
const (
	authMoreData      = 0x01
	fastAuthSuccess   = 0x03
	performFullAuth   = 0x04
	requestPublicKey  = 0x02
	authSwitchRequest = 0xfe
)

func (c *clientConn) authenticate(plugin string, resp []byte) error {
	var err error
	switch {
	case plugin == pluginNative && c.nativeHash() != nil:
		if len(resp) != sha1.Size {
			// The client answered the greeting's plugin, not its own:
			// ask again for a native response to a fresh scramble.
			if resp, err = c.switchPlugin(pluginNative); err != nil {
				return err
			}
		}
		return c.authNative(resp)
	case plugin != pluginCachingSHA2:
		if resp, err = c.switchPlugin(pluginCachingSHA2); err != nil {
			return err
		}
	}
	return c.authCachingSHA2(resp)
}

// newNonce draws a 20-byte scramble; it is NUL-terminated on the wire, so
// no byte of it is 0.
func (c *clientConn) newNonce() error {
	c.nonce = make([]byte, 20)
	if _, err := rand.Read(c.nonce); err != nil {
		return err
	}
	for i, b := range c.nonce {
		c.nonce[i] = b&0x7f | 1
	}
	return nil
}

// switchPlugin sends an AuthSwitchRequest to plugin with a fresh
// scramble and returns the client's answer.
func (c *clientConn) switchPlugin(plugin string) ([]byte, error) {
	if err := c.newNonce(); err != nil {
		return nil, err
	}
	p := append([]byte{authSwitchRequest}, plugin...)
	p = append(append(append(p, 0), c.nonce...), 0)
	if err := c.pc.WritePayload(p); err != nil {
		return nil, quietErr(err)
	}
	resp, err := c.pc.ReadPayload()
	if err != nil {
		return nil, quietErr(err)
	}
	return resp, nil
}

func (c *clientConn) authCachingSHA2(resp []byte) error {
	if h, ok := c.e.fastAuth.Load(c.user); ok && len(resp) == sha256.Size {
		if checkSHA2Scramble(resp, c.nonce, h.([32]byte)) {
			return c.pc.WritePayload([]byte{authMoreData, fastAuthSuccess})
		}
	}
	if err := c.pc.WritePayload([]byte{authMoreData, performFullAuth}); err != nil {
		return quietErr(err)
	}
	p, err := c.pc.ReadPayload()
	if err != nil {
		return quietErr(err)
	}
	var password []byte
	switch {
	case c.tls:
		password = bytes.TrimSuffix(p, []byte{0})
	case len(p) == 1 && p[0] == requestPublicKey:
		if err := c.pc.WritePayload(append([]byte{authMoreData}, c.e.rsaPEM...)); err != nil {
			return quietErr(err)
		}
		if p, err = c.pc.ReadPayload(); err != nil {
			return quietErr(err)
		}
		if password, err = c.e.decryptPassword(p, c.nonce); err != nil {
			return c.denied(true, "RSA-encrypted password could not be decrypted")
		}
	case isLoopback(c.remoteAddr):
		// libmariadb sends the password in clear without TLS; on loopback
		// it never left this host, so the gateway takes it as MySQL
		// takes it over a unix socket. From anywhere else it is refused.
		password = bytes.TrimSuffix(p, []byte{0})
	default:
		return refuse(erAccessDenied, "28000", "pamtrail needs TLS or RSA key exchange for caching_sha2_password: connect with --ssl, or allow the server's public key (get-server-public-key / allowPublicKeyRetrieval)")
	}
	verifier, known := c.e.Control.Config().PostgresVerifier(c.user)
	if !known {
		// Check against a mock so an unknown user costs what a wrong
		// password costs.
		verifier = scram.MockVerifier(c.e.mockSecret, c.user)
	}
	if !passwordMatches(verifier, password) || !known {
		return c.denied(known, "password does not match the user's verifier")
	}
	h1 := sha256.Sum256(password)
	c.e.fastAuth.Store(c.user, sha256.Sum256(h1[:]))
	return nil
}

// checkSHA2Scramble verifies caching_sha2_password's fast-auth response
// XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) || nonce)) against the cached
// h2 = SHA256(SHA256(pw)).
func checkSHA2Scramble(resp, nonce []byte, h2 [32]byte) bool {
	m := sha256.New()
	m.Write(h2[:])
	m.Write(nonce)
	mask := m.Sum(nil)
	h1 := make([]byte, sha256.Size)
	for i := range h1 {
		h1[i] = resp[i] ^ mask[i]
	}
	got := sha256.Sum256(h1)
	return subtle.ConstantTimeCompare(got[:], h2[:]) == 1
}

func passwordMatches(v scram.Verifier, password []byte) bool {
	salted, err := scram.SaltedPassword(string(password), v.Salt, v.Iterations)
	if err != nil {
		return false
	}
	stored := sha256.Sum256(scram.HMAC(salted, []byte("Client Key")))
	return subtle.ConstantTimeCompare(stored[:], v.StoredKey) == 1
}

// nativeHash is the user's SHA1(SHA1(password)), or nil.
func (c *clientConn) nativeHash() []byte {
	u, ok := c.e.Control.Config().User(c.user)
	if !ok || u.MySQLNativePassword == "" {
		return nil
	}
	h, err := hex.DecodeString(strings.TrimPrefix(u.MySQLNativePassword, "*"))
	if err != nil || len(h) != sha1.Size {
		return nil
	}
	return h
}

// authNative checks a mysql_native_password response:
// SHA1(pw) XOR SHA1(nonce || SHA1(SHA1(pw))).
func (c *clientConn) authNative(resp []byte) error {
	stage2 := c.nativeHash()
	if len(resp) != sha1.Size {
		return c.denied(true, "mysql_native_password response has the wrong length")
	}
	m := sha1.New() //nolint:gosec // the protocol's hash
	m.Write(c.nonce)
	m.Write(stage2)
	mask := m.Sum(nil)
	stage1 := make([]byte, sha1.Size)
	for i := range stage1 {
		stage1[i] = resp[i] ^ mask[i]
	}
	got := sha1.Sum(stage1) //nolint:gosec // the protocol's hash
	if subtle.ConstantTimeCompare(got[:], stage2) != 1 {
		return c.denied(true, "mysql_native_password does not match users[].mysql_native_password")
	}
	return nil
}

// denied is the one answer to a wrong password and an unknown user.
func (c *clientConn) denied(known bool, why string) *authFailure {
	reason := schema.AuthBadPassword
	if !known {
		reason, why = schema.AuthUnknownUser, "user is not configured for MySQL"
	}
	using := "YES"
	return &authFailure{reason: reason, message: why, err: &wire.Err{Code: erAccessDenied, SQLState: "28000",
		Message: "Access denied for user '" + c.user + "'@'" + c.remoteAddr + "' (using password: " + using + ")"}}
}

func newRSAKey() (*rsa.PrivateKey, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// decryptPassword undoes what a client sends after fetching the public key:
// RSA-OAEP(SHA1) of (password || NUL) XOR the nonce, repeated.
func (e *Engine) decryptPassword(ct, nonce []byte) ([]byte, error) {
	plain, err := rsa.DecryptOAEP(sha1.New(), nil, e.rsaKey, ct, nil) //nolint:gosec // as MySQL defines it
	if err != nil {
		return nil, err
	}
	for i := range plain {
		plain[i] ^= nonce[i%len(nonce)]
	}
	return bytes.TrimSuffix(plain, []byte{0}), nil
}

// serverVersion is the version string clients are greeted with: the one
// the first MySQL account's server announces, so clients pick the dialect
// (MariaDB or MySQL) of the server they will really talk to.
func (e *Engine) serverVersion() string {
	e.versionOnce.Do(func() {
		e.version = "8.0.40-pamtrail"
		accounts := e.Control.Config().Accounts
		for i := range accounts {
			a := &accounts[i]
			if a.Type != "mysql" {
				continue
			}
			ctx, cancel := context.WithTimeout(e.Context(), 3*time.Second)
			defer cancel()
			conn, err := e.Dial(ctx, "tcp", net.JoinHostPort(a.Host, itoa(a.Port)))
			if err != nil {
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
			if g, err := readGreeting(wire.NewConn(conn)); err == nil {
				e.version = g.version
			}
			return
		}
	})
	return e.version
}

func isLoopback(addr string) bool {
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// NativePasswordHash is MySQL's stored form of a mysql_native_password:
// "*" and the upper-case hex of SHA1(SHA1(password)).
func NativePasswordHash(password string) string {
	h1 := sha1.Sum([]byte(password)) //nolint:gosec // the protocol's hash
	h2 := sha1.Sum(h1[:])            //nolint:gosec
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}
