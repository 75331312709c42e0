package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/porttest"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// adminSection is an admin API on a free loopback port for the identity
// "ops-lead", whose token is written to tokenFile.
func adminSection(t *testing.T, tokenFile string) (yaml, url string) {
	token := randomHex(24)
	writeFile(t, tokenFile, token+"\n")
	sum := sha256.Sum256([]byte(token))
	addr := porttest.Addr(t)
	return fmt.Sprintf("admin:\n  address: %s\n  locks_file: locks.json\n  identities:\n    - {name: ops-lead, token_sha256: %s}\n",
		addr, hex.EncodeToString(sum[:])), "http://" + addr
}

// livePsql is a psql session kept open on stdin, so the test decides when
// it would end and sees how the gateway ended it.
type livePsql struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	out   bytes.Buffer
	done  chan struct{}
}

func startPsql(t *testing.T, dsn string) *livePsql {
	t.Helper()
	p := &livePsql{cmd: exec.Command("psql", dsn, "-X", "-v", "ON_ERROR_STOP=0"), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	fmt.Fprintln(p.stdin, "select 'psql-ready';")
	testenv.Eventually(t, 15*time.Second, 20*time.Millisecond, func() (bool, string) {
		return strings.Contains(p.output(), "psql-ready"), p.output()
	})
	return p
}

func (p *livePsql) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *livePsql) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// ended waits for psql to notice its connection was closed (it does so at
// its next statement, so the test sends one) and returns its output.
func (p *livePsql) ended(t *testing.T, within time.Duration) string {
	t.Helper()
	fmt.Fprintln(p.stdin, "select 'after-end';")
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("psql still connected after %s:\n%s", within, p.output())
	}
	return p.output()
}

// liveSessions asks a gateway's admin API for its live sessions.
func liveSessions(t *testing.T, url, tokenFile string) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(run(t, "cat", tokenFile)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET /v1/sessions: %v", err)
	}
	return out
}

