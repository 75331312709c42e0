package testenv

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fatalCatcher is a testing.TB whose Fatal ends the goroutine, as the real
// one does, but records the message so failure paths can be asserted. Any
// other method panics through the nil embedded TB, exposing unexpected calls.
type fatalCatcher struct {
	testing.TB
	msg string
}

func (f *fatalCatcher) Helper() {}

func (f *fatalCatcher) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runCatching runs fn on its own goroutine, as the testing package runs a
// test, and returns the fatal message, or "" when fn finished normally.
func runCatching(fn func(tb testing.TB)) (msg string, fatal bool) {
	f := &fatalCatcher{}
	done := make(chan bool)
	go func() {
		finished := false
		defer func() { done <- finished }()
		fn(f)
		finished = true
	}()
	return f.msg, !<-done
}

// listener is a real TCP endpoint standing in for "something is listening";
// these unit tests check configuration handling, not the services.
func listener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// closedPort is a port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// fileSource writes a services.env into a temp PAMTRAIL_HOME and loads it,
// blanking the same variables in the environment so that a developer's
// sourced services.env cannot mask the file under test.
func fileSource(t *testing.T, lines ...string) source {
	t.Helper()
	dir := t.TempDir()
	content := strings.Join(lines, "\n") + "\n"
	isolateFromEnvironment(t)
	path := filepath.Join(dir, "services.env")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return loadSource(path)
}

// isolateFromEnvironment blanks every PAMTRAIL_* variable for the test (an
// empty value counts as unset), so a developer's sourced services.env cannot
// leak into tests of the file path.
func isolateFromEnvironment(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "PAMTRAIL_") {
			t.Setenv(name, "")
		}
	}
}

func writeSecret(t *testing.T, value string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pgLines(port int, extra ...string) []string {
	return append([]string{
		"export PAMTRAIL_PG_HOST=127.0.0.1",
		"export PAMTRAIL_PG_PORT=" + strconv.Itoa(port),
		"export PAMTRAIL_PG_ADMIN_USER=pamtrail_admin",
		"export PAMTRAIL_PG_ADMIN_PASSWORD='p@ss w/rd'",
	}, extra...)
}

func TestPostgresFromServicesEnv(t *testing.T) {
	port := listener(t)
	src := fileSource(t, pgLines(port,
		"export PAMTRAIL_PG_DEMO_PASSWORD_FILE="+writeSecret(t, "demo-secret\n"),
		"export PAMTRAIL_PG_MD5_USER=pamtrail_md5",
		"export PAMTRAIL_PG_MD5_PASSWORD_FILE="+writeSecret(t, "md5-secret"),
		"export PAMTRAIL_PG_TRUST_USER=pamtrail_trust",
		"export PAMTRAIL_PGBOUNCER_PORT=6433",
	)...)
	var pg PG
	if msg, fatal := runCatching(func(tb testing.TB) { pg = postgresFrom(tb, src) }); fatal {
		t.Fatalf("unexpected failure: %s", msg)
	}
	want := PG{
		Host: "127.0.0.1", Port: port, AdminUser: "pamtrail_admin", AdminPassword: "p@ss w/rd",
		TestDB: "pamtrail_test", DemoDB: "demo", DemoUser: "pamtrail_demo", DemoPassword: "demo-secret",
		MD5User: "pamtrail_md5", MD5Password: "md5-secret", TrustUser: "pamtrail_trust", PgBouncerPort: 6433,
	}
	if pg != want {
		t.Fatalf("got %v\nwant %v\npasswords differing: %v", pg, want, differingPasswords(pg, want))
	}
	wantDSN := "postgres://pamtrail_admin:p%40ss%20w%2Frd@127.0.0.1:" + strconv.Itoa(port) + "/pamtrail_test?sslmode=disable"
	if got := pg.AdminDSN("pamtrail_test"); got != wantDSN {
		t.Errorf("AdminDSN = %q, want %q", got, wantDSN)
	}
}

// differingPasswords names the password fields that differ, without values.
func differingPasswords(got, want PG) []string {
	var names []string
	for name, pair := range map[string][2]string{
		"AdminPassword": {got.AdminPassword, want.AdminPassword},
		"DemoPassword":  {got.DemoPassword, want.DemoPassword},
		"MD5Password":   {got.MD5Password, want.MD5Password},
		"PlainPassword": {got.PlainPassword, want.PlainPassword},
	} {
		if pair[0] != pair[1] {
			names = append(names, name)
		}
	}
	return names
}

func TestFormattingMasksPasswords(t *testing.T) {
	const secret = "s3cr3t-value"
	pg := PG{Host: "127.0.0.1", AdminUser: "admin", AdminPassword: secret, DemoPassword: secret, MD5Password: secret, PlainPassword: secret}
	target := SSHTarget{Host: "127.0.0.1", User: "pamtrail-demo", Password: secret}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{pg, &pg, target, &target} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, secret) {
				t.Errorf("%s of %T prints the password: %s", verb, v, out)
			}
			if !strings.Contains(out, "<set>") || !strings.Contains(out, "127.0.0.1") {
				t.Errorf("%s of %T hides too much: %s", verb, v, out)
			}
		}
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	port := listener(t)
	src := fileSource(t, pgLines(closedPort(t))...)
	t.Setenv("PAMTRAIL_PG_PORT", strconv.Itoa(port))
	var pg PG
	if msg, fatal := runCatching(func(tb testing.TB) { pg = postgresFrom(tb, src) }); fatal {
		t.Fatalf("unexpected failure: %s", msg)
	}
	if pg.Port != port {
		t.Fatalf("port = %d, want the environment's %d", pg.Port, port)
	}
}

