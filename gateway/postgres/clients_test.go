package postgres

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// The same scripted workload runs in Python (psycopg 3), Java (the
// PostgreSQL JDBC driver) and JavaScript (node-postgres), direct and
// through the gateway: each client must see exactly what it sees direct,
// and the gateway must record exactly one event per executed statement,
// in order. clienttests/install.sh brings the libraries from PyPI, Maven
// Central and npm into .pamtrail/clients.

// workloadStatement is one statement the workload runs, as it reaches the
// wire, with the response the record must show.
type workloadStatement struct {
	text string
	tag  string // or
	code string // the SQLSTATE of the expected error
	rows int64
}

const (
	wlCreate   = "create temp table w(id int primary key, name text, amount numeric, at timestamptz, ok bool, data bytea)"
	wlInsert   = "insert into w values ($1, $2, $3, $4, $5, $6)"
	wlByID     = "select id, name, amount, at, ok, data from w where id = $1"
	wlCopyIn   = "copy w (id, name) from stdin"
	wlCopyOut  = "copy (select id, name from w order by id) to stdout"
	wlLarge    = "select g, md5(g::text) from generate_series(1, 100000) g"
	wlCount    = "select count(*) from w"
	wlBatchTab = "create temp table wb(id int primary key, name text, amount numeric, at timestamptz, ok bool, data bytea)"
	wlBatchIns = "insert into wb values ($1, $2, $3, $4, $5, $6)"
)

func workloadExpectations(lang string) []workloadStatement {
	simple := workloadStatement{text: "select 1 as one, 'two' as two", tag: "SELECT 1", rows: 1}
	create := workloadStatement{text: wlCreate, tag: "CREATE TABLE"}
	insert := workloadStatement{text: wlInsert, tag: "INSERT 0 1"}
	byID := workloadStatement{text: wlByID, tag: "SELECT 1", rows: 1}
	count := workloadStatement{text: wlCount, tag: "SELECT 1", rows: 1}
	var out []workloadStatement
	switch lang {
	case "python":
		out = []workloadStatement{simple, create, insert, insert, insert, byID, insert, insert, insert, count}
	case "java":
		out = []workloadStatement{simple, create, insert, insert, insert, insert, insert, insert, byID, count}
	case "node":
		out = []workloadStatement{simple, create, insert, insert, insert, byID,
			{text: wlBatchTab, tag: "CREATE TABLE"},
			{text: wlBatchIns, tag: "INSERT 0 1"}, {text: wlBatchIns, tag: "INSERT 0 1"}, {text: wlBatchIns, tag: "INSERT 0 1"},
			{text: "select count(*) from wb", tag: "SELECT 1", rows: 1}}
	}
	total := map[string]string{"python": "1006", "java": "1006", "node": "1003"}[lang]
	return append(out,
		workloadStatement{text: wlCopyIn, tag: "COPY 1000"},
		workloadStatement{text: wlCopyOut, tag: "COPY " + total, rows: mustAtoi(total)},
		workloadStatement{text: "begin", tag: "BEGIN"},
		workloadStatement{text: "insert into w (id, name) values (20, 'tx')", tag: "INSERT 0 1"},
		workloadStatement{text: "insert into w (id, name) values (20, 'dup')", code: "23505"},
		workloadStatement{text: "rollback", tag: "ROLLBACK"},
		workloadStatement{text: "select count(*) from w where id = 20", tag: "SELECT 1", rows: 1},
		workloadStatement{text: wlLarge, tag: "SELECT 100000", rows: 100000},
		workloadStatement{text: "select pg_sleep(30)", code: "57014"},
		count,
	)
}

func mustAtoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func TestOtherLanguageClients(t *testing.T) {
	pg := postgresServer(t)
	for _, lang := range []string{"python", "java", "node"} {
		t.Run(lang, func(t *testing.T) {
			installClient(t, lang)
			g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
			direct := runWorkload(t, lang, pg.Host, pg.Port, pg.DemoUser, pg.DemoPassword, pg.DemoDB)
			via := runWorkload(t, lang, g.host, g.port, testUser, testPassword, "demo")
			if via != direct {
				t.Fatalf("%s saw different results through the gateway:\n%s\ndirect:\n%s", lang, via, direct)
			}
			sessions := 1
			if lang == "node" {
				sessions = 2 // its pipelining client
			}
			checkWorkloadEvents(t, workloadExpectations(lang), queries(g.waitEnds(sessions)))
		})
	}
}

