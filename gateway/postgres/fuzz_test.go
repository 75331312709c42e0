package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// The fuzz targets feed untrusted bytes through the exact path the relay
// uses: frame scanner, then tracker. Seeds under testdata/fuzz are real
// traffic of psql and pgx sessions in Go's corpus format (regenerate them
// with PAMTRAIL_WRITE_FUZZ_SEEDS=1 go test -run TestCaptureFuzzSeeds).

func fuzzTracker() (*tracker, *int) {
	n := new(int)
	lim := limits{previewRows: 3, previewBytes: 256, maxParamBytes: 64}
	tr := newTracker(lim, func(q recorder.Query) error {
		*n++
		if len(q.Preview) > lim.previewBytes+64 {
			panic(fmt.Sprintf("preview of %d bytes exceeds its bound", len(q.Preview)))
		}
		return nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return tr, n
}

// feedChunked scans stream in reads of varying sizes, as TCP delivers it.
func feedChunked(tr *tracker, sc *frameScanner, stream []byte, chunk int) error {
	chunk = chunk%61 + 1
	for i := 0; i < len(stream); i += chunk {
		tr.begin(time.Unix(int64(i), 0))
		err := sc.feed(stream[i:min(i+chunk, len(stream))])
		tr.end()
		if err != nil {
			return err
		}
	}
	return nil
}

// FuzzClientMessages feeds arbitrary client bytes: the scanner and tracker
// must reject or track them without panicking, and the session close must
// account for whatever was left pending.
func FuzzClientMessages(f *testing.F) {
	f.Add([]byte("Q\x00\x00\x00\x0dselect 1\x00"), uint8(3))
	f.Fuzz(func(t *testing.T, client []byte, chunk uint8) {
		tr, _ := fuzzTracker()
		cs := &frameScanner{maxLen: 1 << 16, side: "client", obs: clientSide{tr}}
		_ = feedChunked(tr, cs, client, int(chunk))
		if err := tr.close(time.Unix(1e6, 0)); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzServerMessages feeds a client stream then arbitrary server bytes: the
// response parser and pairing must never panic, and must keep their
// memory bounds.
func FuzzServerMessages(f *testing.F) {
	f.Add([]byte("Q\x00\x00\x00\x0dselect 1\x00"), []byte("C\x00\x00\x00\x0dSELECT 1\x00Z\x00\x00\x00\x05I"), uint8(1))
	f.Fuzz(func(t *testing.T, client, server []byte, chunk uint8) {
		tr, _ := fuzzTracker()
		cs := &frameScanner{maxLen: 1 << 16, side: "client", obs: clientSide{tr}}
		ss := &frameScanner{maxLen: 1 << 16, side: "server", obs: serverSide{tr}}
		if feedChunked(tr, cs, client, int(chunk)) != nil {
			return
		}
		_ = feedChunked(tr, ss, server, int(chunk)+7)
		if len(tr.done) > maxPendingEvents {
			t.Fatalf("%d events held, over the bound of %d", len(tr.done), maxPendingEvents)
		}
		if err := tr.close(time.Unix(1e6, 0)); err != nil {
			t.Fatal(err)
		}
	})
}

// captureConn records the bytes a session exchanges with the upstream
// server: writes are the client's stream, reads the server's.
type captureConn struct {
	net.Conn
	mu            sync.Mutex
	sent, receive []byte
}

func (c *captureConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.receive = append(c.receive, b[:n]...)
	c.mu.Unlock()
	return n, err
}

func (c *captureConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.sent = append(c.sent, b...)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// afterStartup drops the login exchange, keeping what the relay scans:
// the client stream after its startup packet and password messages, the
// server stream after its first ReadyForQuery.
func afterStartup(client, server []byte) ([]byte, []byte) {
	if len(client) >= 4 {
		client = client[binary.BigEndian.Uint32(client):]
	}
	for len(client) >= 5 && client[0] == 'p' {
		client = client[1+binary.BigEndian.Uint32(client[1:]):]
	}
	for len(server) >= 5 {
		typ, n := server[0], 1+int(binary.BigEndian.Uint32(server[1:]))
		server = server[n:]
		if typ == 'Z' {
			break
		}
	}
	return client, server
}

// TestCaptureFuzzSeeds records real psql and pgx traffic as fuzz seeds.
func TestCaptureFuzzSeeds(t *testing.T) {
	if os.Getenv("PAMTRAIL_WRITE_FUZZ_SEEDS") == "" {
		for _, target := range []string{"FuzzClientMessages", "FuzzServerMessages"} {
			entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", target))
			if err != nil || len(entries) < 2 {
				t.Errorf("testdata/fuzz/%s holds no captured traffic (%v); regenerate with PAMTRAIL_WRITE_FUZZ_SEEDS=1", target, err)
			}
		}
		return
	}
	pg := postgresServer(t)
	var mu sync.Mutex
	var conns []*captureConn
	g := startGatewayWith(t, baseConfig(t, pg.demoAccount(t)), func(o *Options) {
		o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cc := &captureConn{Conn: c}
			mu.Lock()
			conns = append(conns, cc)
			mu.Unlock()
			return cc, nil
		}
	})
	// psql: the simple protocol, COPY, notices, errors.
	script := "select 1 as one, 'two' as two;\nselect 1 \\; select 1/0 \\; select 3;\nbegin;\ncreate temp table p(a int, b text);\n" +
		"copy p from stdin;\n1\tx\n2\ty\n\\.\ncopy p to stdout;\nsavepoint s;\ninsert into p values ('bad', 'z');\nrollback to s;\ncommit;\n" +
		"do $$ begin raise notice 'n %', 1; end $$;\nselect $$a;b$$, E'x\\'y';\nlisten c;\nnotify c, 'payload';\n"
	runPsql(t, g.connString(testUser, testPassword, "demo"), testPassword, script)
	// pgx: the extended protocol, binary parameters, pipelines, binary COPY.
	ctx := context.Background()
	c := connectPgx(t, g.connString(testUser, testPassword, "demo"))
	_ = rowsOf(ctx, c, "select $1::int8, $2::text, $3::numeric, $4::timestamptz, $5::int4[], $6::bytea, $7::uuid",
		int64(7), "txt", "1.5", time.Unix(0, 0), []int32{1, 2}, []byte{1}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	batch := &pgx.Batch{}
	batch.Queue("create temp table b(a int primary key)")
	batch.Queue("insert into b values ($1)", 1)
	batch.Queue("insert into b values ($1)", 1)
	batch.Queue("select * from b")
	_ = c.SendBatch(ctx, batch).Close()
	_, _ = c.Exec(ctx, "create temp table cp(a int, b text)")
	_, _ = c.CopyFrom(ctx, pgx.Identifier{"cp"}, []string{"a", "b"}, pgx.CopyFromRows([][]any{{1, "a"}, {2, nil}}))
	_ = rowsOf(ctx, c, "select g from generate_series(1, 50) g")
	c.Close(ctx)
	g.waitEnds(2)

	mu.Lock()
	defer mu.Unlock()
	for i, cc := range conns {
		client, server := afterStartup(cc.sent, cc.receive)
		name := []string{"psql", "pgx"}[i%2]
		writeCorpus(t, "FuzzClientMessages", name, client, uint8(len(client)))
		writeCorpus(t, "FuzzServerMessages", name, client, server, uint8(len(server)))
	}
}

// writeCorpus writes one seed in Go's fuzz corpus format.
func writeCorpus(t *testing.T, target, name string, args ...any) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "captured-"+name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
