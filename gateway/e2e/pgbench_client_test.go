package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/postgres/clienttests"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestPgbenchClientInElasticsearch runs pgbench's scripted workload
// (clienttests.PgbenchRuns: simple queries, several statements in one
// Query, parameters of several types in extended and prepared mode, a
// pipeline, a 100k-row result, an error and pgbench's ROLLBACK in a retried
// transaction, a server-side cancel, COPY both ways) direct and through
// the whole pipeline. pgbench must report the same values, errors and
// per-statement counts both ways, and Elasticsearch must hold, for each
// invocation, exactly one event per executed statement, in pam.seq order,
// with its text, parameters, tag, rows, error and, for COPY, the bytes
// moved; every session must end with the client quitting.
//
// pgbench cannot send COPY data, a CancelRequest, or go on after most
// errors; package clienttests says exactly why and what stands in for each.
func TestPgbenchClientInElasticsearch(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.start()
	host, port := s.gatewayHostPort(t)
	runs := clienttests.PgbenchRuns()
	since := time.Now()
	for _, run := range runs {
		direct := clienttests.RunPgbench(t, run, s.pg.Host, s.pg.Port, s.pg.DemoUser, s.pg.DemoPassword, s.pg.DemoDB)
		via := clienttests.RunPgbench(t, run, host, port, "alice", alicePassword, "demo-postgres")
		if via != direct {
			t.Fatalf("%s: pgbench reported differently through the gateway:\n%s\ndirect:\n%s", run.Name, via, direct)
		}
	}
	// Each invocation is two sessions: pgbench's setup connection, which
	// runs nothing, then the client's.
	wantSessions := 2 * len(runs)
	evs := s.waitEvents(90*time.Second, review.Filter{Since: since.Add(-time.Second)}, func(evs []review.Event) (bool, string) {
		ends := 0
		for _, e := range evs {
			if e.EventName == schema.EventSessionEnd {
				ends++
			}
		}
		return ends >= wantSessions, fmt.Sprintf("%d/%d sessions ended; %s", ends, wantSessions, describe(evs))
	})
	checkExactlyOnce(t, evs, true)

	var workloads [][]review.Event // sessions that ran statements, in start order
	sessions := bySession(evs)
	for id, list := range sessions {
		if end := list[len(list)-1]; end.EventName != schema.EventSessionEnd || end.Str(schema.AttrEndReason) != schema.EndClientQuit {
			t.Errorf("session %s: last event %s (%s), want %s with %s", id, end.EventName, end.Str(schema.AttrEndReason), schema.EventSessionEnd, schema.EndClientQuit)
		}
		if countQueries(list) > 0 {
			workloads = append(workloads, list)
		}
	}
	if len(sessions) != wantSessions || len(workloads) != len(runs) {
		t.Fatalf("%d sessions, %d with statements; want %d and %d", len(sessions), len(workloads), wantSessions, len(runs))
	}
	sort.Slice(workloads, func(i, j int) bool { return workloads[i][0].Observed.Before(workloads[j][0].Observed) })
	for i, run := range runs {
		t.Run(run.Name, func(t *testing.T) {
			var got []clienttests.Recorded
			for _, e := range workloads[i] {
				if e.EventName != schema.EventDBQuery {
					continue
				}
				got = append(got, recordedStatement(e))
				checkStatementDetails(t, run, e)
			}
			clienttests.CheckExact(t, run.Want, got)
		})
	}
}

// checkStatementDetails checks what clienttests.Recorded leaves out: COPY
// bytes (present exactly on COPY statements) and the server's error message.
func checkStatementDetails(t *testing.T, run clienttests.PgbenchRun, e review.Event) {
	t.Helper()
	text := e.Str(schema.AttrDBQueryText)
	wantCopy := int64(-1) // absent
	if strings.HasPrefix(strings.ToLower(text), "copy") {
		wantCopy = run.CopyBytes
	}
	if got := e.Int(schema.AttrDBCopyBytes); got != wantCopy {
		t.Errorf("%q: %s = %d, want %d (-1: absent)", text, schema.AttrDBCopyBytes, got, wantCopy)
	}
	if e.Str(schema.AttrDBStatusCode) == "" {
		return
	}
	msg := e.Str(schema.AttrErrorMessage)
	// pgbench prints the error that ended it as "ERROR:  <message>".
	if _, printed, ok := strings.Cut(run.Fails, "ERROR:  "); msg == "" || ok && msg != printed {
		t.Errorf("%q: error message %q, want %q", text, msg, printed)
	}
}
