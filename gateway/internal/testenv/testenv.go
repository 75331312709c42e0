// Package testenv finds the real services tests run against. Values come
// from PAMTRAIL_* environment variables; unset ones are loaded from
// .pamtrail/services.env, which deploy/local/services.sh writes. A missing
// or unreachable service fails the test with the command that starts it:
// integration tests never skip.
package testenv

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// PG describes the PostgreSQL server and its test roles.
type PG struct {
	Host          string
	Port          int
	AdminUser     string
	AdminPassword string
	TestDB        string
	DemoDB        string
	DemoUser      string
	DemoPassword  string
	MD5User       string
	MD5Password   string
	PlainUser     string
	PlainPassword string
	TrustUser     string
	CAFile        string // CA that signed the server certificate (TLS tests)
	CAKeyFile     string // its key, to mint more certificates in tests
	PgBouncerPort int    // 0 when pgbouncer is not running
}

// AdminDSN is a libpq URL for the admin role on db.
func (p PG) AdminDSN(db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", p.AdminUser, p.AdminPassword, p.Host, p.Port, db)
}

// DemoDSN is a libpq URL for the demo role, directly (not through pamtrail).
func (p PG) DemoDSN() string {
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", p.DemoUser, p.DemoPassword, p.Host, p.Port, p.DemoDB)
}

// SSHTarget describes the OpenSSH target.
type SSHTarget struct {
	Host           string
	Port           int
	User           string
	KeyFile        string // the account's private key
	Password       string
	KnownHosts     string // known_hosts line for the server's host key
	KnownHostsFile string
}

var (
	loadOnce sync.Once
	fileEnv  map[string]string
	loadErr  error
)

// Get returns a PAMTRAIL_* setting from the environment or services.env.
func Get(name string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	loadOnce.Do(func() { fileEnv, loadErr = loadServicesEnv() })
	return fileEnv[name]
}

func loadServicesEnv() (map[string]string, error) {
	home := os.Getenv("PAMTRAIL_HOME")
	if home == "" {
		root, err := findRepoRoot()
		if err != nil {
			return nil, err
		}
		home = filepath.Join(root, ".pamtrail")
	}
	f, err := os.Open(filepath.Join(home, "services.env"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseEnvFile(bufio.NewScanner(f))
}

// ParseEnvFile reads `export NAME=value` lines, with optional single or
// double quotes around the value, ignoring comments and blank lines.
func ParseEnvFile(sc *bufio.Scanner) (map[string]string, error) {
	out := map[string]string{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("services.env: malformed line %q", line)
		}
		if len(v) >= 2 && (v[0] == '\'' && v[len(v)-1] == '\'' || v[0] == '"' && v[len(v)-1] == '"') {
			v = v[1 : len(v)-1]
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, sc.Err()
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/pamtrail/pamtrail\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no pamtrail repository above the working directory")
		}
		dir = parent
	}
}

// RepoRoot is the checkout's root directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := findRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func require(t testing.TB, service string, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if Get(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s is not configured (%s unset; services.env: %v). Start it with: deploy/local/services.sh up %s",
			service, strings.Join(missing, ", "), loadErr, service)
	}
}

func readSecret(t testing.TB, envName string) string {
	t.Helper()
	path := Get(envName)
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", envName, err)
	}
	return strings.TrimRight(string(b), "\r\n")
}

func atoi(t testing.TB, name string) int {
	t.Helper()
	v := Get(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q is not a number", name, v)
	}
	return n
}

func dialable(t testing.TB, service, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("%s at %s is unreachable (%v). Start it with: deploy/local/services.sh up %s", service, addr, err, service)
	}
	c.Close()
}

// Postgres returns the PostgreSQL server, verified reachable.
func Postgres(t testing.TB) PG {
	t.Helper()
	require(t, "postgres", "PAMTRAIL_PG_HOST", "PAMTRAIL_PG_PORT", "PAMTRAIL_PG_ADMIN_USER", "PAMTRAIL_PG_ADMIN_PASSWORD")
	p := PG{
		Host:          Get("PAMTRAIL_PG_HOST"),
		Port:          atoi(t, "PAMTRAIL_PG_PORT"),
		AdminUser:     Get("PAMTRAIL_PG_ADMIN_USER"),
		AdminPassword: Get("PAMTRAIL_PG_ADMIN_PASSWORD"),
		TestDB:        or(Get("PAMTRAIL_PG_TEST_DB"), "pamtrail_test"),
		DemoDB:        or(Get("PAMTRAIL_PG_DEMO_DB"), "demo"),
		DemoUser:      or(Get("PAMTRAIL_PG_DEMO_USER"), "pamtrail_demo"),
		DemoPassword:  readSecret(t, "PAMTRAIL_PG_DEMO_PASSWORD_FILE"),
		MD5User:       Get("PAMTRAIL_PG_MD5_USER"),
		MD5Password:   readSecret(t, "PAMTRAIL_PG_MD5_PASSWORD_FILE"),
		PlainUser:     Get("PAMTRAIL_PG_PLAIN_USER"),
		PlainPassword: readSecret(t, "PAMTRAIL_PG_PLAIN_PASSWORD_FILE"),
		TrustUser:     Get("PAMTRAIL_PG_TRUST_USER"),
		CAFile:        Get("PAMTRAIL_TLS_CA"),
		CAKeyFile:     Get("PAMTRAIL_TLS_CA_KEY"),
		PgBouncerPort: atoi(t, "PAMTRAIL_PGBOUNCER_PORT"),
	}
	dialable(t, "postgres", net.JoinHostPort(p.Host, strconv.Itoa(p.Port)))
	return p
}

// Elasticsearch returns the Elasticsearch URL, verified answering.
func Elasticsearch(t testing.TB) string {
	t.Helper()
	require(t, "elasticsearch", "PAMTRAIL_ES_URL")
	url := strings.TrimRight(Get("PAMTRAIL_ES_URL"), "/")
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url + "/")
	if err != nil {
		t.Fatalf("elasticsearch at %s is unreachable (%v). Start it with: deploy/local/services.sh up elasticsearch", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("elasticsearch at %s answered %s", url, resp.Status)
	}
	return url
}

// SSHD returns the OpenSSH target, verified reachable.
func SSHD(t testing.TB) SSHTarget {
	t.Helper()
	require(t, "sshd", "PAMTRAIL_SSHD_HOST", "PAMTRAIL_SSHD_PORT", "PAMTRAIL_SSHD_USER", "PAMTRAIL_SSHD_KEY", "PAMTRAIL_SSHD_KNOWN_HOSTS")
	s := SSHTarget{
		Host:           Get("PAMTRAIL_SSHD_HOST"),
		Port:           atoi(t, "PAMTRAIL_SSHD_PORT"),
		User:           Get("PAMTRAIL_SSHD_USER"),
		KeyFile:        Get("PAMTRAIL_SSHD_KEY"),
		Password:       readSecret(t, "PAMTRAIL_SSHD_PASSWORD_FILE"),
		KnownHosts:     Get("PAMTRAIL_SSHD_KNOWN_HOSTS"),
		KnownHostsFile: Get("PAMTRAIL_SSHD_KNOWN_HOSTS_FILE"),
	}
	dialable(t, "sshd", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
	return s
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond every interval until it holds or timeout passes,
// then fails the test with cond's last message.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", timeout, msg)
		}
		time.Sleep(interval)
	}
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
