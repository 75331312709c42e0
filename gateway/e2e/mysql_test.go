package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestMySQLSessionInElasticsearch runs a go-sql-driver session through the
// gateway's MySQL listener to MariaDB, with text, multi-statement and
// prepared statements and an error: through the real collector, each
// statement is in Elasticsearch exactly once, in pam.seq order, with its
// response, and `pamtrail sessions list` and `show` show the session with
// its type.
func TestMySQLSessionInElasticsearch(t *testing.T) {
	s := newStack(t, stackOptions{mysql: true})
	s.start()
	table := "e2e_" + randomHex(4)
	c := gomysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = "alice", alicePassword, "tcp", s.mysqlAddr, "demo-mysql"
	c.MultiStatements = true
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		text, tag, sqlstate string
		rows, errno         int64
	}
	wants := []want{
		{text: "CREATE TABLE " + table + " (id INT PRIMARY KEY, v VARCHAR(20))", tag: "CREATE 0"},
		{text: "INSERT INTO " + table + " VALUES (?, ?)", tag: "INSERT 1"},
		{text: "INSERT INTO " + table + " VALUES (?, ?)", tag: "INSERT 1"},
		{text: "UPDATE " + table + " SET v = 'z' WHERE id = 2", tag: "UPDATE 1"},
		{text: "SELECT id, v FROM " + table + " ORDER BY id", tag: "SELECT 2", rows: 2},
		{text: "SELECT * FROM " + table + "_missing", sqlstate: "42S02", errno: 1146},
		{text: "DROP TABLE " + table, tag: "DROP 0"},
	}
	steps := []func() error{
		func() error { _, err := conn.ExecContext(ctx, wants[0].text); return err },
		func() error { _, err := conn.ExecContext(ctx, wants[1].text, 1, "a"); return err },
		func() error { _, err := conn.ExecContext(ctx, wants[2].text, 2, "b"); return err },
		func() error {
			rows, err := conn.QueryContext(ctx, wants[3].text+"; "+wants[4].text)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.NextResultSet() {
				for rows.Next() {
				}
			}
			return rows.Err()
		},
		func() error {
			if _, err := conn.ExecContext(ctx, wants[5].text); err == nil || !strings.Contains(err.Error(), "1146") {
				t.Errorf("missing table: %v, want error 1146", err)
			}
			return nil
		},
		func() error { _, err := conn.ExecContext(ctx, wants[6].text); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	conn.Close()
	db.Close()

	evs := s.waitEvents(90*time.Second, review.Filter{}, func(evs []review.Event) (bool, string) {
		for _, e := range evs {
			if e.EventName == schema.EventSessionEnd {
				return true, ""
			}
		}
		return false, describe(evs)
	})
	checkExactlyOnce(t, evs, true)
	sessions := bySession(evs)
	if len(sessions) != 1 {
		t.Fatalf("%d sessions recorded, want 1: %s", len(sessions), describe(evs))
	}
	var id string
	var queries []review.Event
	for sid, list := range sessions {
		id = sid
		for _, e := range list {
			if e.EventName == schema.EventDBQuery {
				queries = append(queries, e)
			}
		}
	}
	if len(queries) != len(wants) {
		t.Fatalf("%d statements recorded, want %d: %s", len(queries), len(wants), describe(queries))
	}
	for i, w := range wants {
		e := queries[i]
		got := want{text: e.Str(schema.AttrDBQueryText), tag: e.Str(schema.AttrDBCommandTag), sqlstate: e.Str(schema.AttrDBStatusCode),
			rows: max(0, e.Int(schema.AttrDBReturnedRows)), errno: max(0, e.Int(schema.AttrDBErrorNumber))}
		if got != w {
			t.Errorf("statement %d (seq %d): %+v, want %+v", i, e.Int(schema.AttrSeq), got, w)
		}
		if e.Str(schema.AttrResourceType) != schema.ResourceMySQL {
			t.Errorf("statement %d: resource type %q", i, e.Str(schema.AttrResourceType))
		}
	}
	if p := fmt.Sprint(queries[2].Attributes[schema.AttrDBParams]); p != "[2 b]" {
		t.Errorf("second INSERT params %s, want [2 b]", p)
	}

	s.waitSession(id, 60*time.Second, func(d review.Session) bool { return d.Status == schema.StatusEnded })
	var listed struct{ Sessions []review.Session }
	raw := run(t, pamtrailBin, "sessions", "list", "--account", "demo-mysql", "--since", "1h", "--json", "--url", s.esURL)
	if err := json.Unmarshal([]byte(raw), &listed); err != nil {
		t.Fatalf("sessions list --json: %v\n%s", err, raw)
	}
	found := false
	for _, d := range listed.Sessions {
		if d.ID == id {
			found = true
			if d.ResourceType != schema.ResourceMySQL || d.User != "alice" || d.Queries != int64(len(wants)) || d.Errors != 1 {
				t.Errorf("listed session: %+v", d)
			}
		}
	}
	if !found {
		t.Errorf("sessions list does not show %s:\n%s", id, raw)
	}
	show := run(t, pamtrailBin, "sessions", "show", id, "--url", s.esURL)
	for _, text := range []string{"demo-mysql (mysql)", wants[4].text, "ERROR 42S02"} {
		if !strings.Contains(show, text) {
			t.Errorf("sessions show lacks %q:\n%s", text, show)
		}
	}
}
