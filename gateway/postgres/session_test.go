package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// rawSession logs in through the gateway with pgconn and hands back the
// raw connection, to send the gateway bytes no well-behaved client sends.
func rawSession(t *testing.T, g *gateway, account string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, g.connString(testUser, testPassword, account))
	if err != nil {
		t.Fatal(err)
	}
	h, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Conn.Close() })
	return h.Conn
}

// readUntilClosed returns everything the gateway sends until it closes.
func readUntilClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the gateway did not close the connection")
	}
	return b
}

// lastError decodes the last ErrorResponse in a byte stream.
func lastError(t *testing.T, stream []byte) *pgproto3.ErrorResponse {
	t.Helper()
	var last *pgproto3.ErrorResponse
	for len(stream) >= 5 {
		n := int(stream[1])<<24 | int(stream[2])<<16 | int(stream[3])<<8 | int(stream[4])
		if n < 4 || 1+n > len(stream) {
			break
		}
		if stream[0] == 'E' {
			last = &pgproto3.ErrorResponse{}
			if err := last.Decode(stream[5 : 1+n]); err != nil {
				t.Fatal(err)
			}
		}
		stream = stream[1+n:]
	}
	if last == nil {
		t.Fatalf("no ErrorResponse in %q", stream)
	}
	return last
}

// endOf waits for the end event of the session number n (0-based).
func (g *gateway) endOf(t *testing.T, n int) recordertest.Event {
	t.Helper()
	evs := g.waitEnds(n + 1)
	i := 0
	for _, e := range evs {
		if e.Kind == "end" {
			if i == n {
				return e
			}
			i++
		}
	}
	panic("unreachable")
}

// A message that breaks the protocol ends that session with 08P01 and a
// protocol_error record; other sessions carry on.
func TestClientProtocolViolations(t *testing.T) {
	pg := postgresServer(t)
	cfg := baseConfig(t, pg.demoAccount(t))
	cfg.Postgres.MaxMessageBytes = 4096
	g := startGateway(t, cfg)
	bystander := connectPgx(t, g.connString(testUser, testPassword, "demo"))
	big := append([]byte{'Q', 0, 0, 0x20, 0}, make([]byte, 100)...)
	tests := []struct {
		name    string
		bytes   []byte
		wantMsg string
	}{
		{name: "unknown message type", bytes: []byte{'z', 0, 0, 0, 4}, wantMsg: `invalid frontend message type 'z'`},
		{name: "length below 4", bytes: []byte{'Q', 0, 0, 0, 2}, wantMsg: "invalid client message length 2"},
		{name: "message over the limit", bytes: big, wantMsg: "over the limit of 4096 bytes"},
		{name: "password message after login", bytes: []byte{'p', 0, 0, 0, 5, 0}, wantMsg: `invalid frontend message type 'p'`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rawSession(t, g, "demo")
			if _, err := c.Write(tt.bytes); err != nil {
				t.Fatal(err)
			}
			e := lastError(t, readUntilClosed(t, c))
			if e.Code != "08P01" || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("client got %s %q, want 08P01 %q", e.Code, e.Message, tt.wantMsg)
			}
			end := g.endOf(t, i)
			if end.End.Reason != schema.EndProtocolError || !strings.Contains(end.End.Message, tt.wantMsg) {
				t.Errorf("recorded end %+v", end.End)
			}
			var one int
			if err := bystander.QueryRow(context.Background(), "select 1").Scan(&one); err != nil {
				t.Fatalf("another session was disturbed: %v", err)
			}
		})
	}
}

// The limits hold in both relays.
func TestSessionLimits(t *testing.T) {
	for _, mode := range relayModes {
		t.Run(mode.name, func(t *testing.T) { testSessionLimits(t, mode.loops) })
	}
}

func testSessionLimits(t *testing.T, loops int) {
	pg := postgresServer(t)
	idle := pg.demoAccount(t)
	idle.Name, idle.IdleTimeout = "idle", config.Duration(300*time.Millisecond)
	short := pg.demoAccount(t)
	short.Name, short.MaxDuration = "short", config.Duration(700*time.Millisecond)
	cfg := baseConfig(t, idle, short)
	cfg.Postgres.EventLoops = &loops
	g := startGateway(t, cfg)
	ctx := context.Background()

	t.Run("idle timeout spares running statements", func(t *testing.T) {
		c := connectPgx(t, g.connString(testUser, testPassword, "idle"))
		if _, err := c.Exec(ctx, "select pg_sleep(0.8)"); err != nil {
			t.Fatalf("a statement running longer than the idle timeout was cut: %v", err)
		}
		end := g.endOf(t, 0)
		if end.End.Reason != schema.EndIdleTimeout {
			t.Fatalf("end %+v, want idle_timeout", end.End)
		}
		_, err := c.Exec(ctx, "select 1")
		if err == nil {
			t.Fatal("session still usable after the idle timeout")
		}
	})
	t.Run("max duration", func(t *testing.T) {
		c := rawSession(t, g, "short")
		start := time.Now()
		e := lastError(t, readUntilClosed(t, c))
		if e.Code != "57P01" || !strings.Contains(e.Message, "maximum session duration") {
			t.Errorf("client got %s %q", e.Code, e.Message)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("ended after %s", d)
		}
		if end := g.endOf(t, 1); end.End.Reason != schema.EndMaxDuration {
			t.Fatalf("end %+v, want max_duration", end.End)
		}
	})
}