func TestServiceFailuresNameTheFix(t *testing.T) {
	missingFile := source{filePath: "/nonexistent/services.env", fileErr: os.ErrNotExist}
	tests := []struct {
		name string
		run  func(t *testing.T) func(testing.TB)
		want []string
	}{
		{
			name: "postgres not configured",
			run: func(t *testing.T) func(testing.TB) {
				isolateFromEnvironment(t)
				return func(tb testing.TB) { postgresFrom(tb, missingFile) }
			},
			want: []string{"postgres: not configured", "PAMTRAIL_PG_HOST", "services.env unusable", "deploy/local/services.sh up postgres"},
		},
		{
			name: "postgres unreachable",
			run: func(t *testing.T) func(testing.TB) {
				src := fileSource(t, pgLines(closedPort(t))...)
				return func(tb testing.TB) { postgresFrom(tb, src) }
			},
			want: []string{"postgres: unreachable at 127.0.0.1:", "deploy/local/services.sh up postgres"},
		},
		{
			name: "postgres port not a number",
			run: func(t *testing.T) func(testing.TB) {
				src := fileSource(t, pgLines(0)...)
				return func(tb testing.TB) { postgresFrom(tb, src) }
			},
			want: []string{`PAMTRAIL_PG_PORT="0" is not a TCP port`},
		},
		{
			name: "password file missing",
			run: func(t *testing.T) func(testing.TB) {
				src := fileSource(t, pgLines(listener(t), "export PAMTRAIL_PG_DEMO_PASSWORD_FILE=/nonexistent/demo.password")...)
				return func(tb testing.TB) { postgresFrom(tb, src) }
			},
			want: []string{"PAMTRAIL_PG_DEMO_PASSWORD_FILE", "/nonexistent/demo.password"},
		},
		{
			name: "sshd unreachable",
			run: func(t *testing.T) func(testing.TB) {
				src := fileSource(t,
					"export PAMTRAIL_SSHD_HOST=127.0.0.1",
					"export PAMTRAIL_SSHD_PORT="+strconv.Itoa(closedPort(t)),
					"export PAMTRAIL_SSHD_USER=pamtrail-demo",
					"export PAMTRAIL_SSHD_KEY="+writeSecret(t, "key"),
					"export PAMTRAIL_SSHD_PASSWORD_FILE="+writeSecret(t, "pw"),
					"export PAMTRAIL_SSHD_KNOWN_HOSTS='[127.0.0.1]:2022 ssh-ed25519 AAAA'",
				)
				return func(tb testing.TB) { sshdFrom(tb, src) }
			},
			want: []string{"sshd: unreachable", "deploy/local/services.sh up sshd"},
		},
		{
			name: "pgbouncer not configured",
			run: func(t *testing.T) func(testing.TB) {
				src := fileSource(t, "export PAMTRAIL_PGBOUNCER_HOST=127.0.0.1", "export PAMTRAIL_PGBOUNCER_PORT=")
				return func(tb testing.TB) { pgBouncerFrom(tb, src) }
			},
			want: []string{"PAMTRAIL_PGBOUNCER_PORT", "services.sh up pgbouncer"},
		},
		{
			name: "elasticsearch url invalid",
			run: func(t *testing.T) func(testing.TB) {
				src := fileSource(t, "export PAMTRAIL_ES_URL=localhost:9200")
				return func(tb testing.TB) { elasticsearchFrom(tb, src) }
			},
			want: []string{`PAMTRAIL_ES_URL="localhost:9200"`},
		},
		{
			name: "elasticsearch unhealthy",
			run: func(t *testing.T) func(testing.TB) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, `{"error":"cluster_block_exception"}`, http.StatusServiceUnavailable)
				}))
				t.Cleanup(srv.Close)
				src := fileSource(t, "export PAMTRAIL_ES_URL="+srv.URL)
				return func(tb testing.TB) { elasticsearchFrom(tb, src) }
			},
			want: []string{"/_cluster/health answered 503", "cluster_block_exception", "services.sh up elasticsearch"},
		},
		{
			name: "tls files missing",
			run: func(t *testing.T) func(testing.TB) {
				src := fileSource(t,
					"export PAMTRAIL_TLS_CA=/nonexistent/ca.crt", "export PAMTRAIL_TLS_CA_KEY=/nonexistent/ca.key",
					"export PAMTRAIL_TLS_SERVER_CERT=/nonexistent/s.crt", "export PAMTRAIL_TLS_SERVER_KEY=/nonexistent/s.key")
				return func(tb testing.TB) { tlsFrom(tb, src) }
			},
			want: []string{"PAMTRAIL_TLS_CA: ", "no such file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := tt.run(t)
			msg, fatal := runCatching(fn)
			if !fatal {
				t.Fatal("expected the test to be failed")
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestElasticsearchHealthy(t *testing.T) {
	paths := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths <- r.URL.Path
		fmt.Fprint(w, `{"status":"yellow"}`)
	}))
	t.Cleanup(srv.Close)
	src := fileSource(t, "export PAMTRAIL_ES_URL="+srv.URL+"/")
	var got string
	if msg, fatal := runCatching(func(tb testing.TB) { got = elasticsearchFrom(tb, src) }); fatal {
		t.Fatalf("unexpected failure: %s", msg)
	}
	if got != srv.URL {
		t.Errorf("url = %q, want %q without the trailing slash", got, srv.URL)
	}
	close(paths)
	var probed []string
	for p := range paths {
		probed = append(probed, p)
	}
	if len(probed) != 1 || probed[0] != "/_cluster/health" {
		t.Errorf("probed %v, want [/_cluster/health]", probed)
	}
}

