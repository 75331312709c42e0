// Package testenv finds the real services tests run against. Values come
// from PAMTRAIL_* environment variables; unset ones are loaded from
// services.env, which deploy/local/services.sh writes into
// ${PAMTRAIL_HOME:-<repo>/.pamtrail}. A missing or unreachable service fails
// the test with the command that starts it: integration tests never skip.
package testenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	modulePath = "github.com/pamtrail/pamtrail"
	// servicesScript is what every failure message tells the reader to run.
	servicesScript = "deploy/local/services.sh"
	dialTimeout    = 3 * time.Second
)

// source resolves PAMTRAIL_* settings: the process environment wins, then
// services.env. Tests build their own to exercise the file path.
type source struct {
	file     map[string]string
	filePath string
	fileErr  error // why services.env is unusable; reported when a setting is missing
}

func (s source) get(name string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return s.file[name]
}

// defaultSource reads services.env once per test binary; the environment is
// still consulted on every lookup, so t.Setenv works.
var defaultSource = sync.OnceValue(func() source {
	path, err := servicesEnvPath()
	if err != nil {
		return source{fileErr: err}
	}
	return loadSource(path)
})

func loadSource(path string) source {
	s := source{filePath: path}
	f, err := os.Open(path)
	if err != nil {
		s.fileErr = err
		return s
	}
	defer f.Close()
	s.file, s.fileErr = ParseEnvFile(f)
	if s.fileErr != nil {
		s.fileErr = fmt.Errorf("%s: %w", path, s.fileErr)
	}
	return s
}

// servicesEnvPath is $PAMTRAIL_HOME/services.env, defaulting PAMTRAIL_HOME to
// .pamtrail in the repository root as services.sh does.
func servicesEnvPath() (string, error) {
	if home := os.Getenv("PAMTRAIL_HOME"); home != "" {
		return filepath.Join(home, "services.env"), nil
	}
	root, err := findRepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".pamtrail", "services.env"), nil
}

// Get returns a PAMTRAIL_* setting from the environment or services.env, or
// "" when neither has it.
func Get(name string) string { return defaultSource().get(name) }

// RepoRoot is the checkout's root directory: the nearest ancestor of the
// working directory whose go.mod declares the pamtrail module.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := findRepoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isModuleRoot(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod declaring module %s above the working directory", modulePath)
		}
		dir = parent
	}
}

func isModuleRoot(goMod string) bool {
	b, err := os.ReadFile(goMod)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
			return true
		}
	}
	return false
}

// setting is a value read for one service; it carries the context a failure
// message needs.
type setting struct {
	t       testing.TB
	src     source
	service string // the services.sh argument that provisions it
}

// fail stops the test, naming the command that fixes the most likely cause.
func (s setting) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s: %s. Start it with: %s up %s", s.service, fmt.Sprintf(format, args...), servicesScript, s.service)
}

// require fails unless every name is set, explaining where it looked.
func (s setting) require(names ...string) {
	s.t.Helper()
	var missing []string
	for _, n := range names {
		if s.src.get(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	where := "services.env: " + s.src.filePath
	if s.src.fileErr != nil {
		where = "services.env unusable: " + s.src.fileErr.Error()
	}
	s.fail("not configured (%s unset in the environment and in %s)", strings.Join(missing, ", "), where)
}

func (s setting) str(name string) string { return s.src.get(name) }

func (s setting) strOr(name, def string) string {
	if v := s.src.get(name); v != "" {
		return v
	}
	return def
}

// port parses a port setting; an unset optional one is 0.
func (s setting) port(name string) int {
	s.t.Helper()
	v := s.src.get(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		s.fail("%s=%q is not a TCP port", name, v)
	}
	return n
}

// secret reads the password file a setting names. Like config.SecretRef, it
// drops one trailing newline; an unset setting yields "".
func (s setting) secret(name string) string {
	s.t.Helper()
	path := s.src.get(name)
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		s.fail("%s: %v", name, err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
}

// dial fails unless something accepts TCP connections at host:port.
func (s setting) dial(host string, port int) {
	s.t.Helper()
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		s.fail("unreachable at %s (%v)", addr, err)
		return
	}
	c.Close()
}

// file fails unless a path setting names a readable file.
func (s setting) file(name string) string {
	s.t.Helper()
	path := s.src.get(name)
	if _, err := os.Stat(path); err != nil {
		s.fail("%s: %v", name, err)
	}
	return path
}

// Eventually calls cond every interval until it reports true, and fails the
// test with cond's last message if that does not happen within timeout. Like
// t.Fatalf, call it from the test's goroutine.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for attempt := 1; ; attempt++ {
		ok, msg := cond()
		if ok {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("condition not met within %s (%d attempts): %s", timeout, attempt, msg)
			return
		}
		time.Sleep(min(interval, time.Until(deadline)))
	}
}

// httpGet fetches a URL without keeping connections (and their goroutines)
// alive after the call, so packages using goleak stay clean.
func httpGet(rawURL string) (*http.Response, []byte, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := client.Get(rawURL)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	return resp, body, err
}

// dsn builds a libpq URL with user and password escaped.
func dsn(host string, port int, user, password, db, sslmode string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(host, strconv.Itoa(port)),
		Path:     "/" + db,
		RawQuery: url.Values{"sslmode": {sslmode}}.Encode(),
	}
	if password == "" {
		u.User = url.User(user)
	}
	return u.String()
}

var errNotHTTPURL = errors.New("not an http(s) URL")

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errNotHTTPURL
	}
	return nil
}
