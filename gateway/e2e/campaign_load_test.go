package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// rowsPerClient spaces the clients' row numbers: client c inserts
// c*rowsPerClient+1, c*rowsPerClient+2, ... so every row number, and so
// every statement text, is unique across the campaign.
const rowsPerClient = 1_000_000

// statement is one INSERT a client sent, and what the client saw.
type statement struct {
	row    int64
	client int
	sent   time.Time
	// acked is when the client received the command completion; zero when
	// the statement failed (the gateway was killed under it).
	acked time.Time
}

// workload is `clients` concurrent pgx sessions through the gateway, each
// inserting numbered rows into a table of its own test at a paced rate and
// recording every statement it saw acknowledged. After a connection error
// (a killed gateway) a client reconnects and goes on with the next number.
type workload struct {
	t        *testing.T
	s        *stack
	table    string
	clients  int
	interval time.Duration // pacing per client
	tolerate bool          // connection errors are expected (crash campaign)
	cancel   context.CancelFunc
	stopOnce sync.Once
	wg       sync.WaitGroup
	mu       sync.Mutex
	stmts    []statement
	ended    atomic.Int64 // sessions the clients ended cleanly at stop
	connects atomic.Int64 // sessions opened, the first ones included
}

// newWorkload creates the table directly in PostgreSQL (not through the
// gateway, so setup is not part of the recording) and drops it at the end.
func newWorkload(t *testing.T, s *stack, clients int, perClientRate float64, tolerateErrors bool) *workload {
	t.Helper()
	w := &workload{
		t: t, s: s, table: "campaign_" + randomHex(5), clients: clients,
		interval: time.Duration(float64(time.Second) / perClientRate), tolerate: tolerateErrors,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.pg.DemoDSN())
	if err != nil {
		t.Fatalf("connecting to PostgreSQL directly: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "create table "+w.table+" (n bigint primary key, client int not null)"); err != nil {
		t.Fatalf("creating %s: %v", w.table, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, s.pg.DemoDSN()); err == nil {
			_, _ = c.Exec(ctx, "drop table if exists "+w.table)
			c.Close(ctx)
		}
	})
	return w
}

// insertSQL is the statement text of row n; parseRow reads n back from the
// recorded text.
func (w *workload) insertSQL(n int64, client int) string {
	return fmt.Sprintf("insert into %s (n, client) values (%d, %d)", w.table, n, client)
}

func (w *workload) start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for c := 1; c <= w.clients; c++ {
		w.wg.Add(1)
		go w.runClient(ctx, c)
	}
	// A test that fails early must not leave clients reporting into it.
	w.t.Cleanup(w.stop)
}

// stop ends every client's session (cleanly, with a session-end event, when
// the gateway is up) and waits for them. It is idempotent.
func (w *workload) stop() {
	w.stopOnce.Do(func() {
		w.cancel()
		w.wg.Wait()
	})
}

func (w *workload) runClient(ctx context.Context, client int) {
	defer w.wg.Done()
	next := int64(client) * rowsPerClient
	var conn *pgx.Conn
	defer func() {
		// The campaign is over and the gateway is up: a clean end of session.
		if conn != nil && !conn.IsClosed() && closeConn(conn) == nil {
			w.ended.Add(1)
		}
	}()
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C: // pacing the workload, not waiting for a result
		}
		if conn == nil {
			conn = w.connect(ctx)
			if conn == nil {
				return // ctx done
			}
		}
		next++
		st := statement{row: next, client: client, sent: time.Now()}
		execCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := conn.Exec(execCtx, w.insertSQL(next, client), pgx.QueryExecModeSimpleProtocol)
		cancel()
		if err == nil {
			st.acked = time.Now()
		}
		w.mu.Lock()
		w.stmts = append(w.stmts, st)
		w.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !w.tolerate {
				w.t.Errorf("client %d: row %d failed although the gateway stayed up: %v", client, next, err)
				return
			}
			// The gateway died under the statement: its outcome is unknown
			// to the client, exactly as for a real user.
			_ = closeConn(conn)
			conn = nil
		}
	}
}

// connect retries until the gateway accepts the session or ctx ends.
func (w *workload) connect(ctx context.Context) *pgx.Conn {
	for {
		dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := pgx.Connect(dialCtx, w.s.dsn("alice", alicePassword, "demo-postgres"))
		cancel()
		if err == nil {
			w.connects.Add(1)
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		if !w.tolerate {
			w.t.Errorf("connecting through the gateway: %v", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond): // the gateway is restarting
		}
	}
}

// closeConn sends Terminate; on a live gateway that ends the session with a
// session-end event.
func closeConn(conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return conn.Close(ctx)
}

// statements returns a copy of everything sent so far.
func (w *workload) statements() []statement {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]statement(nil), w.stmts...)
}

// acked counts acknowledged statements.
func (w *workload) acked() int {
	n := 0
	for _, st := range w.statements() {
		if !st.acked.IsZero() {
			n++
		}
	}
	return n
}

// waitAcked polls until at least n more statements than now were
// acknowledged, so that a fault always hits a session under load.
func (w *workload) waitAcked(n int) {
	w.t.Helper()
	target := w.acked() + n
	testenv.Eventually(w.t, 60*time.Second, 20*time.Millisecond, func() (bool, string) {
		got := w.acked()
		return got >= target, fmt.Sprintf("%d/%d statements acknowledged", got, target)
	})
}

// committedRows reads the row numbers PostgreSQL holds, directly.
func (w *workload) committedRows() map[int64]bool {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, w.s.pg.DemoDSN())
	if err != nil {
		w.t.Fatalf("connecting to PostgreSQL directly: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "select n from "+w.table)
	if err != nil {
		w.t.Fatalf("reading %s: %v", w.table, err)
	}
	out := map[int64]bool{}
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			w.t.Fatal(err)
		}
		out[n] = true
	}
	if err := rows.Err(); err != nil {
		w.t.Fatal(err)
	}
	return out
}
