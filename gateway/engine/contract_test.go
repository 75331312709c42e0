package engine_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	gossh "golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/postgres"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	"github.com/pamtrail/pamtrail/gateway/schema"
	sshgw "github.com/pamtrail/pamtrail/gateway/ssh"
)

// client is one live session through an engine, driven by a real client
// library against the real server behind the gateway.
type client interface {
	// alive is nil while the session still carries traffic end to end.
	alive() error
	close()
}

// running is an engine serving on a loopback port.
type running struct {
	eng    engine.Engine
	addr   string
	rec    *recordertest.Memory
	served chan error
	dial   func(t *testing.T) client
}

// protocols are the engines under the one lifecycle contract.
var protocols = []struct {
	name  string
	start func(t *testing.T) *running
}{
	{"postgres", startPostgres},
	{"ssh", startSSH},
}

// TestShutdownContract checks engine.Lifecycle.Shutdown's contract on every
// engine, with real clients and the real PostgreSQL and OpenSSH behind.
func TestShutdownContract(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Run("safe before Serve and more than once", func(t *testing.T) {
				r := p.start(t)
				for range 2 {
					if err := r.eng.Shutdown(t.Context()); err != nil {
						t.Fatalf("Shutdown: %v", err)
					}
				}
				r.waitServed(t)
			})
			t.Run("stops accepting, drains until the deadline, then records gateway_shutdown", func(t *testing.T) {
				r := p.start(t)
				c := r.dial(t)
				defer c.close()
				const drain = 2 * time.Second
				began := time.Now()
				returned := r.shutdown(drain)
				testenv.Eventually(t, 5*time.Second, 20*time.Millisecond, func() (bool, string) {
					conn, err := net.DialTimeout("tcp", r.addr, time.Second)
					if err == nil {
						conn.Close()
					}
					return err != nil, "the listener still accepts after Shutdown started"
				})
				if err := c.alive(); err != nil {
					t.Fatalf("the live session was cut before the deadline: %v", err)
				}
				if err := <-returned; err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
				if took := time.Since(began); took < drain || took > drain+engine.EndGrace {
					t.Errorf("Shutdown returned after %s; want between the deadline (%s) and EndGrace after it", took, drain)
				}
				r.wantEnd(t, schema.EndShutdown)
				if err := c.alive(); err == nil {
					t.Error("the session still works after Shutdown returned")
				}
				r.waitServed(t)
			})
			t.Run("returns as soon as the last session ends on its own", func(t *testing.T) {
				r := p.start(t)
				c := r.dial(t)
				began := time.Now()
				returned := r.shutdown(time.Minute)
				c.close()
				if err := <-returned; err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
				if took := time.Since(began); took > 10*time.Second {
					t.Errorf("Shutdown took %s after the only session ended", took)
				}
				if end := r.end(t).End; end.Reason == schema.EndShutdown {
					t.Errorf("a session that ended on its own was recorded as %s", end.Reason)
				}
			})
			t.Run("an expired deadline ends sessions at once and never waits without bound", func(t *testing.T) {
				r := p.start(t)
				c := r.dial(t)
				defer c.close()
				began := time.Now()
				if err := <-r.shutdown(0); err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
				if took := time.Since(began); took > engine.EndGrace {
					t.Errorf("Shutdown took %s with an expired deadline", took)
				}
				r.wantEnd(t, schema.EndShutdown)
			})
			t.Run("EndSession ends one live session by id", func(t *testing.T) {
				r := p.start(t)
				c := r.dial(t)
				defer c.close()
				live := r.eng.Sessions()
				if len(live) != 1 {
					t.Fatalf("sessions %+v", live)
				}
				if s := live[0]; s.Protocol != p.name || s.User != "alice" || s.Account != "lifecycle" || s.ID == "" {
					t.Errorf("registered session %+v", s)
				}
				if r.eng.EndSession("no-such-session", "test_terminated", "by the test") {
					t.Error("EndSession of an unknown id reported true")
				}
				if !r.eng.EndSession(live[0].ID, "test_terminated", "by the test") {
					t.Fatal("EndSession reported no such session")
				}
				r.wantEnd(t, "test_terminated")
				testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, func() (bool, string) {
					return c.alive() != nil && len(r.eng.Sessions()) == 0, "the session outlived EndSession"
				})
			})
		})
	}
}

// shutdown runs Shutdown with a deadline d from now, in the background.
func (r *running) shutdown(d time.Duration) <-chan error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	out := make(chan error, 1)
	go func() {
		defer cancel()
		out <- r.eng.Shutdown(ctx)
	}()
	return out
}

func (r *running) waitServed(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.served:
		if err != nil {
			t.Errorf("Serve returned %v after Shutdown, want nil", err)
		}
		r.served <- nil
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return after Shutdown")
	}
}

