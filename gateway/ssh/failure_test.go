package ssh_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestRefusals: each refused login is refused with a reason the user can
// read, recorded as pam.auth.failure, and never becomes a session.
func TestRefusals(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	tests := []struct {
		name       string
		key        string
		account    string
		wantReason string
		wantUser   string
		wantStderr string
	}{
		{"wrong key", g.strayKey, accountKey, schema.AuthBadKey, "", "Permission denied"},
		{"unknown account", g.aliceKey, "no-such-account", schema.AuthUnknownAccount, "alice", `may not use account "no-such-account"`},
		{"missing grant", g.aliceKey, accountNoGrant, schema.AuthNoGrant, "alice", `may not use account "demo-nogrant"`},
		{"grant for another user only", g.bobKey, accountPassword, schema.AuthNoGrant, "bob", `may not use account`},
		{"changed target host key", g.aliceKey, accountBadHost, schema.AuthHostKeyMismatch, "alice", "target host key mismatch"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := g.ssh(tt.key, tt.account, "echo should-not-run")
			if code != 255 || strings.Contains(stdout, "should-not-run") {
				t.Fatalf("ssh exit %d, stdout %q: want refused (255)", code, stdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not explain the refusal (want %q)", stderr, tt.wantStderr)
			}
			evs := g.waitEvents("auth failure", func(evs []recordertest.Event) bool {
				return len(ofKind(evs, "auth_failure")) >= i+1
			})
			f := ofKind(evs, "auth_failure")[i].Failure
			if f.Reason != tt.wantReason || f.Account != tt.account || f.User != tt.wantUser ||
				f.ResourceType != schema.ResourceSSH || f.ClientAddr != "127.0.0.1" || f.Message == "" {
				t.Errorf("auth failure = %+v; want reason %s, account %s, user %q", f, tt.wantReason, tt.account, tt.wantUser)
			}
		})
	}
	if starts := ofKind(g.rec.Events(), "start"); len(starts) != 0 {
		t.Errorf("refused logins started %d session(s)", len(starts))
	}
}

// TestGarbageClosesOnlyThatConnection: bytes that are not SSH close that
// connection, while a session in progress carries on and new ones work.
func TestGarbageClosesOnlyThatConnection(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	// A session running while the garbage arrives.
	long := exec.Command("ssh", append(g.sshArgs(g.aliceKey), "-p", strconv.Itoa(g.port), accountKey+"@127.0.0.1", "read line; echo got:$line")...)
	stdin, err := long.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := long.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := long.Start(); err != nil {
		t.Fatal(err)
	}
	g.waitEvents("the long session to start", func(evs []recordertest.Event) bool { return len(ofKind(evs, "start")) == 1 })

	garbage := [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		[]byte("SSH-2.0-evil\r\n" + strings.Repeat("\xff", 4096)),
		{0, 0, 0, 0, 0, 0, 0, 0},
	}
	for _, junk := range garbage {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", g.port))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(junk)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("the gateway kept a garbage connection open")
		}
		conn.Close()
	}

	if _, err := io.WriteString(stdin, "still-alive\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "got:still-alive\n" {
		t.Fatalf("the running session read %q, %v", line, err)
	}
	stdin.Close()
	if err := long.Wait(); err != nil {
		t.Fatalf("the running session failed: %v", err)
	}
	if out, _, code := g.ssh(g.aliceKey, accountKey, "echo new"); out != "new\n" || code != 0 {
		t.Fatalf("a new session after the garbage: %q exit %d", out, code)
	}
	if n := len(ofKind(g.rec.Events(), "auth_failure")); n != 0 {
		t.Errorf("garbage was recorded as %d auth failure(s); it never asked to authenticate", n)
	}
}

// TestAbruptDrops: either side vanishing mid-command ends the session with
// a reason, and the engine leaks nothing (TestMain checks goroutines).
func TestAbruptDrops(t *testing.T) {
	g := startGateway(t, gatewayOptions{})

	// Each case waits for one more end than there were before it, so any
	// case can run alone (-run).
	endsSoFar := func() int { return len(ofKind(g.rec.Events(), "end")) }

	t.Run("client killed", func(t *testing.T) {
		before := endsSoFar()
		cmd := exec.Command("ssh", append(g.sshArgs(g.aliceKey), "-p", strconv.Itoa(g.port), accountKey+"@127.0.0.1", "echo started; sleep 60")...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "started\n" {
			t.Fatalf("read %q, %v", line, err)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		evs := g.waitSessionEnds(before + 1)
		end := ofKind(evs, "end")[before].End
		if end.Reason != schema.EndNetworkError {
			t.Fatalf("end = %+v, want %s", end, schema.EndNetworkError)
		}
		// The command cut off is still recorded, without an exit status.
		cmds := ofKind(evs, "command")
		if len(cmds) != 1 || cmds[0].Command.ExitStatus != nil || cmds[0].Command.Output != "started\n" {
			t.Fatalf("commands:\n%s", dumpEvents(evs))
		}
	})

	t.Run("target connection killed", func(t *testing.T) {
		before := endsSoFar()
		// The target's per-connection sshd process is the shell's parent.
		_, _, code := g.ssh(g.aliceKey, accountKey, "echo started; sleep 0.2; kill -9 $PPID; sleep 5")
		if code == 0 {
			t.Fatalf("ssh exited 0 although the target connection was killed")
		}
		evs := g.waitSessionEnds(before + 1)
		end := ofKind(evs, "end")[before].End
		if end.Reason != schema.EndUpstreamClosed {
			t.Fatalf("end = %+v, want %s", end, schema.EndUpstreamClosed)
		}
	})
}
