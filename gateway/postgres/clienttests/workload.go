// Package clienttests runs one scripted workload in Python (psycopg 3), Java
// (the PostgreSQL JDBC driver) and JavaScript (node-postgres) and states
// which statements each language puts on the wire, with the response each
// must be recorded with. The engine's tests check the in-memory recorder;
// gateway/e2e checks the same statements in Elasticsearch. install.sh
// brings the libraries from PyPI, Maven Central and npm into
// .pamtrail/clients.
package clienttests

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
)

// Languages with a workload.
var Languages = []string{"python", "java", "node"}

// Statement is one statement the workload runs, as it reaches the wire,
// with the response the record must show.
type Statement struct {
	Text string
	Tag  string // or
	Code string // the SQLSTATE of the expected error
	Rows int64
}

// Statement texts shared by the assertions.
const (
	Create   = "create temp table w(id int primary key, name text, amount numeric, at timestamptz, ok bool, data bytea)"
	Insert   = "insert into w values ($1, $2, $3, $4, $5, $6)"
	ByID     = "select id, name, amount, at, ok, data from w where id = $1"
	CopyIn   = "copy w (id, name) from stdin"
	CopyOut  = "copy (select id, name from w order by id) to stdout"
	Large    = "select g, md5(g::text) from generate_series(1, 100000) g"
	Count    = "select count(*) from w"
	BatchTab = "create temp table wb(id int primary key, name text, amount numeric, at timestamptz, ok bool, data bytea)"
	BatchIns = "insert into wb values ($1, $2, $3, $4, $5, $6)"
)

// Sessions is how many connections a language's workload opens.
func Sessions(lang string) int {
	if lang == "node" {
		return 2 // its pipelining client
	}
	return 1
}

// Expectations lists, in order, the statements lang's workload executes.
// Drivers' own statements (SET …) may come in between.
func Expectations(lang string) []Statement {
	simple := Statement{Text: "select 1 as one, 'two' as two", Tag: "SELECT 1", Rows: 1}
	create := Statement{Text: Create, Tag: "CREATE TABLE"}
	insert := Statement{Text: Insert, Tag: "INSERT 0 1"}
	byID := Statement{Text: ByID, Tag: "SELECT 1", Rows: 1}
	count := Statement{Text: Count, Tag: "SELECT 1", Rows: 1}
	var out []Statement
	switch lang {
	case "python":
		out = []Statement{simple, create, insert, insert, insert, byID, insert, insert, insert, count}
	case "java":
		out = []Statement{simple, create, insert, insert, insert, insert, insert, insert, byID, count}
	case "node":
		out = []Statement{simple, create, insert, insert, insert, byID,
			{Text: BatchTab, Tag: "CREATE TABLE"},
			{Text: BatchIns, Tag: "INSERT 0 1"}, {Text: BatchIns, Tag: "INSERT 0 1"}, {Text: BatchIns, Tag: "INSERT 0 1"},
			{Text: "select count(*) from wb", Tag: "SELECT 1", Rows: 1}}
	}
	total := map[string]string{"python": "1006", "java": "1006", "node": "1003"}[lang]
	n, _ := strconv.ParseInt(total, 10, 64)
	return append(out,
		Statement{Text: CopyIn, Tag: "COPY 1000"},
		Statement{Text: CopyOut, Tag: "COPY " + total, Rows: n},
		Statement{Text: "begin", Tag: "BEGIN"},
		Statement{Text: "insert into w (id, name) values (20, 'tx')", Tag: "INSERT 0 1"},
		Statement{Text: "insert into w (id, name) values (20, 'dup')", Code: "23505"},
		Statement{Text: "rollback", Tag: "ROLLBACK"},
		Statement{Text: "select count(*) from w where id = 20", Tag: "SELECT 1", Rows: 1},
		Statement{Text: Large, Tag: "SELECT 100000", Rows: 100000},
		Statement{Text: "select pg_sleep(30)", Code: "57014"},
		count,
	)
}