func TestShutdownEndsSessions(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
	c := rawSession(t, g, "demo")
	// An expired deadline ends live sessions at once (the drain itself is
	// in gateway/engine's shared contract test).
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.engine.Shutdown(expired); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	e := lastError(t, readUntilClosed(t, c))
	if e.Code != "57P01" {
		t.Errorf("client got %s %q, want 57P01", e.Code, e.Message)
	}
	if end := g.endOf(t, 0); end.End.Reason != schema.EndShutdown {
		t.Fatalf("end %+v, want gateway_shutdown", end.End)
	}
	if _, err := net.DialTimeout("tcp", g.addr, time.Second); err == nil {
		t.Error("still accepting connections after Shutdown")
	}
}

// Under fail-closed the recorder's refusal ends the session before the
// client sees the statement's completion.
func TestFailClosedRecordingEndsSession(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
	c := connectPgx(t, g.connString(testUser, testPassword, "demo"))
	g.rec.SetFailWith(errors.New("spool is full"))
	_, err := c.Exec(context.Background(), "select 1")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "XX000" || !strings.Contains(pe.Message, "could not record") {
		t.Fatalf("client got %v, want XX000 could not record", err)
	}
	if end := g.endOf(t, 0); end.End.Reason != schema.EndRecordingError {
		t.Fatalf("end %+v, want recording_error", end.End)
	}
}

// Abrupt disconnects on either side end the session with the right reason
// and leave no goroutine behind (TestMain checks with goleak).
func TestAbruptDisconnects(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
	admin := connectPgx(t, pg.directDSN(pg.AdminUser, pg.AdminPassword, "postgres"))
	ctx := context.Background()

	t.Run("client vanishes mid-query", func(t *testing.T) {
		c := rawSession(t, g, "demo")
		q, _ := (&pgproto3.Query{String: "select pg_sleep(30)"}).Encode(nil)
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
		waitForActivity(t, admin, "select pg_sleep(30)", true)
		c.Close()
		end := g.endOf(t, 0)
		if end.End.Reason != schema.EndNetworkError {
			t.Fatalf("end %+v, want network_error", end.End)
		}
		waitForActivity(t, admin, "select pg_sleep(30)", false)
	})
	t.Run("upstream backend terminated", func(t *testing.T) {
		c := connectPgx(t, g.connString(testUser, testPassword, "demo"))
		var pid int
		if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(ctx, "select pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
		end := g.endOf(t, 1)
		if end.End.Reason != schema.EndUpstreamClosed {
			t.Fatalf("end %+v, want upstream_closed", end.End)
		}
		_, err := c.Exec(ctx, "select 1")
		if err == nil {
			t.Fatal("query succeeded on a terminated session")
		}
	})
}

// waitForActivity polls pg_stat_activity until a backend runs sql (or none
// does any more).
func waitForActivity(t *testing.T, admin *pgx.Conn, sql string, present bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var n int
		err := admin.QueryRow(context.Background(),
			"select count(*) from pg_stat_activity where query = $1 and pid <> pg_backend_pid()", sql).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if (n > 0) == present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q running=%v: timed out", sql, present)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Credentials never reach a record or a log line: not the account's
// upstream secret, not the user's password, not a wrong password tried.
func TestCredentialsNeverRecordedOrLogged(t *testing.T) {
	pg := postgresServer(t)
	const wrongUpstream = "canary-upstream-secret-7f3a"
	const wrongPassword = "canary-wrong-password-91c2"
	broken := pg.account(t, "broken", pg.MD5User, wrongUpstream, pg.DemoDB)
	plain := pg.account(t, "plain", pg.PlainUser, pg.PlainPassword, pg.DemoDB)
	g := startGateway(t, baseConfig(t, pg.demoAccount(t), broken, plain))
	ctx := context.Background()
	for _, account := range []string{"demo", "plain"} {
		c := connectPgx(t, g.connString(testUser, testPassword, account))
		if _, err := c.Exec(ctx, "select current_user, $1::text", "harmless"); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
	connectErr(t, g.connString(testUser, wrongPassword, "demo"))
	connectErr(t, g.connString(testUser, testPassword, "broken"))
	g.waitEnds(2)
	g.shutdown()
	recorded := fmt.Sprintf("%+v", g.rec.Events())
	logs := g.logs.String()
	for name, secret := range map[string]string{"upstream SCRAM secret": pg.DemoPassword, "upstream cleartext secret": pg.PlainPassword,
		"wrong upstream secret": wrongUpstream, "user password": testPassword, "wrong user password": wrongPassword} {
		if strings.Contains(recorded, secret) {
			t.Errorf("the %s appears in the records", name)
		}
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
	if !strings.Contains(recorded, "upstream_failed") || !strings.Contains(logs, "authentication failed") {
		t.Fatal("the canary scenario did not run: no upstream failure recorded or logged")
	}
}