// checkWorkloadEvents checks every expected statement was recorded once,
// in order, with its response. Other statements (drivers' own SET commands)
// may come in between.
func checkWorkloadEvents(t *testing.T, want []workloadStatement, got []recorder.Query) {
	t.Helper()
	wantCount, gotCount := map[string]int{}, map[string]int{}
	for _, w := range want {
		wantCount[w.text]++
	}
	for _, q := range got {
		if _, tracked := wantCount[q.Text]; tracked {
			gotCount[q.Text]++
		}
	}
	for text, n := range wantCount {
		if gotCount[text] != n {
			t.Errorf("%d events for %q, want exactly %d", gotCount[text], text, n)
		}
	}
	i := 0
	for _, w := range want {
		for i < len(got) && got[i].Text != w.text {
			i++
		}
		if i == len(got) {
			t.Fatalf("no event for %q in order; recorded:\n%s", w.text, briefList(got))
		}
		q := got[i]
		if q.CommandTag != w.tag || q.ErrorCode != w.code || (w.rows > 0 && q.ReturnedRows != w.rows) || q.NotExecuted {
			t.Errorf("%q: recorded tag %q error %q rows %d not-executed %v; want tag %q error %q rows %d",
				w.text, q.CommandTag, q.ErrorCode, q.ReturnedRows, q.NotExecuted, w.tag, w.code, w.rows)
		}
		if w.text == wlInsert && len(q.Params) != 6 {
			t.Errorf("insert recorded with params %q, want 6", q.Params)
		}
		i++
	}
	// The first insert's parameters, whatever types the driver declared.
	for _, q := range got {
		if q.Text == wlInsert {
			if id, name := strings.Trim(q.Params[0], "'"), q.Params[1]; id != "1" || name != "'one'" {
				t.Errorf("first insert params %q, want id 1 and 'one'", q.Params)
			}
			break
		}
	}
}

func briefList(qs []recorder.Query) string {
	var b strings.Builder
	for _, q := range qs {
		b.WriteString("  " + q.Text + " -> " + q.CommandTag + q.ErrorCode + "\n")
	}
	return b.String()
}

// installClient runs clienttests/install.sh once per language per machine.
func installClient(t *testing.T, lang string) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join("clienttests", "install.sh"), lang)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing the %s client libraries: %v\n%s", lang, err, out)
	}
	t.Logf("%s client libraries ready in %s", lang, time.Since(start).Round(time.Millisecond))
}

// runWorkload runs one language's workload against host:port and returns
// its JSON output.
func runWorkload(t *testing.T, lang, host string, port int, user, password, db string) string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), ".pamtrail", "clients", lang)
	var cmd *exec.Cmd
	env := []string{
		"PAMTRAIL_WORKLOAD_HOST=" + host, "PAMTRAIL_WORKLOAD_PORT=" + strconv.Itoa(port),
		"PAMTRAIL_WORKLOAD_USER=" + user, "PAMTRAIL_WORKLOAD_PASSWORD=" + password, "PAMTRAIL_WORKLOAD_DBNAME=" + db,
		"PAMTRAIL_WORKLOAD_DSN=host=" + host + " port=" + strconv.Itoa(port) + " user=" + user + " password=" + password +
			" dbname=" + db + " sslmode=disable",
	}
	switch lang {
	case "python":
		cmd = exec.Command("python3", filepath.Join("clienttests", "python", "workload.py"))
		env = append(env, "PYTHONPATH="+filepath.Join(dir, "lib"))
	case "java":
		jars, _ := filepath.Glob(filepath.Join(dir, "lib", "*.jar"))
		cmd = exec.Command("java", "-cp", strings.Join(append([]string{filepath.Join(dir, "classes")}, jars...), ":"), "Workload")
	case "node":
		cmd = exec.Command("node", "--no-deprecation", filepath.Join("clienttests", "node", "workload.js"))
		env = append(env, "NODE_PATH="+filepath.Join(dir, "node_modules"))
	}
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s workload against %s:%d: %v\n%s%s", lang, host, port, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
