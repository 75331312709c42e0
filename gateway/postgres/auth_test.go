package postgres

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// connectErr connects and returns the server's error, which must be a
// PostgreSQL ErrorResponse.
func connectErr(t *testing.T, dsn string) *pgconn.PgError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err == nil {
		c.Close(ctx)
		t.Fatal("connection succeeded, want an error")
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a PostgreSQL ErrorResponse", err)
	}
	return pe
}

func TestAuthFailures(t *testing.T) {
	pg := postgresServer(t)
	broken := pg.account(t, "broken", pg.DemoUser, "wrong-upstream-password", pg.DemoDB)
	noDB := pg.account(t, "nodb", pg.DemoUser, pg.DemoPassword, "no_such_database")
	cfg := baseConfig(t, pg.demoAccount(t), broken, noDB)
	g := startGateway(t, cfg)
	tests := []struct {
		name        string
		user, pass  string
		account     string
		wantCode    string
		wantReason  string
		wantMessage string
	}{
		{name: "wrong password", user: testUser, pass: "nope", account: "demo", wantCode: "28P01", wantReason: schema.AuthBadPassword,
			wantMessage: `password authentication failed for user "alice"`},
		{name: "unknown user looks the same", user: "mallory", pass: "nope", account: "demo", wantCode: "28P01", wantReason: schema.AuthUnknownUser,
			wantMessage: `password authentication failed for user "mallory"`},
		{name: "unknown account", user: testUser, pass: testPassword, account: "nosuch", wantCode: "28000", wantReason: schema.AuthUnknownAccount,
			wantMessage: `user "alice" may not use account "nosuch"`},
		{name: "no grant looks the same", user: otherUser, pass: otherPass, account: "demo", wantCode: "28000", wantReason: schema.AuthNoGrant,
			wantMessage: `user "bob" may not use account "demo"`},
		{name: "upstream refuses the account's password", user: testUser, pass: testPassword, account: "broken", wantCode: "08006",
			wantReason: schema.AuthUpstreamFailed, wantMessage: `pamtrail could not log in to the server of account "broken"`},
		{name: "upstream database missing", user: testUser, pass: testPassword, account: "nodb", wantCode: "3D000",
			wantReason: schema.AuthUpstreamFailed, wantMessage: `server of account "nodb": database "no_such_database" does not exist`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pe := connectErr(t, g.connString(tt.user, tt.pass, tt.account))
			if pe.Code != tt.wantCode || pe.Message != tt.wantMessage {
				t.Errorf("client got %s %q, want %s %q", pe.Code, pe.Message, tt.wantCode, tt.wantMessage)
			}
			if pe.Detail != "" || pe.Hint != "" {
				t.Errorf("client got detail %q hint %q, want none", pe.Detail, pe.Hint)
			}
			evs, ok := g.rec.WaitFor(10*time.Second, func(evs []recordertest.Event) bool { return countKind(evs, "auth_failure") > i })
			if !ok {
				t.Fatalf("no auth failure recorded: %q", summarize(evs))
			}
			var f = evs[len(evs)-1].Failure
			if f.Reason != tt.wantReason || f.User != tt.user || f.Account != tt.account || f.ResourceType != schema.ResourcePostgres || f.ClientAddr != "127.0.0.1" {
				t.Errorf("recorded failure %+v, want reason %s", f, tt.wantReason)
			}
		})
	}
	if n := countKind(g.rec.Events(), "start"); n != 0 {
		t.Errorf("%d sessions started for refused logins", n)
	}
}

// Each upstream authentication method the account's role uses works, and
// the session runs as the account's role, never the gateway user.
func TestUpstreamAuthMethods(t *testing.T) {
	pg := postgresServer(t)
	tests := []struct {
		name    string
		account config.Account
		role    string
	}{
		{name: "scram-sha-256", account: pg.account(t, "scram", pg.DemoUser, pg.DemoPassword, pg.DemoDB), role: pg.DemoUser},
		{name: "md5", account: pg.account(t, "md5", pg.MD5User, pg.MD5Password, pg.DemoDB), role: pg.MD5User},
		{name: "password", account: pg.account(t, "plain", pg.PlainUser, pg.PlainPassword, pg.DemoDB), role: pg.PlainUser},
		{name: "trust", account: pg.account(t, "trust", pg.TrustUser, "", pg.DemoDB), role: pg.TrustUser},
	}
	var accounts []config.Account
	for _, tt := range tests {
		accounts = append(accounts, tt.account)
	}
	g := startGateway(t, baseConfig(t, accounts...))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connectPgx(t, g.connString(testUser, testPassword, tt.account.Name))
			var who string
			if err := c.QueryRow(context.Background(), "select current_user").Scan(&who); err != nil {
				t.Fatal(err)
			}
			if who != tt.role {
				t.Fatalf("current_user = %q, want %q", who, tt.role)
			}
		})
	}
}

