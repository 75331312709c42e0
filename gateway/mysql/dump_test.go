package mysql

import (
	"bytes"
	"database/sql"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

const dumpRows = 10000

// TestMysqldump dumps a 10,000-row table with mysqldump directly and
// through the gateway (which it reaches as user#account, since mysqldump
// names no database when it connects): the dumps are the same but for the
// host in the header, reloading the gateway's dump through the gateway
// gives the same table back, and the dump's read and the reload's
// statements are each recorded once with their response.
func TestMysqldump(t *testing.T) {
	g := startGateway(t)
	direct := g.directDB(t)
	for _, q := range []string{
		"DROP TABLE IF EXISTS dump_rows",
		"CREATE TABLE dump_rows (id INT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(10,2), created DATETIME(3), note TEXT, data VARBINARY(16))",
		"INSERT INTO dump_rows SELECT seq, CONCAT('name ', seq), seq / 7, '2026-12-03 10:00:00' + INTERVAL seq SECOND, " +
			"IF(seq % 3 = 0, NULL, CONCAT('it''s \"quoted\"\\ttab\\n', REPEAT('x', seq % 50))), LEFT(UNHEX(SHA2(seq, 256)), 16) FROM seq_1_to_" + strconv.Itoa(dumpRows),
	} {
		if _, err := direct.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	checksum := func() string {
		var table, sum string
		if err := direct.QueryRow("CHECKSUM TABLE dump_rows").Scan(&table, &sum); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	before := checksum()

	args := []string{"--no-defaults", "--skip-dump-date", "--no-tablespaces"}
	directDump := runDump(t, append(args, "-h", g.db.Host, "-P", strconv.Itoa(g.db.Port), "-u", g.db.DemoUser,
		"-p"+g.db.DemoPassword, g.db.TestDB, "dump_rows")...)
	host, port := splitHostPort(t, g.addr)
	gatewayDump := runDump(t, append(args, "-h", host, "-P", port, "-u", testUser+"#"+testAccount,
		"-p"+testPassword, g.db.TestDB, "dump_rows")...)
	hostLine := regexp.MustCompile(`(?m)^-- Host: \S+ `)
	if a, b := hostLine.ReplaceAllString(directDump, "-- Host: HOST "), hostLine.ReplaceAllString(gatewayDump, "-- Host: HOST "); a != b {
		t.Fatalf("dumps differ (%d and %d bytes)", len(a), len(b))
	}
	if n := strings.Count(gatewayDump, "\n("); n != dumpRows {
		t.Fatalf("the dump holds %d rows, want %d", n, dumpRows)
	}

	out := runMariaDB(t, gatewayDump, "-h", host, "-P", port, "-u", testUser, "-p"+testPassword, testAccount)
	if strings.Contains(out, "ERROR") {
		t.Fatalf("reload: %s", out)
	}
	if after := checksum(); after != before {
		t.Fatalf("checksum after the reload %s, before %s", after, before)
	}

	evs := g.waitEvents("both sessions ended", func(evs []recordertest.Event) bool { return countKind(evs, "end") == 2 })
	seen := map[string]int{}
	var inserts, inserted int64
	for _, ev := range evs {
		if ev.Kind != "query" {
			continue
		}
		seen[ev.Query.Text]++
		if ev.Query.ErrorNumber != 0 {
			t.Errorf("%q failed: %+v", ev.Query.Text, ev.Query)
		}
		if strings.HasPrefix(ev.Query.Text, "INSERT INTO `dump_rows`") {
			inserts++
			inserted += ev.Query.RowsAffected
		}
	}
	read := "SELECT /*!40001 SQL_NO_CACHE */ `id`, `name`, `amount`, `created`, `note`, `data` FROM `dump_rows`"
	if seen[read] != 1 {
		t.Errorf("the dump's read recorded %d times, want once; recorded %d statements", seen[read], len(seen))
	} else if q := queryByText(evs, read); q.ReturnedRows != dumpRows {
		t.Errorf("the dump's read returned %d rows, want %d", q.ReturnedRows, dumpRows)
	}
	if want := int64(strings.Count(gatewayDump, "INSERT INTO `dump_rows`")); inserts != want || inserted != dumpRows {
		t.Errorf("reload recorded %d INSERTs of %d rows, want %d of %d", inserts, inserted, want, dumpRows)
	}
}

// directDB is a go-sql-driver connection to MariaDB as the account's user.
func (g *gateway) directDB(t *testing.T) *sql.DB {
	c := gomysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = g.db.DemoUser, g.db.DemoPassword, "tcp", g.db.Host+":"+strconv.Itoa(g.db.Port), g.db.TestDB
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func runDump(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("mysqldump", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mysqldump: %v\n%s", err, stderr.String())
	}
	return stdout.String()
}

func countKind(evs []recordertest.Event, kind string) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// TestAccountInLogin names the account in the login (user#account), as
// tools that connect without a database must.
func TestAccountInLogin(t *testing.T) {
	g := startGateway(t)
	host, port := splitHostPort(t, g.addr)
	tests := []struct {
		name, login string
		db          []string
		want        string
	}{
		{"no database", testUser + "#" + testAccount, nil, "| ok |"},
		{"the same account as database", testUser + "#" + testAccount, []string{testAccount}, "| ok |"},
		{"another database", testUser + "#" + testAccount, []string{"other"}, "name the account once"},
		{"unknown account", testUser + "#nope", nil, "Access denied for user 'alice' to account 'nope'"},
		{"neither", testUser, nil, "name the pamtrail account as the database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-h", host, "-P", port, "-u", tt.login, "-p" + testPassword}, tt.db...)
			if out := runMariaDB(t, "SELECT 'ok' AS r;\n", args...); !strings.Contains(out, tt.want) {
				t.Fatalf("output:\n%s\nwant %q", out, tt.want)
			}
		})
	}
}