// Recorded is what a record says of one statement, whichever way it was
// read back (in-memory recorder or Elasticsearch).
type Recorded struct {
	Text, Tag, Code string
	Rows            int64
	NotExecuted     bool
	Params          []string
}

// Check verifies every expected statement was recorded exactly once, in
// order, with its response.
func Check(t testing.TB, want []Statement, got []Recorded) {
	t.Helper()
	wantCount, gotCount := map[string]int{}, map[string]int{}
	for _, w := range want {
		wantCount[w.Text]++
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
		for i < len(got) && got[i].Text != w.Text {
			i++
		}
		if i == len(got) {
			t.Fatalf("no event for %q in order; recorded:\n%s", w.Text, brief(got))
		}
		q := got[i]
		if q.Tag != w.Tag || q.Code != w.Code || (w.Rows > 0 && q.Rows != w.Rows) || q.NotExecuted {
			t.Errorf("%q: recorded tag %q error %q rows %d not-executed %v; want tag %q error %q rows %d",
				w.Text, q.Tag, q.Code, q.Rows, q.NotExecuted, w.Tag, w.Code, w.Rows)
		}
		if w.Text == Insert && len(q.Params) != 6 {
			t.Errorf("insert recorded with params %q, want 6", q.Params)
		}
		i++
	}
	// The first insert's parameters, whatever types the driver declared.
	for _, q := range got {
		if q.Text == Insert {
			if id, name := strings.Trim(q.Params[0], "'"), q.Params[1]; id != "1" || name != "'one'" {
				t.Errorf("first insert params %q, want id 1 and 'one'", q.Params)
			}
			break
		}
	}
}

func brief(qs []Recorded) string {
	var b strings.Builder
	for _, q := range qs {
		b.WriteString("  " + q.Text + " -> " + q.Tag + q.Code + "\n")
	}
	return b.String()
}

func dir(t testing.TB) string {
	return filepath.Join(testenv.RepoRoot(t), "gateway", "postgres", "clienttests")
}

// Install runs install.sh once per language per machine.
func Install(t testing.TB, lang string) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(dir(t), "install.sh"), lang)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing the %s client libraries: %v\n%s", lang, err, out)
	}
	t.Logf("%s client libraries ready in %s", lang, time.Since(start).Round(time.Millisecond))
}

// Run runs one language's workload against host:port and returns its
// output, which must be identical direct and through the gateway.
func Run(t testing.TB, lang, host string, port int, user, password, db string) string {
	t.Helper()
	libs := clientsDir(t, lang)
	src := dir(t)
	var cmd *exec.Cmd
	env := []string{
		"PAMTRAIL_WORKLOAD_HOST=" + host, "PAMTRAIL_WORKLOAD_PORT=" + strconv.Itoa(port),
		"PAMTRAIL_WORKLOAD_USER=" + user, "PAMTRAIL_WORKLOAD_PASSWORD=" + password, "PAMTRAIL_WORKLOAD_DBNAME=" + db,
		"PAMTRAIL_WORKLOAD_DSN=host=" + host + " port=" + strconv.Itoa(port) + " user=" + user + " password=" + password +
			" dbname=" + db + " sslmode=disable",
	}
	switch lang {
	case "python":
		cmd = exec.Command("python3", filepath.Join(src, "python", "workload.py"))
		env = append(env, "PYTHONPATH="+filepath.Join(libs, "lib"))
	case "java":
		jars, _ := filepath.Glob(filepath.Join(libs, "lib", "*.jar"))
		cmd = exec.Command("java", "-cp", strings.Join(append([]string{filepath.Join(libs, "classes")}, jars...), ":"), "Workload")
	case "node":
		cmd = exec.Command("node", "--no-deprecation", filepath.Join(src, "node", "workload.js"))
		env = append(env, "NODE_PATH="+filepath.Join(libs, "node_modules"))
	default:
		t.Fatalf("no workload for %q", lang)
	}
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s workload against %s:%d: %v\n%s%s", lang, host, port, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
