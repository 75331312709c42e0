package mysql

import (
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/mysql/wire"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

// rawClient speaks the protocol by hand through the gateway, for what the
// client libraries here do not send: cursors, long data, COM_CHANGE_USER,
// and a KILL aimed at the connection id the gateway handed out.
type rawClient struct {
	t  *testing.T
	up *upstreamConn
}

// dialRaw logs in to the gateway with the engine's own client login code
// (caching_sha2_password, RSA key exchange without TLS).
func dialRaw(t *testing.T, g *gateway) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	up := &upstreamConn{conn: conn, pc: wire.NewConn(conn)}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// Without CLIENT_DEPRECATE_EOF: the classic EOF packets, which the
	// library tests do not cover.
	c := &clientConn{caps: capsOffered &^ wire.ClientDeprecateEOF, collation: defaultCollation}
	if err := g.engine.login(up, &config.Account{Name: "raw", User: testUser, Database: testAccount}, c, testPassword); err != nil {
		t.Fatalf("raw login: %v", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return &rawClient{t: t, up: up}
}

// Response shapes rawClient.command reads.
const (
	okOnly    = iota // OK or ERR
	resultSet        // a column count, definitions, EOF, rows, EOF (or OK/ERR)
	rowsOnly         // rows, EOF: a cursor fetch
)

// command sends one command and returns the payloads of its response.
func (c *rawClient) command(p []byte, shape int) [][]byte {
	c.t.Helper()
	c.up.pc.Seq = 0
	if err := c.up.pc.WritePayload(p); err != nil {
		c.t.Fatal(err)
	}
	_ = c.up.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var out [][]byte
	inRows := shape == rowsOnly
	for {
		r, err := c.up.pc.ReadPayload()
		if err != nil {
			c.t.Fatalf("reading the response: %v (so far %q)", err, out)
		}
		out = append(out, r)
		switch {
		case r[0] == wire.HeaderErr:
			return out
		case !inRows && r[0] == wire.HeaderOK:
			return out
		case inRows && wire.IsEOF(r):
			return out
		case !inRows && shape == resultSet && len(out) > 1 && wire.IsEOF(r):
			if _, status := wire.ParseEOF(r); status&wire.StatusCursorExists != 0 {
				return out // the rows come with COM_STMT_FETCH
			}
			inRows = true // the EOF after the column definitions
		}
	}
}

func stmtPacket(cmd byte, id uint32, rest ...byte) []byte {
	return append(binary.LittleEndian.AppendUint32([]byte{cmd}, id), rest...)
}

// TestKillQueryByGatewayID kills a running query from a second connection
// with the connection id the gateway greeted the first one with, as the
// mariadb client's Ctrl-C does.
func TestKillQueryByGatewayID(t *testing.T) {
	g := startGateway(t)
	a := dialRaw(t, g)
	done := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		a.command(append([]byte{wire.ComQuery}, "SELECT SLEEP(30)"...), resultSet)
		done <- time.Since(start)
	}()
	db := g.open("")
	deadline := time.Now().Add(10 * time.Second)
	// The KILL must reach the server only once the sleep runs there.
	var killed bool
	for !killed && time.Now().Before(deadline) {
		var n int
		_ = db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(30)'").Scan(&n)
		killed = n > 0
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := db.Exec("KILL QUERY " + strconv.FormatUint(uint64(a.up.threadID), 10)); err != nil {
		t.Fatalf("KILL QUERY %d: %v", a.up.threadID, err)
	}
	select {
	case d := <-done:
		if d > 15*time.Second {
			t.Fatalf("the killed query ran %s", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the query was not killed")
	}
}

// TestCursorLongDataChangeUser covers a read-only cursor fetched in two
// steps, a parameter sent as long data, and the refused COM_CHANGE_USER.
func TestCursorLongDataChangeUser(t *testing.T) {
	g := startGateway(t)
	c := dialRaw(t, g)
	prep := c.command(append([]byte{wire.ComStmtPrepare}, "SELECT seq FROM seq_1_to_5"...), okOnly)
	id := binary.LittleEndian.Uint32(prep[0][1:])
	for range 2 { // the column definition and its EOF, read after the OK
		if _, err := c.up.pc.ReadPayload(); err != nil {
			t.Fatal(err)
		}
	}
	exec := c.command(stmtPacket(wire.ComStmtExecute, id, 1, 1, 0, 0, 0), resultSet)
	if _, status := wire.ParseEOF(exec[len(exec)-1]); status&wire.StatusCursorExists == 0 {
		t.Fatalf("no cursor opened: %q", exec)
	}
	f1 := c.command(stmtPacket(wire.ComStmtFetch, id, 3, 0, 0, 0), rowsOnly)
	f2 := c.command(stmtPacket(wire.ComStmtFetch, id, 3, 0, 0, 0), rowsOnly)
	if len(f1) != 4 || len(f2) != 3 {
		t.Fatalf("fetched %d and %d packets, want 3 rows + EOF and 2 rows + EOF", len(f1), len(f2))
	}

	prep = c.command(append([]byte{wire.ComStmtPrepare}, "SELECT LENGTH(?)"...), okOnly)
	id2 := binary.LittleEndian.Uint32(prep[0][1:])
	for range 4 {
		if _, err := c.up.pc.ReadPayload(); err != nil {
			t.Fatal(err)
		}
	}
	for _, chunk := range []string{"abc", "def"} {
		c.up.pc.Seq = 0
		if err := c.up.pc.WritePayload(append(stmtPacket(wire.ComStmtSendLongData, id2, 0, 0), chunk...)); err != nil {
			t.Fatal(err)
		}
	}
	res := c.command(stmtPacket(wire.ComStmtExecute, id2, 0, 1, 0, 0, 0, 0, 1, wire.TypeString, 0), resultSet)
	if row := res[len(res)-2]; !strings.Contains(string(row), "\x06") {
		t.Fatalf("LENGTH of the long data: %q", res)
	}
	cu := c.command([]byte{wire.ComChangeUser, 'b', 'o', 'b', 0, 0}, okOnly)
	if e, _ := wire.ParseErr(cu[0]); e.Code != erNotSupported {
		t.Fatalf("COM_CHANGE_USER answered %q", cu)
	}
	c.command(append([]byte{wire.ComQuery}, "SELECT 1"...), resultSet) // the session goes on
	c.up.pc.Seq = 0
	_ = c.up.pc.WritePayload([]byte{wire.ComQuit})

	evs := g.waitEvents("session end", func(evs []recordertest.Event) bool { return hasKind(evs, "end") })
	var fetched []int64
	for _, ev := range evs {
		if ev.Kind == "query" && strings.HasPrefix(ev.Query.Text, "-- FETCH") {
			fetched = append(fetched, ev.Query.ReturnedRows)
		}
	}
	if len(fetched) != 2 || fetched[0] != 3 || fetched[1] != 2 {
		t.Errorf("fetch events returned %v rows, want [3 2]", fetched)
	}
	if q := queryByText(evs, "SELECT LENGTH(?)"); len(q.Params) != 1 || q.Params[0] != "abcdef" || q.Preview != "6" {
		t.Errorf("long data event: %+v", q)
	}
	if q := queryByText(evs, "-- COM_CHANGE_USER"); q.ErrorNumber != erNotSupported {
		t.Errorf("change user event: %+v", q)
	}
	if q := queryByText(evs, "SELECT 1"); q.Preview != "1" {
		t.Errorf("statement after the refusal: %+v", q)
	}
}
