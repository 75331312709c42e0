// Package e2e runs the real binaries end to end: psql/pgx → pamtrail gateway
// → encrypted spool → OTLP → otelcol-pamtrail → Elasticsearch, against the
// real PostgreSQL and Elasticsearch that deploy/local/services.sh starts.
package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/porttest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

var (
	repoRoot     string
	pamtrailBin  string
	collectorBin string
)

func TestMain(m *testing.M) {
	wd, _ := os.Getwd()
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	// Always build the gateway from the tree under test; the collector is
	// built by `make build` (ocb takes minutes) and must be present.
	tmp, err := os.MkdirTemp("", "pamtrail-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pamtrailBin = filepath.Join(tmp, "pamtrail")
	build := exec.Command("go", "build", "-o", pamtrailBin, "./gateway/cmd/pamtrail")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pamtrail:", err)
		os.Exit(1)
	}
	collectorBin = filepath.Join(repoRoot, "bin", "otelcol-pamtrail")
	if _, err := os.Stat(collectorBin); err != nil {
		fmt.Fprintln(os.Stderr, "bin/otelcol-pamtrail is missing: run `make build` (make test does) first")
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// stack is one collector and one gateway with their own ports, spool and
// queue directories, so tests are independent of each other and of `make run`.
type stack struct {
	t           testing.TB
	dir         string
	pg          testenv.PG
	esURL       string
	gwAddr      string
	otlpAddr    string
	healthAddr  string
	gatewayID   string // unique per stack: every ES query filters on it
	countIndex  string // where statementCount counts: the events pattern unless a benchmark narrows it
	spoolDir    string
	gwConfig    string
	colConfig   string
	gateway     *proc
	collector   *proc
	metricsAddr string // the gateway's Prometheus endpoint
	sshAddr     string // when stackOptions.ssh
	mysqlAddr   string // when stackOptions.mysql
	aliceKey    string // alice's SSH private key file
}

type stackOptions struct {
	uploadInterval string // default 1s: tests need not wait 10 s per cycle
	extraAccounts  string // YAML appended to accounts:
	extraGrants    string
	recording      string // YAML body of recording:
	spool          string // extra YAML lines for spool:
	ssh            bool   // also an SSH listener and the demo-ssh account
	mysql          bool   // also a MySQL listener and the demo-mysql account (MariaDB's test database)
	extra          string // YAML appended at the end (admin:, policies:)

	listeners, userExtra string // filled by newStack
}

func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	if o.uploadInterval == "" {
		o.uploadInterval = "1s"
	}
	if o.recording == "" {
		o.recording = "  failure_policy: fail-open\n"
	}
	s := &stack{
		t: t, dir: t.TempDir(), pg: testenv.Postgres(t), esURL: testenv.Elasticsearch(t),
		gwAddr:      porttest.Addr(t),
		otlpAddr:    porttest.Addr(t),
		healthAddr:  porttest.Addr(t),
		metricsAddr: porttest.Addr(t),
	}
	s.spoolDir = filepath.Join(s.dir, "spool")
	s.gatewayID = "e2e-" + randomHex(6)
	s.countIndex = schema.EventsIndexPattern
	run(t, pamtrailBin, "setup", "elasticsearch", "--url", s.esURL)
	run(t, pamtrailBin, "keygen", "--out", filepath.Join(s.dir, "spool.keys"))
	demoPW := filepath.Join(s.dir, "demo.password")
	if err := os.WriteFile(demoPW, []byte(s.pg.DemoPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	grants := "demo-postgres"
	if o.ssh {
		target := testenv.SSHD(t)
		s.sshAddr = porttest.Addr(t)
		s.aliceKey = filepath.Join(s.dir, "alice_ed25519")
		run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", s.aliceKey)
		o.listeners += fmt.Sprintf("ssh:\n  address: %s\n  host_key_file: ssh_host_key\n", s.sshAddr)
		o.userExtra += "    ssh_authorized_keys_file: alice_ed25519.pub\n"
		o.extraAccounts += fmt.Sprintf(`  - name: demo-ssh
    type: ssh
    host: %s
    port: %d
    user: %s
    secret: {file: %s}
    known_hosts: %q
`, target.Host, target.Port, target.User, target.KeyFile, target.KnownHosts)
		grants += ", demo-ssh"
	}
	if o.mysql {
		db := testenv.MySQL(t)
		s.mysqlAddr = porttest.Addr(t)
		o.listeners += fmt.Sprintf("mysql:\n  address: %s\n", s.mysqlAddr)
		o.extraAccounts += fmt.Sprintf("  - {name: demo-mysql, type: mysql, host: %s, port: %d, database: %s, user: %s, secret: {file: %s}}\n",
			db.Host, db.Port, db.TestDB, db.DemoUser, db.DemoPasswordFile)
		grants += ", demo-mysql"
	}
	s.gwConfig = filepath.Join(s.dir, "gateway.yaml")
	writeFile(t, s.gwConfig, fmt.Sprintf(`gateway:
  id: %s
  log_level: debug
postgres:
  address: %s
%sspool:
  dir: spool
  key_file: spool.keys
  fsync: interval
  fsync_interval: 50ms
%supload:
  endpoint: %s
  interval: %s
  insecure: true
  compression: none
recording:
%smetrics:
  address: %s
users:
  - name: alice
    postgres_scram: %q
%s  - name: bob
    postgres_scram: %q
accounts:
  - name: demo-postgres
    type: postgres
    host: %s
    port: %d
    database: demo
    user: %s
    secret: {file: demo.password}
%sgrants:
  - user: alice
    accounts: [%s]
%s%s`, s.gatewayID, s.gwAddr, o.listeners, o.spool, s.otlpAddr, o.uploadInterval, o.recording, s.metricsAddr, aliceVerifier, o.userExtra, aliceVerifier,
		s.pg.Host, s.pg.Port, s.pg.DemoUser, o.extraAccounts, grants, o.extraGrants, o.extra))
	s.colConfig = filepath.Join(s.dir, "collector.yaml")
	writeFile(t, s.colConfig, collectorConfig(s.otlpAddr, s.healthAddr, s.esURL, filepath.Join(s.dir, "queue")))
	if err := os.MkdirAll(filepath.Join(s.dir, "queue"), 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, pamtrailBin, "keygen", "--out", filepath.Join(s.dir, "queue", "queue.keys"))
	s.collector = newProc(t, "collector", collectorGCEnv, collectorBin, "--config", s.colConfig)
	s.gateway = newProc(t, "gateway", nil, pamtrailBin, "gateway", "--config", s.gwConfig)
	return s
}

// aliceVerifier is the SCRAM verifier of "alice-demo-password" (the
// quickstart's demo-only password); bob shares it but has no grant.
const aliceVerifier = "SCRAM-SHA-256$4096:1cqs/8TL14Rp37sA/yZ4iw==$It2FJWMm7IMObedMkwjZ+5DijdgG57qntpqxbTkdyZs=:Q2hTm1+ImYTLorJfDgfFdLPQql9gLIZEITECSHMCgoo="

const alicePassword = "alice-demo-password"

func (s *stack) startCollector() {
	s.t.Helper()
	s.collector.start()
	testenv.Eventually(s.t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		if !s.collector.running() {
			s.t.Fatalf("collector exited:\n%s", s.collector.log())
		}
		resp, err := http.Get("http://" + s.healthAddr + "/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
}

func (s *stack) startGateway() {
	s.t.Helper()
	s.gateway.start()
	testenv.Eventually(s.t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		if !s.gateway.running() {
			s.t.Fatalf("gateway exited:\n%s", s.gateway.log())
		}
		for _, addr := range []string{s.gwAddr, s.mysqlAddr} {
			if addr == "" {
				continue
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return false, err.Error()
			}
			c.Close()
		}
		return true, ""
	})
}

func (s *stack) start() {
	s.startCollector()
	s.startGateway()
}

// dsn is a libpq URL through the gateway.
func (s *stack) dsn(user, password, account string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, password, s.gwAddr, account)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