// Two gateway processes, a session on each: terminate finds the session's
// gateway and ends only that session, within 2 s, telling the client why;
// a lock ends the user's sessions on every gateway and refuses new ones
// until unlock.
func TestTerminateAndLockAcrossGateways(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	var stacks [2]*stack
	var urls [2]string
	for i := range stacks {
		var extra string
		extra, urls[i] = adminSection(t, tokenFile+fmt.Sprint(i))
		stacks[i] = newStack(t, stackOptions{extra: extra})
	}
	// Both gateways trust the same token, as one admin's would.
	token := strings.TrimSpace(run(t, "cat", tokenFile+"0"))
	writeFile(t, tokenFile, token+"\n")
	writeFile(t, tokenFile+"1", token+"\n")
	sum := sha256.Sum256([]byte(token))
	for _, s := range stacks {
		run(t, "sed", "-i", "s/token_sha256: .*}/token_sha256: "+hex.EncodeToString(sum[:])+"}/", s.gwConfig)
		s.start()
	}
	admin := []string{"--gateway", urls[0], "--gateway", urls[1], "--token-file", tokenFile}

	onA := startPsql(t, stacks[0].dsn("alice", alicePassword, "demo-postgres"))
	onB := startPsql(t, stacks[1].dsn("alice", alicePassword, "demo-postgres"))
	live := liveSessions(t, urls[1], tokenFile)
	if len(live) != 1 {
		t.Fatalf("gateway B lists %d live sessions, want 1: %v", len(live), live)
	}
	id := live[0]["id"].(string)

	start := time.Now()
	out := run(t, pamtrailBin, append([]string{"sessions", "terminate", id, "--reason", "suspicious activity",
		"--url", stacks[0].esURL}, admin...)...)
	if !strings.Contains(out, "terminated on gateway "+stacks[1].gatewayID) {
		t.Fatalf("terminate output: %s", out)
	}
	got := onB.ended(t, 2*time.Second)
	t.Logf("terminate: client saw the end %s after the command started", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(got, "terminated by ops-lead: suspicious activity") {
		t.Fatalf("psql on gateway B was not told who and why:\n%s", got)
	}
	if strings.Contains(onA.output(), "terminat") {
		t.Fatalf("the session on gateway A was touched:\n%s", onA.output())
	}
	// In Elasticsearch: the session ended as terminated, saying who and
	// why, and the admin's action is an event of its own.
	stacks[1].waitSession(id, 30*time.Second, func(s review.Session) bool { return s.EndReason == schema.EndTerminated })
	stacks[1].waitEvents(30*time.Second, review.Filter{EventName: schema.EventAdminAction}, func(evs []review.Event) (bool, string) {
		for _, e := range evs {
			if e.Str(schema.AttrAdminOperation) == schema.AdminTerminate && e.Str(schema.AttrAdminIdentity) == "ops-lead" &&
				e.Str(schema.AttrAdminTarget) == id && e.Str(schema.AttrAdminReason) == "suspicious activity" && e.Str(schema.AttrAdminResult) == "ok" {
				return true, ""
			}
		}
		return false, describe(evs)
	})
	end := stacks[1].waitEvents(30*time.Second, review.Filter{SessionID: id, EventName: schema.EventSessionEnd}, func(evs []review.Event) (bool, string) {
		return len(evs) == 1, describe(evs)
	})
	if msg := end[0].Str(schema.AttrErrorMessage); msg != "terminated by ops-lead: suspicious activity" {
		t.Fatalf("recorded end message %q, want who and why", msg)
	}

	// A lock reaches every gateway: A's live session ends, new logins fail.
	out = run(t, pamtrailBin, append([]string{"lock", "user", "alice", "--for", "1h", "--reason", "incident 42"}, admin...)...)
	if strings.Count(out, "locked user alice") != 2 {
		t.Fatalf("lock output: %s", out)
	}
	if got := onA.ended(t, 2*time.Second); !strings.Contains(got, `user "alice" is locked: incident 42`) {
		t.Fatalf("psql on gateway A after the lock:\n%s", got)
	}
	for _, s := range stacks {
		msg, err := psql(t, s.dsn("alice", alicePassword, "demo-postgres"), "-c", "select 1")
		if err == nil || !strings.Contains(msg, `user "alice" is locked: incident 42`) {
			t.Fatalf("login on %s while locked: err %v, output %s", s.gatewayID, err, msg)
		}
	}
	if out := run(t, pamtrailBin, append([]string{"lock", "list"}, admin...)...); strings.Count(out, "user alice") != 2 {
		t.Fatalf("lock list: %s", out)
	}
	run(t, pamtrailBin, append([]string{"unlock", "user", "alice"}, admin...)...)
	for _, s := range stacks {
		if msg, err := psql(t, s.dsn("alice", alicePassword, "demo-postgres"), "-c", "select 1"); err != nil {
			t.Fatalf("login on %s after unlock: %v %s", s.gatewayID, err, msg)
		}
	}
}

// A reload while sessions run: a new user can log in at once, a user whose
// grant was removed is cut off (live session ended as grant_revoked, new
// logins refused), everyone else's sessions go on untouched. A config that
// fails validation is rejected whole, by the CLI and by SIGHUP alike, and
// the running one stays.
func TestReloadAddsUserAndRevokesGrantWhileSessionsRun(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	extra, url := adminSection(t, tokenFile)
	bobGrant := "  - user: bob\n    accounts: [demo-postgres]\n"
	s := newStack(t, stackOptions{extra: extra, extraGrants: bobGrant})
	s.start()
	admin := []string{"--gateway", url, "--token-file", tokenFile}

	alice := startPsql(t, s.dsn("alice", alicePassword, "demo-postgres"))
	bob := startPsql(t, s.dsn("bob", alicePassword, "demo-postgres"))
	if _, err := psql(t, s.dsn("carol", alicePassword, "demo-postgres"), "-c", "select 1"); err == nil {
		t.Fatal("carol logged in before she was added")
	}

	cfg := run(t, "cat", s.gwConfig)
	next := strings.Replace(cfg, bobGrant, "  - user: carol\n    accounts: [demo-postgres]\n", 1)
	next = strings.Replace(next, "users:\n", fmt.Sprintf("users:\n  - name: carol\n    postgres_scram: %q\n", aliceVerifier), 1)
	if next == cfg {
		t.Fatal("the config edit did not apply")
	}
	writeFile(t, s.gwConfig, next)
	out := run(t, pamtrailBin, append([]string{"reload"}, admin...)...)
	if !strings.Contains(out, "1 session(s) ended") {
		t.Fatalf("reload output: %s", out)
	}
	if got := bob.ended(t, 2*time.Second); !strings.Contains(got, "grant this session used was removed by a reload (by ops-lead)") {
		t.Fatalf("bob's session after the reload:\n%s", got)
	}
	fmt.Fprintln(alice.stdin, "select 'alice-still-' || 'here';")
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		return strings.Contains(alice.output(), "alice-still-here"), alice.output()
	})
	if msg, err := psql(t, s.dsn("carol", alicePassword, "demo-postgres"), "-c", "select 'carol-in'"); err != nil || !strings.Contains(msg, "carol-in") {
		t.Fatalf("carol after the reload: %v %s", err, msg)
	}
	if msg, err := psql(t, s.dsn("bob", alicePassword, "demo-postgres"), "-c", "select 1"); err == nil {
		t.Fatalf("bob logged in after his grant was removed: %s", msg)
	}

	// An invalid file changes nothing, whichever way the reload comes.
	writeFile(t, s.gwConfig, strings.Replace(next, "name: carol", "name: 'carol with spaces'", 1))
	cmd := exec.Command(pamtrailBin, append([]string{"reload"}, admin...)...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "users[0].name") {
		t.Fatalf("reload of an invalid config: err %v, output %s", err, out)
	}
	s.gateway.mu.Lock()
	pid := s.gateway.cmd.Process.Pid
	s.gateway.mu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		return strings.Count(s.gateway.log(), "reload rejected") >= 2, ""
	})
	if !s.gateway.running() {
		t.Fatal("the gateway stopped on a bad reload")
	}
	if msg, err := psql(t, s.dsn("carol", alicePassword, "demo-postgres"), "-c", "select 'carol-still-in'"); err != nil || !strings.Contains(msg, "carol-still-in") {
		t.Fatalf("carol after a rejected reload: %v %s", err, msg)
	}
}
