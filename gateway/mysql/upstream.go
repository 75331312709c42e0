package mysql

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the protocol's hashes
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/mysql/wire"
)

// greeting is what a server's initial handshake tells the gateway.
type greeting struct {
	version  string
	threadID uint32
	caps     uint32
	nonce    []byte
	plugin   string
}

func readGreeting(pc *wire.Conn) (greeting, error) {
	p, err := pc.ReadPayload()
	if err != nil {
		return greeting{}, err
	}
	if len(p) > 0 && p[0] == wire.HeaderErr {
		e, _ := wire.ParseErr(p)
		return greeting{}, e
	}
	r := wire.NewReader(p)
	if r.Byte() != 10 {
		return greeting{}, errors.New("server speaks an unsupported handshake protocol")
	}
	g := greeting{version: string(r.NulBytes()), threadID: r.Uint32()}
	g.nonce = append(g.nonce, r.Bytes(8)...)
	r.Byte()
	g.caps = uint32(r.Uint16())
	r.Byte()   // collation
	r.Uint16() // status
	g.caps |= uint32(r.Uint16()) << 16
	authLen := int(r.Byte())
	r.Bytes(10)
	if g.caps&wire.ClientSecureConnection != 0 {
		n := max(13, authLen-8)
		part := r.Bytes(n)
		g.nonce = append(g.nonce, bytes.TrimRight(part, "\x00")...)
	}
	if g.caps&wire.ClientPluginAuth != 0 && r.Len() > 0 {
		g.plugin = string(bytes.TrimRight(r.Rest(), "\x00"))
	}
	if r.Err() != nil {
		return greeting{}, fmt.Errorf("malformed server handshake: %w", r.Err())
	}
	return g, nil
}

// upstreamConn is a logged-in connection to the account's server.
type upstreamConn struct {
	conn     net.Conn
	pc       *wire.Conn
	threadID uint32
	caps     uint32 // in force on the session (what the client also has)
	ok       []byte // the server's OK, handed on to the client
}

// connectUpstream logs in to the account's server with the account's
// credentials and the client's capabilities (within what the gateway
// offers and the server has).
func (e *Engine) connectUpstream(ctx context.Context, a *config.Account, c *clientConn) (*upstreamConn, error) {
	var secret string
	if !a.Secret.IsZero() {
		b, err := a.Secret.Resolve()
		if err != nil {
			return nil, fmt.Errorf("reading the account secret: %w", err)
		}
		secret = string(b)
	}
	conn, err := e.Dial(ctx, "tcp", net.JoinHostPort(a.Host, itoa(a.Port)))
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	up := &upstreamConn{conn: conn, pc: wire.NewConn(conn)}
	up.pc.MaxPayload = 1 << 20
	if err := e.login(up, a, c, secret); err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = up.conn.SetDeadline(time.Time{})
	return up, nil
}

func (e *Engine) login(up *upstreamConn, a *config.Account, c *clientConn, password string) error {
	g, err := readGreeting(up.pc)
	if err != nil {
		return err
	}
	up.threadID = g.threadID
	need := c.caps &^ (wire.ClientSSL | wire.ClientCompress | wire.ClientLocalFiles)
	need |= wire.ClientProtocol41 | wire.ClientSecureConnection | wire.ClientPluginAuth | wire.ClientLongPassword
	if missing := need &^ g.caps &^ wire.ClientLongPassword; missing != 0 {
		return fmt.Errorf("the server lacks capabilities the client needs (flags %#x); pamtrail needs MySQL >= 5.7 or MariaDB >= 10.2", missing)
	}
	caps := need & (g.caps | wire.ClientLongPassword)
	if a.AllowLocalInfile && c.caps&wire.ClientLocalFiles != 0 {
		caps |= wire.ClientLocalFiles
	}
	if a.Database != "" {
		caps |= wire.ClientConnectWithDB
	} else {
		caps &^= wire.ClientConnectWithDB
	}
	if tc := e.upstreamTLS.For(a.Name); tc != nil {
		if g.caps&wire.ClientSSL == 0 {
			return errors.New("the account has TLS enabled but the server does not offer TLS")
		}
		caps |= wire.ClientSSL
		p := appendResponseHead(nil, caps, c.collation)
		if err := up.pc.WritePayload(p); err != nil {
			return err
		}
		tconn := tls.Client(up.conn, tc)
		if err := tconn.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake with the server: %w", err)
		}
		up.conn = tconn
		up.pc.SetStream(tconn)
	}
	up.caps = caps
	plugin := g.plugin
	if plugin == "" {
		plugin = pluginNative
	}
	p := appendResponseHead(nil, caps, c.collation)
	p = append(append(p, a.User...), 0)
	p = wire.AppendLenencBytes(p, scramble(plugin, password, g.nonce))
	if caps&wire.ClientConnectWithDB != 0 {
		p = append(append(p, a.Database...), 0)
	}
	p = append(append(p, plugin...), 0)
	if caps&wire.ClientConnectAttrs != 0 {
		if len(c.attrs) > 0 {
			p = append(p, c.attrs...)
		} else {
			p = append(p, 0)
		}
	}
	if err := up.pc.WritePayload(p); err != nil {
		return err
	}
	return e.finishLogin(up, plugin, password, g.nonce)
}