// A garbage or oversized startup packet closes that connection only; the
// gateway keeps serving everyone else.
func TestMalformedStartupPackets(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
	healthy := connectPgx(t, g.connString(testUser, testPassword, "demo"))
	tests := []struct {
		name   string
		packet []byte
	}{
		{name: "http request", packet: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{name: "oversized length", packet: []byte{0x00, 0x10, 0x00, 0x00, 0, 3, 0, 0}},
		{name: "length too small", packet: []byte{0, 0, 0, 4}},
		{name: "unsupported protocol", packet: []byte{0, 0, 0, 8, 0, 2, 0, 0}},
		{name: "startup without terminator", packet: []byte{0, 0, 0, 13, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0}},
		{name: "bad ssl request length", packet: []byte{0, 0, 0, 12, 0x04, 0xd2, 0x16, 0x2f, 0, 0, 0, 0}},
		{name: "random bytes", packet: []byte{0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02}},
		{name: "truncated packet then hang-up", packet: []byte{0, 0, 0, 100, 0, 3, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", g.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(tt.packet); err != nil {
				t.Fatal(err)
			}
			if tt.name == "truncated packet then hang-up" {
				_ = conn.(*net.TCPConn).CloseWrite()
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 4096)
			var got []byte
			for {
				n, err := conn.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Fatal("the gateway kept the connection open")
					}
					break
				}
			}
			if len(got) > 0 && got[0] != 'E' {
				t.Fatalf("gateway answered %q, want an ErrorResponse or nothing", got)
			}
			// Others are unaffected.
			var one int
			if err := healthy.QueryRow(context.Background(), "select 1").Scan(&one); err != nil {
				t.Fatalf("existing session broken: %v", err)
			}
			fresh := connectPgx(t, g.connString(testUser, testPassword, "demo"))
			fresh.Close(context.Background())
		})
	}
}

func TestRequireTLSRefusesPlaintext(t *testing.T) {
	pg := postgresServer(t)
	cfg := baseConfig(t, pg.demoAccount(t))
	cfg.Postgres.TLS = mintServerTLS(t, pg)
	cfg.Postgres.RequireTLS = true
	g := startGateway(t, cfg)
	pe := connectErr(t, g.connString(testUser, testPassword, "demo"))
	if pe.Code != "28000" || !strings.Contains(pe.Message, "requires an encrypted connection") {
		t.Fatalf("got %s %q", pe.Code, pe.Message)
	}
	c := connectPgx(t, g.tlsConnString(testUser, testPassword, "demo", "verify-full", pg.CAFile))
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("connection is %T, want TLS", c.PgConn().Conn())
	}
}

// A client that stalls during startup or authentication is dropped after
// postgres.auth_timeout.
func TestAuthTimeout(t *testing.T) {
	pg := postgresServer(t)
	cfg := baseConfig(t, pg.demoAccount(t))
	cfg.Postgres.AuthTimeout = config.Duration(300 * time.Millisecond)
	g := startGateway(t, cfg)
	startup := appendStartupMessage(nil, protocolVersion30, []startupParam{{"user", testUser}, {"database", "demo"}})
	tests := []struct {
		name      string
		send      []byte
		wantError bool
	}{
		{name: "silent client", send: nil},
		{name: "no answer to the SASL challenge", send: startup, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", g.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got := readUntilClosed(t, c)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("dropped after %s, want about 300ms", d)
			}
			if tt.wantError {
				if e := lastError(t, got); e.Code != "08006" || !strings.Contains(e.Message, "timeout") {
					t.Fatalf("got %s %q", e.Code, e.Message)
				}
			}
		})
	}
}
