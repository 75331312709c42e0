package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/postgres/clienttests"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// backendQuery returns what backend pid is running while active, "" when
// idle and "<gone>" when there is no such backend, asked directly as admin.
func backendQuery(t *testing.T, pg pgServer, pid uint32) string {
	t.Helper()
	c := connectPgx(t, pg.AdminDSN(pg.DemoDB))
	var q *string
	err := c.QueryRow(context.Background(), "select case when state = 'active' then query else '' end from pg_stat_activity where pid = $1", int32(pid)).Scan(&q)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "<gone>"
	case err != nil:
		t.Fatal(err)
	case q == nil:
		return ""
	}
	return *q
}

func backendAlive(t *testing.T, pg pgServer, pid uint32) bool {
	return backendQuery(t, pg, pid) != "<gone>"
}

// The client is told the server's real backend PID: pg_backend_pid() and
// pg_stat_activity agree with it.
func TestClientSeesTheServersBackendPID(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
	c := connectPgx(t, g.connString(testUser, testPassword, "demo"))
	var server uint32
	if err := c.QueryRow(context.Background(), "select pg_backend_pid()").Scan(&server); err != nil {
		t.Fatal(err)
	}
	if c.PgConn().PID() != server {
		t.Fatalf("client was told PID %d, server says %d", c.PgConn().PID(), server)
	}
	if !backendAlive(t, pg, c.PgConn().PID()) {
		t.Fatalf("PID %d not in pg_stat_activity", c.PgConn().PID())
	}
}

// pg_terminate_backend on the session's own backend, by pg_backend_pid()
// or by the PID the client was told, ends that session: the client sees
// 57P01, the server's backend is gone and the session's end is recorded.
func TestTerminateOwnBackend(t *testing.T) {
	pg := postgresServer(t)
	clienttests.Install(t, "python")
	tests := []struct {
		client string
		byPID  bool
	}{
		{"pgx", false}, {"pgx", true},
		{"psycopg", false}, {"psycopg", true},
		{"psql", false},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s/client-side-pid=%v", tt.client, tt.byPID)
		t.Run(name, func(t *testing.T) {
			g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
			switch tt.client {
			case "pgx":
				c := connectPgx(t, g.connString(testUser, testPassword, "demo"))
				pid := c.PgConn().PID()
				target := "pg_backend_pid()"
				if tt.byPID {
					target = fmt.Sprint(pid)
				}
				_, err := c.Exec(context.Background(), "select pg_terminate_backend("+target+")")
				var pe *pgconn.PgError
				if !errors.As(err, &pe) || pe.Code != "57P01" {
					t.Fatalf("terminating %s: %v, want SQLSTATE 57P01", target, err)
				}
				testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
					return !backendAlive(t, pg, pid), fmt.Sprintf("backend %d still alive", pid)
				})
			case "psycopg":
				check := "terminate-self"
				if tt.byPID {
					check = "terminate-pid"
				}
				got := clienttests.RunPython(t, "fidelity.py", g.host, g.port, testUser, testPassword, "demo", check)
				if want := `{"closed": true, "pid_matches_server": true, "sqlstate": "57P01"}`; got != want {
					t.Fatalf("psycopg %s: %s, want %s", check, got, want)
				}
			case "psql":
				// psql has no variable holding the PID libpq was told;
				// psycopg above checks that one through the same libpq.
				out := runPsql(t, g.connString(testUser, testPassword, "demo"), testPassword,
					"select pg_terminate_backend(pg_backend_pid());\n")
				if !strings.Contains(out, "terminating connection due to administrator command") {
					t.Fatalf("psql output %q, want the 57P01 message", out)
				}
			}
			// The terminating statement carries the server's 57P01, and
			// the session ends as ended by the server, even when the
			// client closes before the server's EOF reaches the gateway.
			evs := g.waitEnds(1)
			var terminated bool
			for _, q := range queries(evs) {
				terminated = terminated || (strings.Contains(q.Text, "pg_terminate_backend") && q.ErrorCode == "57P01")
			}
			if !terminated {
				t.Errorf("no pg_terminate_backend statement recorded with 57P01: %v", summarize(evs))
			}
			end := g.endOf(t, 0)
			if end.End.Reason != schema.EndUpstreamClosed || !strings.Contains(end.End.Message, "57P01") {
				t.Errorf("session end %+v, want %s with the server's 57P01", end.End, schema.EndUpstreamClosed)
			}
		})
	}
}

// A pool that checks its connections replaces one terminated by its PID,
// as pools that recycle connections do: the terminate hits the right
// backend (true, not "not a PostgreSQL backend process"), and the next
// acquire gets a healthy, different backend.
func TestPoolReplacesATerminatedConnection(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
	cfg, err := pgxpool.ParseConfig(g.connString(testUser, testPassword, "demo"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return true } // health check on every acquire
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	victim, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killer, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victimPID := victim.Conn().PgConn().PID()
	var terminated bool
	if err := killer.QueryRow(ctx, "select pg_terminate_backend($1)", int32(victimPID)).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v; want true", victimPID, terminated, err)
	}
	killer.Release()
	victim.Release()
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		return !backendAlive(t, pg, victimPID), fmt.Sprintf("backend %d still alive", victimPID)
	})
	seen := map[uint32]bool{}
	for range 4 { // every pooled connection, fresh or reused, is alive
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		var pid uint32
		if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatalf("pooled connection after the terminate: %v", err)
		}
		if pid == victimPID || pid != c.Conn().PgConn().PID() {
			t.Fatalf("pooled connection on backend %d (told %d), terminated was %d", pid, c.Conn().PgConn().PID(), victimPID)
		}
		seen[pid] = true
		if len(seen) == 2 {
			break
		}
	}
}

// LISTEN/NOTIFY on one connection: the notification's sender PID is the
// connection's own backend PID, so "ignore my own notifications" works.
func TestNotifySelfCarriesOwnPID(t *testing.T) {
	pg := postgresServer(t)
	clienttests.Install(t, "python")
	g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
	got := clienttests.RunPython(t, "fidelity.py", g.host, g.port, testUser, testPassword, "demo", "notify-self")
	if want := `{"count": 1, "own_pid": true, "payload": "hello"}`; got != want {
		t.Fatalf("psycopg notify-self: %s, want %s", got, want)
	}
}

// A cancel from one connection cancels only that connection's statement,
// never another session's running at the same time.
func TestCancelOnlyOwnQuery(t *testing.T) {
	pg := postgresServer(t)
	t.Run("psycopg", func(t *testing.T) {
		clienttests.Install(t, "python")
		g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
		got := clienttests.RunPython(t, "fidelity.py", g.host, g.port, testUser, testPassword, "demo", "cancel-own")
		var res map[string]string
		if err := json.Unmarshal([]byte(got), &res); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if res["cancelled"] != "57014" || res["other"] != "ok" {
			t.Fatalf("psycopg cancel-own: %s, want the cancelled one 57014 and the other ok", got)
		}
	})
	t.Run("pgx", func(t *testing.T) {
		g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
		victim := connectPgxCancelling(t, g.connString(testUser, testPassword, "demo"))
		other := connectPgx(t, g.connString(testUser, testPassword, "demo"))
		otherDone := make(chan error, 1)
		go func() {
			_, err := other.Exec(context.Background(), "select pg_sleep(2)")
			otherDone <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := victim.Exec(ctx, "select pg_sleep(30)")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("cancelled statement: %v, want SQLSTATE 57014", err)
		}
		if err := <-otherDone; err != nil {
			t.Fatalf("the other session's statement: %v, want it to finish", err)
		}
	})
}
