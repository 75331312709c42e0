package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

// Gateway users of the test configuration.
const (
	testUser     = "alice"
	testPassword = "alice-test-password"
	otherUser    = "bob" // exists, but has no grants
	otherPass    = "bob-test-password"
)

// gateway is an engine serving on a loopback port for one test.
type gateway struct {
	t      testing.TB
	engine *Engine
	addr   string
	host   string
	port   int
	rec    *recordertest.Memory
	cfg    *config.Config
	served chan error
	logs   *testLogWriter
}

// testVerifier caches SCRAM verifiers: deriving them is deliberately slow.
var testVerifiers = map[string]string{}

func verifierFor(t testing.TB, password string) string {
	if v, ok := testVerifiers[password]; ok {
		return v
	}
	v, err := scram.NewVerifier(password, 4096)
	if err != nil {
		t.Fatal(err)
	}
	testVerifiers[password] = v.String()
	return v.String()
}

// baseConfig is a gateway configuration with alice granted the given
// accounts; bob exists but has no grant.
func baseConfig(t testing.TB, accounts ...config.Account) *config.Config {
	cfg := config.Default()
	cfg.Gateway.ID = "test-gateway"
	cfg.Postgres = &config.PostgresListen{
		Address:         "127.0.0.1:0",
		MaxMessageBytes: 64 << 20,
		AuthTimeout:     config.Duration(10 * time.Second),
	}
	cfg.Users = []config.User{
		{Name: testUser, PostgresSCRAM: verifierFor(t, testPassword)},
		{Name: otherUser, PostgresSCRAM: verifierFor(t, otherPass)},
	}
	names := make([]string, 0, len(accounts))
	for _, a := range accounts {
		if a.Type == "" {
			a.Type = "postgres"
		}
		cfg.Accounts = append(cfg.Accounts, a)
		names = append(names, a.Name)
	}
	if len(names) > 0 {
		cfg.Grants = []config.Grant{{User: testUser, Accounts: names}}
	}
	return cfg
}

// startGateway serves cfg with an in-memory recorder until the test ends,
// then shuts the engine down and checks Serve returned cleanly.
func startGateway(t testing.TB, cfg *config.Config) *gateway {
	t.Helper()
	return startGatewayWith(t, cfg, nil)
}

// startGatewayWith lets the test adjust the engine options (dialer,
// recorder, logger) before the engine is built.
func startGatewayWith(t testing.TB, cfg *config.Config, adjust func(*Options)) *gateway {
	t.Helper()
	mem := recordertest.New()
	logs := &testLogWriter{t: t}
	opts := Options{Deps: engine.Deps{Config: cfg, Recorder: mem,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}}
	if adjust != nil {
		adjust(&opts)
	}
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, engine: e, addr: ln.Addr().String(), rec: mem, cfg: cfg, served: make(chan error, 1), logs: logs}
	g.host, g.port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	go func() { g.served <- e.Serve(ln) }()
	t.Cleanup(func() { g.shutdown() })
	return g
}

func (g *gateway) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.engine.Shutdown(ctx); err != nil {
		g.t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-g.served:
		if err != nil {
			g.t.Errorf("Serve returned %v after Shutdown, want nil", err)
		}
		g.served <- nil // later calls see it too
	case <-time.After(10 * time.Second):
		g.t.Error("Serve did not return after Shutdown")
	}
}

// connString is a libpq/pgx connection string through the gateway.
func (g *gateway) connString(user, password, account string) string {
	return g.tlsConnString(user, password, account, "disable", "")
}

// tlsConnString is connString with an sslmode and a root CA file.
func (g *gateway) tlsConnString(user, password, account, sslmode, rootCA string) string {
	s := fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=%s connect_timeout=10",
		g.host, g.port, user, password, account, sslmode)
	if rootCA != "" {
		s += " sslrootcert=" + rootCA
	}
	return s
}

// queries returns the recorded statements of all sessions, in order.
func queries(evs []recordertest.Event) []recorder.Query {
	var out []recorder.Query
	for _, e := range evs {
		if e.Kind == "query" {
			out = append(out, e.Query)
		}
	}
	return out
}

func countKind(evs []recordertest.Event, kind string) int {
	n := 0
	for _, e := range evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// waitEnds waits until n sessions have recorded their end.
func (g *gateway) waitEnds(n int) []recordertest.Event {
	g.t.Helper()
	evs, ok := g.rec.WaitFor(15*time.Second, func(evs []recordertest.Event) bool { return countKind(evs, "end") >= n })
	if !ok {
		g.t.Fatalf("timed out waiting for %d session ends; events: %+v", n, summarize(evs))
	}
	return evs
}

func summarize(evs []recordertest.Event) []string {
	var out []string
	for _, e := range evs {
		switch e.Kind {
		case "query":
			q := e.Query
			out = append(out, fmt.Sprintf("query %q tag=%q err=%s/%q rows=%d notexec=%v", q.Text, q.CommandTag, q.ErrorCode, q.ErrorMessage, q.ReturnedRows, q.NotExecuted))
		case "end":
			out = append(out, fmt.Sprintf("end %s %q", e.End.Reason, e.End.Message))
		case "auth_failure":
			out = append(out, fmt.Sprintf("auth_failure %s %q", e.Failure.Reason, e.Failure.Message))
		default:
			out = append(out, e.Kind)
		}
	}
	return out
}

// testLogWriter sends engine logs to the test log, so a failing test shows
// them and a passing one stays quiet, and keeps them for inspection.
type testLogWriter struct {
	t   testing.TB
	mu  sync.Mutex
	all strings.Builder
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.all.Write(p)
	w.mu.Unlock()
	defer func() { _ = recover() }() // a log line after the test ended
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

func (w *testLogWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// writeSecret stores an account secret in a 0600 file under the test's dir.
func writeSecret(t testing.TB, value string) config.SecretRef {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.SecretRef{File: p}
}

func itoa(i int) string { return strconv.Itoa(i) }
