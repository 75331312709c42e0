package postgres

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// rawLogin logs in to the gateway asking for protocol 3.minor, answering
// SCRAM by hand, and returns the negotiated minor version (from
// NegotiateProtocolVersion, else the one asked for) and the BackendKeyData.
func rawLogin(t *testing.T, g *gateway, minor uint32) (net.Conn, uint32, cancelKey) {
	t.Helper()
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write(appendStartupMessage(nil, 3<<16|minor, []startupParam{{"user", testUser}, {"database", "demo"}})); err != nil {
		t.Fatal(err)
	}
	negotiated := minor
	var key cancelKey
	var sc *scram.ClientExchange
	for {
		typ, body, err := readTypedMessage(c, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		var reply []byte
		switch typ {
		case 'v':
			negotiated = binary.BigEndian.Uint32(body) & 0xffff
		case 'R':
			switch code := binary.BigEndian.Uint32(body); code {
			case authSASL:
				if sc, err = scram.NewClientExchange(testPassword); err != nil {
					t.Fatal(err)
				}
				first := sc.First()
				b := append([]byte(scram.MechanismSHA256), 0)
				b = binary.BigEndian.AppendUint32(b, uint32(len(first)))
				reply = appendMessage(nil, 'p', append(b, first...))
			case authSASLContinue:
				final, err := sc.Final(body[4:])
				if err != nil {
					t.Fatal(err)
				}
				reply = appendMessage(nil, 'p', final)
			case authSASLFinal:
				if err := sc.Verify(body[4:]); err != nil {
					t.Fatal(err)
				}
			case authOK:
			default:
				t.Fatalf("unexpected authentication request %d", code)
			}
		case 'K':
			var ok bool
			if key, ok = parseBackendKeyData(body); !ok {
				t.Fatalf("malformed BackendKeyData %x", body)
			}
		case 'E':
			t.Fatalf("login refused: %q", body)
		case 'Z':
			_ = c.SetDeadline(time.Time{})
			return c, negotiated, key
		}
		if reply != nil {
			if _, err := c.Write(reply); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// simpleQuery sends one Query and returns the first column of its first
// row, or the SQLSTATE of its error.
func simpleQuery(t *testing.T, c net.Conn, sql string) (value, sqlstate string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := c.Write(appendMessage(nil, 'Q', append([]byte(sql), 0))); err != nil {
		t.Fatal(err)
	}
	for {
		typ, body, err := readTypedMessage(c, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case 'D':
			r := msgReader{b: body}
			if r.int16() > 0 {
				if n := int(r.int32()); n >= 0 && value == "" {
					value = string(r.next(n))
				}
			}
		case 'E':
			sqlstate = parseErrorFields(&decoder{cs: utf8Charset}, body).code
		case 'Z':
			return value, sqlstate
		}
	}
}

// Protocol 3.2 clients get a 32-byte gateway secret with the server's real
// PID, even from a server that speaks only 3.0 (PostgreSQL 15 here answers
// the gateway's 3.2 request with NegotiateProtocolVersion), and their
// longer cancel requests cancel their statement. Newer minor versions are
// negotiated down to 3.2, 3.1 to 3.0.
func TestProtocol32CancelKeys(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
	tests := []struct {
		ask, want uint32
		secretLen int
	}{
		{ask: 0, want: 0, secretLen: secretLen30},
		{ask: 1, want: 0, secretLen: secretLen30},
		{ask: 2, want: 2, secretLen: secretLen32},
		{ask: 5, want: 2, secretLen: secretLen32},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("3.%d", tt.ask), func(t *testing.T) {
			c, negotiated, key := rawLogin(t, g, tt.ask)
			if negotiated != tt.want || len(key.secret) != tt.secretLen {
				t.Fatalf("negotiated 3.%d with a %d-byte secret, want 3.%d and %d bytes", negotiated, len(key.secret), tt.want, tt.secretLen)
			}
			pid, _ := simpleQuery(t, c, "select pg_backend_pid()")
			if pid != strconv.FormatUint(uint64(key.pid), 10) {
				t.Fatalf("BackendKeyData PID %d, server says %s", key.pid, pid)
			}
			done := make(chan string, 1)
			go func() {
				_, code := simpleQuery(t, c, "select pg_sleep(30)")
				done <- code
			}()
			// A cancel arriving before the statement runs is a no-op.
			testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
				q := backendQuery(t, pg, key.pid)
				return q == "select pg_sleep(30)", fmt.Sprintf("backend %d runs %q", key.pid, q)
			})
			cc, err := net.Dial("tcp", g.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			if _, err := cc.Write(appendCancelRequest(nil, key)); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-done:
				if code != "57014" {
					t.Fatalf("statement ended with %q, want 57014 (cancelled)", code)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the cancel request did not cancel the statement")
			}
		})
	}
}
