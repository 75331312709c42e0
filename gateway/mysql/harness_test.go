package mysql

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

const (
	testUser     = "alice"
	testPassword = "alice-test-password"
	testAccount  = "demo-mysql"
)

var testVerifier = func() string {
	v, err := scram.NewVerifier(testPassword, 4096)
	if err != nil {
		panic(err)
	}
	return v.String()
}()

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

// gateway is an engine on a loopback port for one test.
type gateway struct {
	t      testing.TB
	engine *Engine
	addr   string
	rec    *recordertest.Memory // nil when recording elsewhere
	cfg    *config.Config
	db     testenv.MariaDB
}

type gatewayOption func(*config.Config)

// startGateway serves a MySQL engine whose demo-mysql account logs in to
// the local MariaDB as its demo user.
func startGateway(t testing.TB, opts ...gatewayOption) *gateway {
	t.Helper()
	rec := recordertest.New()
	g := startGatewayRecording(t, rec, opts...)
	g.rec = rec
	return g
}

// startGatewayRecording is startGateway recording into rec.
func startGatewayRecording(t testing.TB, rec recorder.Recorder, opts ...gatewayOption) *gateway {
	t.Helper()
	db := testenv.MySQL(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "demo.password")
	if err := os.WriteFile(pwFile, []byte(db.DemoPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Gateway.ID = "test-gateway"
	cfg.MySQL = &config.MySQLListen{Address: "127.0.0.1:0", MaxPacketBytes: 1 << 20, AuthTimeout: config.Duration(10 * time.Second)}
	cfg.Users = []config.User{{Name: testUser, PostgresSCRAM: testVerifier}}
	cfg.Accounts = []config.Account{{
		Name: testAccount, Type: "mysql", Host: db.Host, Port: db.Port, User: db.DemoUser,
		Database: db.TestDB, Secret: config.SecretRef{File: pwFile},
		FailurePolicy: "fail-open", Mode: "async",
	}}
	cfg.Grants = []config.Grant{{User: testUser, Accounts: []string{testAccount}}}
	for _, o := range opts {
		o(cfg)
	}
	e, err := New(Options{Deps: engine.Deps{Config: cfg, Recorder: rec, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.Serve(ln) }()
	g := &gateway{t: t, engine: e, addr: ln.Addr().String(), cfg: cfg, db: db}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return g
}

// dsn is a go-sql-driver DSN through the gateway.
func (g *gateway) dsn(params string) string {
	c := gomysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = testUser, testPassword, "tcp", g.addr, testAccount
	c.MultiStatements = true
	c.InterpolateParams = false
	dsn := c.FormatDSN()
	if params != "" {
		dsn += "&" + params
	}
	return dsn
}

func (g *gateway) open(params string) *sql.DB {
	g.t.Helper()
	db, err := sql.Open("mysql", g.dsn(params))
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { _ = db.Close() })
	return db
}

// queries are the recorded statements, in order.
func (g *gateway) queries() []recordertest.Event {
	var out []recordertest.Event
	for _, ev := range g.rec.Events() {
		if ev.Kind == "query" {
			out = append(out, ev)
		}
	}
	return out
}

// waitEvents polls until pred holds for the recorded events.
func (g *gateway) waitEvents(what string, pred func([]recordertest.Event) bool) []recordertest.Event {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := g.rec.Events()
		if pred(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("timed out waiting for %s; events: %+v", what, evs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
