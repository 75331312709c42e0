package ssh_test

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

// startEcho runs a TCP echo server, the far end of port forwards.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestPortForwarding: forwards are refused unless the account allows them,
// and each allowed forward is recorded with its target and bytes.
func TestPortForwarding(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	echo := startEcho(t)
	forward := func(account string) (string, string, int) {
		cmd := exec.Command("ssh", append(g.sshArgs(g.aliceKey), "-p", strconv.Itoa(g.port), "-W", echo, account+"@127.0.0.1")...)
		cmd.Stdin = strings.NewReader("ping through the tunnel\n")
		return run(t, cmd)
	}

	out, stderr, code := forward(accountKey)
	if code == 0 || strings.Contains(out, "ping") || !strings.Contains(stderr, "port forwarding is not allowed") {
		t.Fatalf("forward on %s: exit %d, out %q, stderr %q; want refused with a reason", accountKey, code, out, stderr)
	}

	out, stderr, code = forward(accountForward)
	if code != 0 || out != "ping through the tunnel\n" {
		t.Fatalf("forward on %s: exit %d, out %q, stderr %q", accountForward, code, out, stderr)
	}
	evs := g.waitEvents("forward record", func(evs []recordertest.Event) bool { return len(ofKind(evs, "forward")) == 1 })
	f := ofKind(evs, "forward")[0].Forward
	if f.Target != echo || f.Bytes != 2*int64(len("ping through the tunnel\n")) {
		t.Fatalf("forward = %+v; want target %s and the bytes both ways", f, echo)
	}
}

// TestRefusedRequests: agent and X11 forwarding never reach the target, and
// only allow-listed environment variables do.
func TestRefusedRequests(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Kill()
		_ = agent.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not create its socket")
		}
		time.Sleep(10 * time.Millisecond) // polling for the socket, bounded by the deadline
	}

	args := append(g.sshArgs(g.aliceKey), "-p", strconv.Itoa(g.port),
		"-o", "ForwardAgent=yes", "-o", "ForwardX11=yes", "-o", "SendEnv=LC_PAMTRAIL LANG PAMTRAIL_SECRET",
		accountKey+"@127.0.0.1", "echo agent=${SSH_AUTH_SOCK:-none} display=${DISPLAY:-none} lc=${LC_PAMTRAIL:-none} lang=${LANG:-none}")
	cmd := exec.Command("ssh", args...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock, "DISPLAY=:42", "LC_PAMTRAIL=passed", "LANG=C.UTF-8", "PAMTRAIL_SECRET=x")
	out, stderr, code := run(t, cmd)
	if code != 0 {
		t.Fatalf("ssh: exit %d: %s", code, stderr)
	}
	// sshd accepts LANG and LC_*; the account allows only LC_*.
	if want := "agent=none display=none lc=passed lang=none\n"; out != want {
		t.Fatalf("remote environment %q, want %q", out, want)
	}
	if !strings.Contains(stderr, "X11 forwarding request failed") {
		t.Errorf("the client was not told X11 forwarding failed: %q", stderr)
	}
}

// TestShellWithoutPty: a shell fed on stdin (ssh -T) is recorded as one
// command whose text is the script, with its output and exit status.
func TestShellWithoutPty(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	script := "echo one\necho two; echo three\nexit 4\n"
	cmd := exec.Command("ssh", append(g.sshArgs(g.aliceKey), "-T", "-p", strconv.Itoa(g.port), accountKey+"@127.0.0.1")...)
	cmd.Stdin = strings.NewReader(script)
	out, _, code := run(t, cmd)
	if code != 4 || out != "one\ntwo\nthree\n" {
		t.Fatalf("ssh -T: exit %d, out %q", code, out)
	}
	evs := g.waitSessionEnds(1)
	cmds := ofKind(evs, "command")
	if len(cmds) != 1 {
		t.Fatalf("commands:\n%s", dumpEvents(evs))
	}
	c := cmds[0].Command
	if c.Channel != "terminal" || c.Text != strings.TrimSuffix(script, "\n") || c.Output != out || c.ExitStatus == nil || *c.ExitStatus != 4 {
		t.Fatalf("command = %+v", c)
	}
}

// TestExecWithPty: ssh -t host cmd is an exec with a pty: one command
// event, and the raw output for replay.
func TestExecWithPty(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	out, _, code := g.ssh(g.aliceKey, accountKey, "-tt", "printf 'pty says hi\\n'")
	if code != 0 || !strings.Contains(out, "pty says hi") {
		t.Fatalf("ssh -tt: exit %d, out %q", code, out)
	}
	evs := g.waitSessionEnds(1)
	cmds, outs := ofKind(evs, "command"), ofKind(evs, "output")
	if len(cmds) != 1 || cmds[0].Command.Channel != "exec" || !strings.Contains(cmds[0].Command.Output, "pty says hi") {
		t.Fatalf("commands:\n%s", dumpEvents(evs))
	}
	var replay string
	for _, o := range outs {
		if o.Output.Stream == "pty" {
			replay += o.Output.Data
		}
	}
	if !strings.Contains(replay, "pty says hi") {
		t.Fatalf("no replay output recorded:\n%s", dumpEvents(evs))
	}
}
