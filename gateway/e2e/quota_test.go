package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// TestFullSpoolRefusesNewSessions: with the collector down, a session fills
// the spool to its quota. New sessions are then refused with a clear
// PostgreSQL error (the default overflow policy), the live fail-open session
// goes on, and once the collector drains the spool sessions are accepted
// again.
func TestFullSpoolRefusesNewSessions(t *testing.T) {
	s := newStack(t, stackOptions{spool: "  max_bytes: 34MiB\n  segment_bytes: 17MiB\n"})
	s.startGateway() // no collector: nothing leaves the spool
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn("alice", alicePassword, "demo-postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	refused := func() (bool, string) {
		c, err := pgx.Connect(ctx, s.dsn("alice", alicePassword, "demo-postgres"))
		if err == nil {
			c.Close(ctx)
			return false, "new session accepted"
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "57P03" && strings.Contains(pgErr.Message, "cannot record") {
			return true, ""
		}
		return false, err.Error()
	}
	// Large statements fill the quota quickly; smaller ones then fill the
	// gap a large record no longer fits in, until not even a session-start
	// record does.
	full := false
	for _, size := range []int{60 << 10, 4 << 10, 64} {
		stmt := "select '" + strings.Repeat("x", size) + "'"
		for i := 0; i < 2000 && !full; i++ {
			if _, err := conn.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatalf("fail-open session broke at a %d-byte statement: %v", size, err)
			}
			if i%10 == 9 {
				full, _ = refused()
			}
		}
	}
	if !full {
		t.Fatal("the spool never filled up: new sessions were still accepted")
	}
	// The live session is fail-open: it keeps working while unrecorded.
	var one int
	if err := conn.QueryRow(ctx, "select 1", pgx.QueryExecModeSimpleProtocol).Scan(&one); err != nil || one != 1 {
		t.Fatalf("live fail-open session after the spool filled: %v", err)
	}
	s.startCollector()
	testenv.Eventually(t, 90*time.Second, 500*time.Millisecond, func() (bool, string) {
		ok, msg := refused()
		return !ok, msg
	})
}
