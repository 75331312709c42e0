package postgres

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runPsql runs psql with a script on stdin and returns its combined output.
func runPsql(t *testing.T, dsn, password, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command("psql", append([]string{dsn, "-X", "-A", "-v", "VERBOSITY=default"}, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10")
	cmd.Stdin = strings.NewReader(script)
	cmd.Dir = t.TempDir()
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// psql gets the same output through the gateway as direct, for a script
// covering simple queries, several statements in one Query, errors,
// transactions, savepoints, notices, \copy both ways and prepared
// statements.
func TestPsqlMatchesDirect(t *testing.T) {
	pg := postgresServer(t)
	g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
	dataFile := filepath.Join(t.TempDir(), "rows.tsv")
	if err := os.WriteFile(dataFile, []byte("1\tone\n2\ttwo\n3\tthree\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `
select 1 as one, 'two' as two;
select 1 \; select 2 \; select 3;
select 1/0;
begin;
create temp table p(a int, b text);
insert into p values (1, 'x'), (2, 'y');
savepoint s1;
insert into p values ('bad', 'z');
rollback to savepoint s1;
update p set b = b || '!' where a = 2;
select * from p order by a;
commit;
do $$ begin raise notice 'notice from %', 'plpgsql'; end $$;
create temp table q(a int, b text);
\copy q from '` + dataFile + `'
\copy (select * from q order by a) to stdout
select count(*) from q;
prepare ps(int) as select $1 * 2;
execute ps(21);
select $$a;b$$ as dollar, E'x\'y' as escaped;
`
	direct := runPsql(t, pg.directDSN(pg.DemoUser, pg.DemoPassword, pg.DemoDB), pg.DemoPassword, script)
	via := runPsql(t, g.connString(testUser, testPassword, "demo"), testPassword, script)
	if via != direct {
		t.Fatalf("psql output differs.\nthrough the gateway:\n%s\ndirect:\n%s", via, direct)
	}
	for _, want := range []string{"division by zero", "NOTICE:  notice from plpgsql", "2\ttwo", "42", "a;b|x'y"} {
		if !strings.Contains(via, want) {
			t.Errorf("output lacks %q:\n%s", want, via)
		}
	}

	evs := g.waitEnds(1)
	texts := map[string]bool{}
	for _, q := range queries(evs) {
		texts[q.Text] = true
	}
	for _, want := range []string{"select 1", "select 2", "select 3", "select 1/0", "rollback to savepoint s1", "execute ps(21)",
		"COPY  q FROM STDIN", "select $$a;b$$ as dollar, E'x\\'y' as escaped"} {
		if !texts[want] {
			t.Errorf("no event for %q; recorded %q", want, summarize(evs))
		}
	}
	// The session's byte counts cover at least the script sent and the
	// output psql printed.
	if end := g.endOf(t, 0).End; end.BytesIn < int64(len(script)) || end.BytesOut < int64(len(via)) {
		t.Errorf("session end counts %d bytes in, %d out; want at least the script's %d and the output's %d",
			end.BytesIn, end.BytesOut, len(script), len(via))
	}
}