// end waits for the one session's end record.
func (r *running) end(t *testing.T) recordertest.Event {
	t.Helper()
	evs, ok := r.rec.WaitFor(10*time.Second, func(evs []recordertest.Event) bool { return len(ends(evs)) > 0 })
	if !ok || len(ends(evs)) != 1 {
		t.Fatalf("want one session end, recorded %+v", evs)
	}
	return ends(evs)[0]
}

func (r *running) wantEnd(t *testing.T, reason string) {
	t.Helper()
	if end := r.end(t); end.End.Reason != reason {
		t.Errorf("session ended with %q (%s), want %q", end.End.Reason, end.End.Message, reason)
	}
}

func ends(evs []recordertest.Event) []recordertest.Event {
	var out []recordertest.Event
	for _, e := range evs {
		if e.Kind == "end" {
			out = append(out, e)
		}
	}
	return out
}

// serve starts eng on a loopback port; the test's end shuts it down.
func serve(t *testing.T, eng engine.Engine, rec *recordertest.Memory, dial func(addr string) func(t *testing.T) client) *running {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &running{eng: eng, addr: ln.Addr().String(), rec: rec, served: make(chan error, 1)}
	connect := dial(r.addr)
	// A client may finish logging in before the engine registers its
	// session, and Shutdown cuts a connection without one: each case
	// starts from a registered session.
	r.dial = func(t *testing.T) client {
		before := len(eng.Sessions())
		c := connect(t)
		testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, func() (bool, string) {
			return len(eng.Sessions()) > before, "the session was never registered"
		})
		return c
	}
	go func() { r.served <- eng.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = eng.Shutdown(ctx)
	})
	return r
}

func writeSecret(t *testing.T, name, value string) string {
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// parse is a validated config for one listener and one account, lifecycle,
// granted to alice.
func parse(t *testing.T, listener, user, account string) *config.Config {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
%s
spool: {dir: %[2]q, key_file: %[3]q}
users: [%[4]s]
accounts: [%[5]s]
grants: [{user: alice, accounts: [lifecycle]}]
`, listener, filepath.Join(dir, "spool"), filepath.Join(dir, "spool.key"), user, account)), dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const alicePassword = "alice-lifecycle-password"

func startPostgres(t *testing.T) *running {
	pg := testenv.Postgres(t)
	verifier, err := scram.NewVerifier(alicePassword, 4096)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, "postgres: {address: 127.0.0.1:0}",
		fmt.Sprintf("{name: alice, postgres_scram: %q}", verifier.String()),
		fmt.Sprintf("{name: lifecycle, type: postgres, host: %s, port: %d, database: %s, user: %s, secret: {file: %q}}",
			pg.Host, pg.Port, pg.DemoDB, pg.DemoUser, writeSecret(t, "pg.password", pg.DemoPassword)))
	rec := recordertest.New()
	eng, err := postgres.New(postgres.Options{Deps: engine.Deps{Config: cfg, Recorder: rec}})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, eng, rec, func(addr string) func(t *testing.T) client {
		return func(t *testing.T) client {
			host, port, _ := net.SplitHostPort(addr)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s user=alice password=%s dbname=lifecycle sslmode=disable",
				host, port, alicePassword))
			if err != nil {
				t.Fatalf("connecting through the gateway: %v", err)
			}
			return pgClient{conn}
		}
	})
}

type pgClient struct{ conn *pgx.Conn }

func (c pgClient) alive() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.conn.Exec(ctx, "select 1")
	return err
}

func (c pgClient) close() { _ = c.conn.Close(context.Background()) }

func startSSH(t *testing.T) *running {
	target := testenv.SSHD(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := parse(t, fmt.Sprintf("ssh: {address: 127.0.0.1:0, host_key_file: %q}", filepath.Join(dir, "host_key")),
		fmt.Sprintf("{name: alice, ssh_authorized_keys: [%q]}", gossh.MarshalAuthorizedKey(signer.PublicKey())),
		fmt.Sprintf("{name: lifecycle, type: ssh, host: %s, port: %d, user: %s, secret: {file: %q}, known_hosts: %s}",
			target.Host, target.Port, target.User, target.KeyFile, strconv.Quote(target.KnownHosts)))
	rec := recordertest.New()
	eng, err := sshgw.New(sshgw.Options{Deps: engine.Deps{Config: cfg, Recorder: rec}})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, eng, rec, func(addr string) func(t *testing.T) client {
		return func(t *testing.T) client {
			c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{
				User:            "lifecycle",
				Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
				HostKeyCallback: gossh.FixedHostKey(eng.HostKey()),
				Timeout:         10 * time.Second,
			})
			if err != nil {
				t.Fatalf("connecting through the gateway: %v", err)
			}
			return sshClient{c}
		}
	})
}

type sshClient struct{ c *gossh.Client }

// alive runs a command on the target through the gateway.
func (c sshClient) alive() error {
	s, err := c.c.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	out, err := s.Output("echo alive")
	if err == nil && string(out) != "alive\n" {
		err = errors.New("unexpected output " + strconv.Quote(string(out)))
	}
	return err
}

func (c sshClient) close() { _ = c.c.Close() }
