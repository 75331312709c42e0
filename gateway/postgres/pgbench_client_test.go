package postgres

import (
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/postgres/clienttests"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// pgbench runs its scripted workload (clienttests.PgbenchRuns: simple
// queries, several statements in one Query, parameters of several types in
// extended and prepared mode, a pipeline, a 100k-row result, an error and
// pgbench's ROLLBACK in a retried transaction, a server-side cancel, COPY
// both ways) direct and through the gateway: pgbench must report the same
// values, errors and per-statement counts both ways, and the gateway must
// record exactly the statements the script executed, in order, each with
// its response, and end both of pgbench's sessions cleanly. What pgbench
// cannot do is listed in package clienttests.
func TestPgbenchClient(t *testing.T) {
	pg := postgresServer(t)
	for _, run := range clienttests.PgbenchRuns() {
		t.Run(run.Name, func(t *testing.T) {
			g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
			direct := clienttests.RunPgbench(t, run, pg.Host, pg.Port, pg.DemoUser, pg.DemoPassword, pg.DemoDB)
			via := clienttests.RunPgbench(t, run, g.host, g.port, testUser, testPassword, "demo")
			if via != direct {
				t.Fatalf("pgbench reported differently through the gateway:\n%s\ndirect:\n%s", via, direct)
			}
			// pgbench's setup connection, then the client's.
			evs := g.waitEnds(2)
			for _, e := range evs {
				if e.Kind == "end" && e.End.Reason != schema.EndClientQuit {
					t.Errorf("session %s ended with %s %q, want %s", e.Session, e.End.Reason, e.End.Message, schema.EndClientQuit)
				}
			}
			qs := queries(evs)
			clienttests.CheckExact(t, run.Want, recorded(qs))
			checkCopyBytes(t, qs, run.CopyBytes)
		})
	}
}

// checkCopyBytes verifies every COPY statement recorded the bytes it moved.
func checkCopyBytes(t *testing.T, qs []recorder.Query, want int64) {
	t.Helper()
	for _, q := range qs {
		if strings.HasPrefix(strings.ToLower(q.Text), "copy") && q.CopyBytes != want {
			t.Errorf("%q: %d COPY bytes recorded, want %d", q.Text, q.CopyBytes, want)
		}
	}
}
