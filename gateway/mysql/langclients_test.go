package mysql

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

// TestLanguageClients runs PyMySQL and MariaDB Connector/J (server-side
// prepared statements) against MariaDB directly and through the gateway:
// each prints the same, and every statement it sent is recorded once, in
// order, with its response.
func TestLanguageClients(t *testing.T) {
	tests := []struct {
		lang string
		tls  bool // through the gateway over TLS rather than RSA-encrypted caching_sha2
		want []string
		// params are the first INSERT's recorded parameters: PyMySQL
		// interpolates them into the text, Connector/J binds them.
		params string
	}{
		{lang: "python", want: pythonStatements},
		{lang: "python", tls: true, want: pythonStatements},
		{lang: "java", want: javaStatements, params: `café|12.50|2026-12-03 10:00:00.123000|\x000102`},
		{lang: "java", tls: true, want: javaStatements, params: `café|12.50|2026-12-03 10:00:00.123000|\x000102`},
	}
	for _, tt := range tests {
		t.Run(tt.lang+map[bool]string{true: "/tls", false: "/rsa"}[tt.tls], func(t *testing.T) {
			installClient(t, tt.lang)
			tlsFiles := testenv.TLS(t)
			g := startGateway(t, func(c *config.Config) {
				c.MySQL.TLS = &config.ServerTLS{CertFile: tlsFiles.ServerCertFile, KeyFile: tlsFiles.ServerKeyFile}
			})
			direct := runClient(t, tt.lang, g.db.Host, strconv.Itoa(g.db.Port), g.db.DemoUser, g.db.DemoPassword, g.db.TestDB, "")
			host, port := splitHostPort(t, g.addr)
			ca := ""
			if tt.tls {
				ca = tlsFiles.CAFile
			}
			through := runClient(t, tt.lang, host, port, testUser, testPassword, testAccount, ca)
			if direct != through {
				t.Fatalf("output differs\ndirect:\n%s\nthrough the gateway:\n%s", direct, through)
			}
			evs := g.waitEvents("session end", func(evs []recordertest.Event) bool { return hasKind(evs, "end") })
			var got []string
			for _, ev := range evs {
				if ev.Kind != "query" {
					continue
				}
				got = append(got, ev.Query.Text)
				if ev.Query.CommandTag == "" && ev.Query.ErrorNumber == 0 {
					t.Errorf("%q recorded without its response: %+v", ev.Query.Text, ev.Query)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("recorded statements:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			var failed, inserted string
			for _, text := range tt.want {
				if strings.Contains(text, "no_such_table") {
					failed = text
				}
				if inserted == "" && strings.HasPrefix(text, "INSERT") {
					inserted = text
				}
			}
			if q := queryByText(evs, failed); q.ErrorNumber != 1146 || q.ErrorCode != "42S02" {
				t.Errorf("error event: %+v", q)
			}
			if q := queryByText(evs, inserted); q.LastInsertID != 1 || q.RowsAffected != 1 || strings.Join(q.Params, "|") != tt.params {
				t.Errorf("first insert event: %+v (params %q, want %q)", q, q.Params, tt.params)
			}
		})
	}
}

// pythonStatements are what PyMySQL sends for clienttests/python: it
// interpolates parameters itself and rewrites executemany of an INSERT as
// one multi-row INSERT.
var pythonStatements = []string{
	"SET NAMES utf8mb4",
	"SET AUTOCOMMIT = 0",
	"DROP TABLE IF EXISTS py_items",
	"CREATE TABLE py_items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2), seen DATETIME(6), data BLOB)",
	"INSERT INTO py_items (name, price, seen, data) VALUES ('café', 12.50, '2026-12-03 10:00:00.123000', X'000102')",
	"INSERT INTO py_items (name, price) VALUES ('b', 1),('c', 2),('d', NULL)",
	"SELECT id, name, price, seen, data FROM py_items ORDER BY id",
	"UPDATE py_items SET price = price + 1 WHERE price IS NOT NULL",
	"SELECT COUNT(*) AS n FROM py_items",
	"SELECT name FROM py_items WHERE id = 2",
	"SELECT * FROM py_no_such_table",
	"BEGIN",
	"DELETE FROM py_items WHERE name = 'd'",
	"ROLLBACK",
	"SELECT COUNT(*) FROM py_items",
}

// javaStatements are what Connector/J sends for clienttests/java with
// useServerPrepStmts: each execution of a prepared statement is its own
// event.
var javaStatements = []string{
	"set sql_mode=CONCAT(@@sql_mode,',STRICT_TRANS_TABLES'),session_track_system_variables = CONCAT(@@global.session_track_system_variables,',tx_isolation'),NAMES utf8mb4",
	"DROP TABLE IF EXISTS jdbc_items",
	"CREATE TABLE jdbc_items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2), seen DATETIME(6), data BLOB)",
	"INSERT INTO jdbc_items (name, price, seen, data) VALUES (?, ?, ?, ?)",
	"INSERT INTO jdbc_items (name, price, seen, data) VALUES (?, ?, ?, ?)",
	"INSERT INTO jdbc_items (name, price, seen, data) VALUES (?, ?, ?, ?)",
	"INSERT INTO jdbc_items (name, price, seen, data) VALUES (?, ?, ?, ?)",
	"SELECT id, name, price, seen, data FROM jdbc_items WHERE id >= ? ORDER BY id",
	"SELECT id, name, price, seen, data FROM jdbc_items WHERE id >= ? ORDER BY id",
	"set autocommit=0",
	"UPDATE jdbc_items SET price = price + ? WHERE id = ?",
	"ROLLBACK",
	"set autocommit=1",
	"SELECT id, price FROM jdbc_items WHERE id = 2",
	"SELECT * FROM jdbc_no_such_table",
}

// installClient installs a language's MySQL client library with
// clienttests/install.sh (idempotent).
func installClient(t *testing.T, lang string) {
	t.Helper()
	if out, err := exec.Command("bash", filepath.Join("clienttests", "install.sh"), lang).CombinedOutput(); err != nil {
		t.Fatalf("installing the %s client: %v\n%s", lang, err, out)
	}
}

// runClient runs a language's workload and returns its standard output.
func runClient(t *testing.T, lang, host, port, user, password, db, ca string) string {
	t.Helper()
	home := os.Getenv("PAMTRAIL_HOME")
	if home == "" {
		home = filepath.Join(testenv.RepoRoot(t), ".pamtrail")
	}
	libs := filepath.Join(home, "clients", "mysql-"+lang)
	var cmd *exec.Cmd
	switch lang {
	case "python":
		cmd = exec.Command("python3", filepath.Join("clienttests", "python", "workload.py"))
		cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(libs, "lib"))
	case "java":
		jars, _ := filepath.Glob(filepath.Join(libs, "lib", "*.jar"))
		cmd = exec.Command("java", "-cp", strings.Join(append([]string{filepath.Join(libs, "classes")}, jars...), ":"), "Workload")
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "PAMTRAIL_WORKLOAD_HOST="+host, "PAMTRAIL_WORKLOAD_PORT="+port, "PAMTRAIL_WORKLOAD_USER="+user,
		"PAMTRAIL_WORKLOAD_PASSWORD="+password, "PAMTRAIL_WORKLOAD_DBNAME="+db, "PAMTRAIL_WORKLOAD_CA="+ca)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s workload against %s:%s: %v\n%s%s", lang, host, port, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
