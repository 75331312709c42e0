package mysql

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

// TestGoDriver runs go-sql-driver/mysql through the gateway against real
// MariaDB: text queries, a multi-statement text, prepared statements with
// typed parameters, an error, and checks each statement is recorded once,
// in order, with its response.
func TestGoDriver(t *testing.T) {
	g := startGateway(t)
	db := g.open("")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustExec := func(q string, args ...any) sql.Result {
		t.Helper()
		r, err := conn.ExecContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return r
	}
	mustExec("DROP TABLE IF EXISTS gw_items")
	mustExec("CREATE TABLE gw_items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2), seen DATETIME(6), data BLOB)")
	r := mustExec("INSERT INTO gw_items (name, price, seen, data) VALUES (?, ?, ?, ?)", "café", 12.5, time.Date(2026, 12, 3, 10, 0, 0, 123000, time.UTC), []byte{0, 1, 2})
	if id, _ := r.LastInsertId(); id != 1 {
		t.Fatalf("last insert id = %d, want 1", id)
	}
	mustExec("INSERT INTO gw_items (name) VALUES ('b'), ('c'); UPDATE gw_items SET price = 1 WHERE name <> 'café'")
	var n int
	var name string
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*), MIN(name) FROM gw_items WHERE id > ?", 0).Scan(&n, &name); err != nil {
		t.Fatal(err)
	}
	if n != 3 || name != "b" {
		t.Fatalf("got %d %q", n, name)
	}
	if _, err := conn.ExecContext(ctx, "SELECT * FROM no_such_table"); err == nil || !strings.Contains(err.Error(), "1146") {
		t.Fatalf("error = %v, want 1146", err)
	}
	conn.Close()
	db.Close()

	evs := g.waitEvents("session end", func(evs []recordertest.Event) bool { return hasKind(evs, "end") })
	var got []string
	for _, ev := range evs {
		if ev.Kind == "query" {
			got = append(got, ev.Query.Text)
		}
	}
	want := []string{
		"DROP TABLE IF EXISTS gw_items",
		"CREATE TABLE gw_items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2), seen DATETIME(6), data BLOB)",
		"INSERT INTO gw_items (name, price, seen, data) VALUES (?, ?, ?, ?)",
		"INSERT INTO gw_items (name) VALUES ('b'), ('c')",
		"UPDATE gw_items SET price = 1 WHERE name <> 'café'",
		"SELECT COUNT(*), MIN(name) FROM gw_items WHERE id > ?",
		"SELECT * FROM no_such_table",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("recorded statements:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	q := queryByText(evs, want[2])
	if q.LastInsertID != 1 || q.RowsAffected != 1 || q.Protocol != "extended" {
		t.Errorf("insert event: %+v", q)
	}
	if strings.Join(q.Params, "|") != `café|12.5|2026-12-03 10:00:00.000123|\x000102` {
		t.Errorf("insert params = %q", q.Params)
	}
	if q := queryByText(evs, want[4]); q.RowsAffected != 2 || q.CommandTag != "UPDATE 2" {
		t.Errorf("update event: %+v", q)
	}
	if q := queryByText(evs, want[5]); q.ReturnedRows != 1 || q.Preview != "3 | b" || strings.Join(q.Columns, ",") != "COUNT(*),MIN(name)" {
		t.Errorf("select event: %+v", q)
	}
	if q := queryByText(evs, want[6]); q.ErrorCode != "42S02" || q.ErrorNumber != 1146 {
		t.Errorf("error event: %+v", q)
	}
}

func hasKind(evs []recordertest.Event, kind string) bool {
	for _, ev := range evs {
		if ev.Kind == kind {
			return true
		}
	}
	return false
}

func queryByText(evs []recordertest.Event, text string) recorder.Query {
	for _, ev := range evs {
		if ev.Kind == "query" && ev.Query.Text == text {
			return ev.Query
		}
	}
	return recorder.Query{}
}