func TestSSHDFromServicesEnv(t *testing.T) {
	port := listener(t)
	key := writeSecret(t, "-----BEGIN OPENSSH PRIVATE KEY-----\n")
	src := fileSource(t,
		"export PAMTRAIL_SSHD_HOST=127.0.0.1",
		"export PAMTRAIL_SSHD_PORT="+strconv.Itoa(port),
		"export PAMTRAIL_SSHD_USER=pamtrail-demo",
		"export PAMTRAIL_SSHD_KEY="+key,
		"export PAMTRAIL_SSHD_PASSWORD_FILE="+writeSecret(t, "pw\n"),
		"export PAMTRAIL_SSHD_KNOWN_HOSTS='[127.0.0.1]:2022 ssh-ed25519 AAAA'",
		"export PAMTRAIL_SSHD_KNOWN_HOSTS_FILE=/x/known_hosts",
	)
	var got SSHTarget
	if msg, fatal := runCatching(func(tb testing.TB) { got = sshdFrom(tb, src) }); fatal {
		t.Fatalf("unexpected failure: %s", msg)
	}
	want := SSHTarget{Host: "127.0.0.1", Port: port, User: "pamtrail-demo", KeyFile: key, Password: "pw",
		KnownHosts: "[127.0.0.1]:2022 ssh-ed25519 AAAA", KnownHostsFile: "/x/known_hosts"}
	if got != want {
		t.Fatalf("got %v\nwant %v\npassword differs: %v", got, want, got.Password != want.Password)
	}
}

func TestEventually(t *testing.T) {
	tests := []struct {
		name       string
		succeedAt  int // attempt that reports true; 0 = never
		wantFatal  bool
		wantCalls  int
		wantSubstr string
	}{
		{name: "immediately", succeedAt: 1, wantCalls: 1},
		{name: "after polling", succeedAt: 3, wantCalls: 3},
		{name: "never", succeedAt: 0, wantFatal: true, wantSubstr: "not met within 50ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			msg, fatal := runCatching(func(tb testing.TB) {
				Eventually(tb, 50*time.Millisecond, time.Millisecond, func() (bool, string) {
					calls++
					return calls == tt.succeedAt, fmt.Sprintf("attempt %d", calls)
				})
			})
			if fatal != tt.wantFatal {
				t.Fatalf("fatal = %v (%q), want %v", fatal, msg, tt.wantFatal)
			}
			if tt.wantFatal {
				// The last message must be the one reported.
				if !strings.Contains(msg, tt.wantSubstr) || !strings.HasSuffix(msg, fmt.Sprintf("attempt %d", calls)) {
					t.Fatalf("message %q, want %q and the last attempt", msg, tt.wantSubstr)
				}
				return
			}
			if calls != tt.wantCalls {
				t.Fatalf("cond called %d times, want %d", calls, tt.wantCalls)
			}
		})
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	if !isModuleRoot(filepath.Join(root, "go.mod")) {
		t.Fatalf("%s has no go.mod for %s", root, modulePath)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy", "local", "services.sh")); err != nil {
		t.Fatalf("RepoRoot %s does not hold deploy/local/services.sh: %v", root, err)
	}
}

func TestIsModuleRoot(t *testing.T) {
	tests := []struct {
		name, goMod string
		want        bool
	}{
		{"ours", "module github.com/pamtrail/pamtrail\n\ngo 1.26\n", true},
		{"quoted", "module \"github.com/pamtrail/pamtrail\"\n", true},
		{"a fork's nested module", "module github.com/pamtrail/pamtrail/tools\n", false},
		{"another module", "module example.com/x\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "go.mod")
			if err := os.WriteFile(path, []byte(tt.goMod), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := isModuleRoot(path); got != tt.want {
				t.Fatalf("isModuleRoot = %v, want %v", got, tt.want)
			}
		})
	}
}
