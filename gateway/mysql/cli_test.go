package mysql

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

// cliScript exercises what the mariadb command-line client sends: plain
// statements, a stored procedure with two result sets, a statement error
// (with --force the client goes on), warnings and a multi-row result.
const cliScript = `DROP TABLE IF EXISTS cli_t;
CREATE TABLE cli_t (id INT PRIMARY KEY, v VARCHAR(20), note TEXT);
INSERT INTO cli_t VALUES (1, 'a', NULL), (2, 'b', 'tab	and
newline');
SELECT * FROM cli_t ORDER BY id;
DROP PROCEDURE IF EXISTS cli_p;
DELIMITER //
CREATE PROCEDURE cli_p() BEGIN SELECT 1 AS one; SELECT id, v FROM cli_t ORDER BY id; END//
DELIMITER ;
CALL cli_p();
SELECT * FROM cli_nope;
SELECT CAST('x' AS SIGNED) AS w;
SHOW WARNINGS;
SELECT DATABASE(), COUNT(*) FROM cli_t;
`

// TestMariaDBClient runs the script with the mariadb client directly and
// through the gateway (over TLS): the output must be the same, and every
// statement recorded once with its response.
func TestMariaDBClient(t *testing.T) {
	tlsFiles := testenv.TLS(t)
	g := startGateway(t, func(c *config.Config) {
		c.MySQL.TLS = &config.ServerTLS{CertFile: tlsFiles.ServerCertFile, KeyFile: tlsFiles.ServerKeyFile}
	})
	direct := runMariaDB(t, cliScript, "-h", g.db.Host, "-P", strconv.Itoa(g.db.Port), "-u", g.db.DemoUser,
		"-p"+g.db.DemoPassword, g.db.TestDB)
	host, port := splitHostPort(t, g.addr)
	through := runMariaDB(t, cliScript, "-h", host, "-P", port, "-u", testUser, "-p"+testPassword,
		"--ssl", "--ssl-ca="+tlsFiles.CAFile, testAccount)
	if direct != through {
		t.Fatalf("output differs\ndirect:\n%s\nthrough the gateway:\n%s", direct, through)
	}
	evs := g.waitEvents("session end", func(evs []recordertest.Event) bool { return hasKind(evs, "end") })
	count := map[string]int{}
	for _, ev := range evs {
		if ev.Kind == "query" {
			count[ev.Query.Text]++
		}
	}
	for _, want := range []string{"CALL cli_p()", "SELECT * FROM cli_t ORDER BY id", "SELECT * FROM cli_nope", "SHOW WARNINGS"} {
		if count[want] != 1 {
			t.Errorf("%q recorded %d times, want once; recorded: %v", want, count[want], count)
		}
	}
	if q := queryByText(evs, "CALL cli_p()"); q.ErrorCode != "" || q.ReturnedRows != 3 {
		t.Errorf("CALL event: %+v (want 3 rows over its two result sets)", q)
	}
	if q := queryByText(evs, "SELECT * FROM cli_nope"); q.ErrorCode != "42S02" || q.ErrorNumber != 1146 {
		t.Errorf("error event: %+v", q)
	}
	if q := queryByText(evs, "SELECT CAST('x' AS SIGNED) AS w"); q.Warnings != 1 {
		t.Errorf("warning event: %+v", q)
	}
	for _, ev := range evs {
		if ev.Kind == "start" && ev.Info.AuthMethod != "caching_sha2_password+tls" {
			t.Errorf("auth method = %q", ev.Info.AuthMethod)
		}
		// Both directions carried the script's statements and their results.
		if ev.Kind == "end" && (ev.End.BytesIn < 100 || ev.End.BytesOut < 100) {
			t.Errorf("session end counts %d bytes in, %d out; want both counted", ev.End.BytesIn, ev.End.BytesOut)
		}
	}
}

// TestMariaDBClientRefusals checks what the gateway answers itself: LOAD
// DATA LOCAL INFILE (refused unless the account allows it) is an error to
// the client and a recorded event, and the session goes on.
func TestMariaDBClientRefusals(t *testing.T) {
	g := startGateway(t)
	host, port := splitHostPort(t, g.addr)
	script := "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE cli_t;\nSELECT 'still here' AS s;\n"
	out := runMariaDB(t, script, "-h", host, "-P", port, "-u", testUser, "-p"+testPassword,
		"--local-infile=1", testAccount)
	if !strings.Contains(out, "ERROR 1148 (42000)") || !strings.Contains(out, "still here") {
		t.Fatalf("output:\n%s", out)
	}
	evs := g.waitEvents("session end", func(evs []recordertest.Event) bool { return hasKind(evs, "end") })
	q := queryByText(evs, "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE cli_t")
	if q.ErrorNumber != 1148 || !strings.Contains(q.ErrorMessage, "allow_local_infile") {
		t.Fatalf("refused LOAD DATA event: %+v", q)
	}
}

// TestNativePasswordClients logs in with a client that starts with
// mysql_native_password: checked against users[].mysql_native_password
// when the user has one, switched to caching_sha2_password otherwise.
func TestNativePasswordClients(t *testing.T) {
	tests := []struct {
		name   string
		hash   string
		method string
	}{
		{"native hash configured", NativePasswordHash(testPassword), "ok"},
		{"switched to caching_sha2", "", "ok"},
		{"wrong native hash", NativePasswordHash("not-the-password"), "ERROR 1045"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startGateway(t, func(c *config.Config) { c.Users[0].MySQLNativePassword = tt.hash })
			host, port := splitHostPort(t, g.addr)
			out := runMariaDB(t, "SELECT 'ok' AS r;\n", "-h", host, "-P", port, "-u", testUser, "-p"+testPassword,
				"--default-auth=mysql_native_password", testAccount)
			if !strings.Contains(out, tt.method) {
				t.Fatalf("output:\n%s", out)
			}
		})
	}
}

// runMariaDB runs the mariadb client in batch mode with --force and
// returns stdout and stderr together.
func runMariaDB(t *testing.T, script string, args ...string) string {
	t.Helper()
	args = append([]string{"--no-defaults", "--force", "--table"}, args...)
	cmd := exec.Command("mariadb", args...)
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // --force exits 1 after a statement error; the output is what counts
	return out.String()
}

func splitHostPort(t testing.TB, addr string) (string, string) {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}
