package postgres

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// PostgreSQL 17 clients may start TLS without SSLRequest (ALPN "postgresql").
func TestDirectTLSNegotiation(t *testing.T) {
	pg := postgresServer(t)
	cfg := baseConfig(t, pg.demoAccount(t))
	cfg.Postgres.TLS = mintServerTLS(t, pg)
	g := startGateway(t, cfg)
	c := connectPgx(t, g.tlsConnString(testUser, testPassword, "demo", "verify-full", pg.CAFile)+" sslnegotiation=direct")
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatal("not TLS")
	}
	var one int
	if err := c.QueryRow(context.Background(), "select 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

// A cancel request with an unknown key, or a known pid with the wrong
// secret, is dropped: the connection closes and nothing is cancelled.
func TestCancelWithWrongKeyIsIgnored(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
	c := connectPgx(t, g.connString(testUser, testPassword, "demo"))
	pid := c.PgConn().PID()
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(context.Background(), "select pg_sleep(0.5)")
		done <- err
	}()
	wrongSecret := binary.BigEndian.AppendUint32(nil, c.PgConn().SecretKey()^1)
	for _, key := range []cancelKey{{pid: pid, secret: wrongSecret}, {pid: pid ^ 0x5a5a, secret: []byte{0, 0, 0, 1}}} {
		conn, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		req := appendCancelRequest(nil, key)
		if _, err := conn.Write(req); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(conn); err != nil || len(b) != 0 {
			t.Fatalf("gateway answered a cancel request: %q %v", b, err)
		}
		conn.Close()
	}
	if err := <-done; err != nil {
		t.Fatalf("statement was cancelled by a wrong key: %v", err)
	}
}

// scriptedUpstream is a stand-in PostgreSQL server for the one thing a real
// server will not do: break the protocol. It accepts a trust login, then
// answers the first query with reply.
type scriptedUpstream struct {
	ln    net.Listener
	reply []byte
	wg    sync.WaitGroup
}

func newScriptedUpstream(t *testing.T, reply []byte) *scriptedUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedUpstream{ln: ln, reply: reply}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *scriptedUpstream) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			be := pgproto3.NewBackend(conn, conn)
			msg, err := be.ReceiveStartupMessage()
			if _, isStartup := msg.(*pgproto3.StartupMessage); err != nil || !isStartup {
				return // as PostgreSQL does after a cancel request
			}
			be.Send(&pgproto3.AuthenticationOk{})
			be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "16.0"})
			be.Send(&pgproto3.BackendKeyData{ProcessID: 7, SecretKey: 8})
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			if be.Flush() != nil {
				return
			}
			if _, err := be.Receive(); err != nil {
				return
			}
			_, _ = conn.Write(s.reply)
			_, _ = io.Copy(io.Discard, conn)
		}()
	}
}

func (s *scriptedUpstream) account() config.Account {
	addr := s.ln.Addr().(*net.TCPAddr)
	return config.Account{Name: "scripted", Type: "postgres", Host: "127.0.0.1", Port: addr.Port, Database: "x", User: "x"}
}

func TestServerProtocolViolations(t *testing.T) {
	tests := []struct {
		name    string
		reply   []byte
		wantMsg string
	}{
		{name: "authentication request after startup", reply: []byte{'R', 0, 0, 0, 8, 0, 0, 0, 0}, wantMsg: `server sent invalid message type 'R'`},
		{name: "length below 4", reply: []byte{'T', 0, 0, 0, 1}, wantMsg: "invalid server message length 1"},
		{name: "unknown type", reply: []byte{'!', 0, 0, 0, 4}, wantMsg: `server sent invalid message type '!'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newScriptedUpstream(t, tt.reply)
			g := startGateway(t, baseConfig(t, up.account()))
			c := rawSession(t, g, "scripted")
			q, _ := (&pgproto3.Query{String: "select 1"}).Encode(nil)
			if _, err := c.Write(q); err != nil {
				t.Fatal(err)
			}
			e := lastError(t, readUntilClosed(t, c))
			if e.Code != "08P01" || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("client got %s %q, want 08P01 %q", e.Code, e.Message, tt.wantMsg)
			}
			end := g.endOf(t, 0)
			if end.End.Reason != schema.EndProtocolError {
				t.Errorf("end %+v, want protocol_error", end.End)
			}
			qs := queries(g.rec.Events())
			if len(qs) != 1 || qs[0].Text != "select 1" || qs[0].ErrorMessage == "" {
				t.Errorf("statement not recorded as unanswered: %+v", qs)
			}
		})
	}
}
