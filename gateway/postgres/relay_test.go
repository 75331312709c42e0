package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// relayModes are the two relays every plaintext session can take: the
// shared epoll event loop (the default) and two goroutines per session.
var relayModes = []struct {
	name  string
	loops int
}{
	{"event_loop", 1},
	{"goroutines", 0},
}

// A client that stops reading a large result must not hold up anyone
// else: with an event loop shared by all sessions, the stuck session's
// direction is parked (backpressure) while others go on. Closing the
// stuck client then ends its session as a network error, and the gateway's
// memory did not grow with the unread result.
func TestStuckClientDoesNotStallOtherSessions(t *testing.T) {
	pg := postgresServer(t)
	for _, mode := range relayModes {
		t.Run(mode.name, func(t *testing.T) {
			cfg := baseConfig(t, pg.demoAccount(t))
			cfg.Postgres.EventLoops = &mode.loops
			g := startGateway(t, cfg)
			ctx := context.Background()

			stuck, err := pgconn.Connect(ctx, g.connString(testUser, testPassword, "demo"))
			if err != nil {
				t.Fatal(err)
			}
			// ~200 MB of rows the client never reads.
			raw := stuck.Conn()
			if _, err := raw.Write(queryMessage("select repeat('x', 1000) from generate_series(1, 200000)")); err != nil {
				t.Fatal(err)
			}
			heapBefore := memInUse()

			other := connectPgx(t, g.connString(testUser, testPassword, "demo"))
			qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			for i := range 200 {
				var got int
				if err := other.QueryRow(qctx, "select $1::int", i).Scan(&got); err != nil || got != i {
					t.Fatalf("query %d beside a stuck session (20s for all): %d, %v", i, got, err)
				}
			}
			if grown := int64(memInUse()) - int64(heapBefore); grown > 16<<20 {
				t.Errorf("gateway heap grew %d MiB while a client did not read its result", grown>>20)
			}
			_ = raw.Close()
			evs := g.waitEnds(1)
			var end string
			for _, e := range evs {
				if e.Kind == "end" {
					end = e.End.Reason
				}
			}
			if end != schema.EndNetworkError {
				t.Fatalf("stuck session ended with %q, want %q", end, schema.EndNetworkError)
			}
		})
	}
}

// A large COPY FROM STDIN outruns the server, so the relay must hold the
// client back (the other direction of backpressure) without losing or
// reordering a byte; the recorded event has the exact rows and bytes.
func TestLargeCopyInBothRelays(t *testing.T) {
	pg := postgresServer(t)
	const rows = 300000
	var data bytes.Buffer
	for i := range rows {
		fmt.Fprintf(&data, "%d\t%s\n", i, strings.Repeat("y", 100))
	}
	size := int64(data.Len())
	for _, mode := range relayModes {
		t.Run(mode.name, func(t *testing.T) {
			cfg := baseConfig(t, pg.demoAccount(t))
			cfg.Postgres.EventLoops = &mode.loops
			g := startGateway(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := connectPgx(t, g.connString(testUser, testPassword, "demo"))
			if _, err := c.Exec(ctx, "create temp table big (n int, s text)"); err != nil {
				t.Fatal(err)
			}
			tag, err := c.PgConn().CopyFrom(ctx, bytes.NewReader(data.Bytes()), "copy big from stdin")
			if err != nil || tag.RowsAffected() != rows {
				t.Fatalf("COPY through the gateway: %v, %v", tag, err)
			}
			var n, sum int64
			if err := c.QueryRow(ctx, "select count(*), sum(n) from big").Scan(&n, &sum); err != nil {
				t.Fatal(err)
			}
			if n != rows || sum != rows*(rows-1)/2 {
				t.Fatalf("server has %d rows summing to %d, want %d summing to %d", n, sum, rows, rows*(rows-1)/2)
			}
			_ = c.Close(ctx)
			var copyEvent *recorder.Query
			for _, q := range queries(g.waitEnds(1)) {
				if strings.HasPrefix(q.Text, "copy big") {
					copyEvent = &q
				}
			}
			if copyEvent == nil || copyEvent.RowsAffected != rows || copyEvent.CopyBytes != size {
				t.Fatalf("recorded COPY %+v, want %d rows and %d bytes", copyEvent, rows, size)
			}
		})
	}
}

func TestEventLoopCount(t *testing.T) {
	zero, three, auto := 0, 3, max(1, runtime.GOMAXPROCS(0)/4)
	tests := []struct {
		name       string
		configured *int
		want       int
	}{
		{"unset is one per four CPUs", nil, auto},
		{"zero turns loops off", &zero, 0},
		{"explicit", &three, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventLoopCount(tt.configured); got != tt.want {
				t.Fatalf("eventLoopCount = %d, want %d", got, tt.want)
			}
		})
	}
}

// queryMessage is a simple-protocol Query message.
func queryMessage(sql string) []byte {
	msg := []byte{'Q', 0, 0, 0, 0}
	msg = append(msg, sql...)
	msg = append(msg, 0)
	binary.BigEndian.PutUint32(msg[1:], uint32(len(msg)-1))
	return msg
}