// appendResponseHead is the start of HandshakeResponse41, which is also the
// whole SSLRequest.
func appendResponseHead(p []byte, caps uint32, collation byte) []byte {
	if collation == 0 {
		collation = defaultCollation
	}
	p = append(p, byte(caps), byte(caps>>8), byte(caps>>16), byte(caps>>24))
	p = append(p, 0, 0, 0, 0x40) // max packet: 1 GiB
	p = append(p, collation)
	return append(p, make([]byte, 23)...)
}

// finishLogin answers the server's auth switches and extra rounds until it
// says OK or ERR.
func (e *Engine) finishLogin(up *upstreamConn, plugin, password string, nonce []byte) error {
	_, isTLS := up.conn.(*tls.Conn)
	for range 8 {
		p, err := up.pc.ReadPayload()
		if err != nil {
			return err
		}
		if len(p) == 0 {
			return errors.New("empty packet from the server during login")
		}
		switch p[0] {
		case wire.HeaderOK:
			up.ok = p
			return nil
		case wire.HeaderErr:
			we, _ := wire.ParseErr(p)
			return we
		case authSwitchRequest:
			r := wire.NewReader(p[1:])
			plugin = string(r.NulBytes())
			nonce = bytes.TrimRight(r.Rest(), "\x00")
			if plugin == "mysql_clear_password" && !isTLS {
				return errors.New("the server asks for the password in clear text over a plaintext connection; enable TLS on the account")
			}
			if err := up.pc.WritePayload(scramble(plugin, password, nonce)); err != nil {
				return err
			}
		case authMoreData:
			if plugin != pluginCachingSHA2 || len(p) < 2 {
				return fmt.Errorf("unexpected auth data for %s", plugin)
			}
			switch p[1] {
			case fastAuthSuccess:
				continue
			case performFullAuth:
				if isTLS {
					err = up.pc.WritePayload(append([]byte(password), 0))
				} else {
					err = up.pc.WritePayload([]byte{requestPublicKey})
				}
				if err != nil {
					return err
				}
			default: // the server's public key
				ct, err := encryptPassword(p[1:], password, nonce)
				if err != nil {
					return err
				}
				if err := up.pc.WritePayload(ct); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unexpected packet 0x%02x from the server during login", p[0])
		}
	}
	return errors.New("the server's login did not finish")
}

// scramble is the first auth response of a plugin.
func scramble(plugin, password string, nonce []byte) []byte {
	if password == "" {
		return nil
	}
	switch plugin {
	case pluginCachingSHA2:
		h1 := sha256.Sum256([]byte(password))
		h2 := sha256.Sum256(h1[:])
		m := sha256.New()
		m.Write(h2[:])
		m.Write(nonce)
		mask := m.Sum(nil)
		for i := range h1 {
			h1[i] ^= mask[i]
		}
		return h1[:]
	case "mysql_clear_password":
		return append([]byte(password), 0)
	default: // mysql_native_password
		h1 := sha1.Sum([]byte(password)) //nolint:gosec // the protocol's hash
		h2 := sha1.Sum(h1[:])            //nolint:gosec
		m := sha1.New()                  //nolint:gosec
		m.Write(nonce[:min(20, len(nonce))])
		m.Write(h2[:])
		mask := m.Sum(nil)
		for i := range h1 {
			h1[i] ^= mask[i]
		}
		return h1[:]
	}
}

func encryptPassword(pemKey []byte, password string, nonce []byte) ([]byte, error) {
	block, _ := pem.Decode(pemKey)
	if block == nil {
		return nil, errors.New("the server sent no PEM public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the server's public key: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("the server's public key is not RSA")
	}
	plain := append([]byte(password), 0)
	for i := range plain {
		plain[i] ^= nonce[i%len(nonce)]
	}
	return rsa.EncryptOAEP(sha1.New(), rand.Reader, rk, plain, nil) //nolint:gosec // as MySQL defines it
}

func itoa(n int) string { return strconv.Itoa(n) }
