package ssh_test

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	"github.com/pamtrail/pamtrail/gateway/schema"
	sshgw "github.com/pamtrail/pamtrail/gateway/ssh"
)

// freezeProxy relays TCP to a backend until frozen; then it silently drops
// everything, like a peer whose network vanished without closing TCP.
type freezeProxy struct {
	port   int
	frozen atomic.Bool
}

func startFreezeProxy(t *testing.T, backend string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{port: ln.Addr().(*net.TCPAddr).Port}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	relay := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.frozen.Load() {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, b)
			mu.Unlock()
			wg.Add(2)
			go relay(b, c)
			go relay(c, b)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

// startCommand runs ssh with args in the background and waits for its
// first line of output.
func startCommand(t *testing.T, args []string, firstLine string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ssh", args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != firstLine+"\n" {
		t.Fatalf("first line %q, %v; want %q", line, err, firstLine)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return cmd
}

// TestKeepalives: a side that stops answering (its network gone, TCP still
// open) is detected by keepalives and ends the session.
func TestKeepalives(t *testing.T) {
	targetProxy := startFreezeProxy(t, testenv.SSHD(t).Addr())
	g := startGateway(t, gatewayOptions{
		engine: func(o *sshgw.Options) { o.KeepaliveInterval, o.KeepaliveMax = 200*time.Millisecond, 3 },
		accounts: []extraAccount{{name: "demo-frozen", fields: map[string]string{
			"host": "127.0.0.1", "port": strconv.Itoa(targetProxy.port)}}},
	})
	clientProxy := startFreezeProxy(t, fmt.Sprintf("127.0.0.1:%d", g.port))

	t.Run("client", func(t *testing.T) {
		args := append(g.sshArgs(g.aliceKey), "-o", fmt.Sprintf("HostKeyAlias=[127.0.0.1]:%d", g.port),
			"-p", strconv.Itoa(clientProxy.port), accountKey+"@127.0.0.1", "echo started; sleep 60")
		startCommand(t, args, "started")
		clientProxy.frozen.Store(true)
		evs := g.waitSessionEnds(1)
		end := ofKind(evs, "end")[0].End
		if end.Reason != schema.EndNetworkError || !strings.Contains(end.Message, "client did not answer") {
			t.Fatalf("end = %+v", end)
		}
	})
	t.Run("target", func(t *testing.T) {
		args := append(g.sshArgs(g.aliceKey), "-p", strconv.Itoa(g.port), "demo-frozen@127.0.0.1", "echo started; sleep 60")
		cmd := startCommand(t, args, "started")
		targetProxy.frozen.Store(true)
		evs := g.waitSessionEnds(2)
		end := ofKind(evs, "end")[1].End
		if end.Reason != schema.EndNetworkError || !strings.Contains(end.Message, "target did not answer") {
			t.Fatalf("end = %+v", end)
		}
		// The client is disconnected, not left hanging.
		if err := cmd.Wait(); err == nil {
			t.Fatal("the client exited 0")
		}
	})
}

// TestSessionLimits: the account's idle_timeout and max_duration end
// sessions with their reasons.
func TestSessionLimits(t *testing.T) {
	g := startGateway(t, gatewayOptions{accounts: []extraAccount{
		// Long enough that a loaded machine (-race, CI) starts the command
		// and prints its first line well within them.
		{name: "demo-idle", fields: map[string]string{"idle_timeout": "1500ms"}},
		{name: "demo-max", fields: map[string]string{"max_duration": "3s"}},
	}})
	tests := []struct {
		account, command, reason string
	}{
		{"demo-idle", "echo started; sleep 60", schema.EndIdleTimeout},
		{"demo-max", "echo started; while true; do echo tick; sleep 0.05; done", schema.EndMaxDuration},
	}
	for i, tt := range tests {
		args := append(g.sshArgs(g.aliceKey), "-p", strconv.Itoa(g.port), tt.account+"@127.0.0.1", tt.command)
		cmd := startCommand(t, args, "started")
		evs := g.waitSessionEnds(i + 1)
		if end := ofKind(evs, "end")[i].End; end.Reason != tt.reason {
			t.Errorf("%s: end = %+v, want %s", tt.account, end, tt.reason)
		}
		if err := cmd.Wait(); err == nil {
			t.Errorf("%s: the client exited 0", tt.account)
		}
	}
}

// TestUserCertificates: with a user CA configured, a certificate whose
// principal is a user logs in as that user; other certificates do not.
func TestUserCertificates(t *testing.T) {
	dir := t.TempDir()
	caPub, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, _ := gossh.NewSignerFromKey(caPriv)
	caKey, _ := gossh.NewPublicKey(caPub)
	caFile := filepath.Join(dir, "user_ca.pub")
	writeFile(t, caFile, "# pamtrail test CA\n"+string(gossh.MarshalAuthorizedKey(caKey)))
	g := startGateway(t, gatewayOptions{sshListener: "user_ca_file: " + caFile})

	// certKey writes a key pair and a certificate for it (key-cert.pub, the
	// name OpenSSH loads beside -i key).
	certKey := func(name string, principals []string, validBefore uint64, signer gossh.Signer) string {
		g.newKey(name)
		raw, err := os.ReadFile(filepath.Join(g.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		priv, err := gossh.ParsePrivateKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		cert := &gossh.Certificate{
			Key: priv.PublicKey(), CertType: gossh.UserCert, KeyId: name, ValidPrincipals: principals,
			ValidAfter: 0, ValidBefore: validBefore,
		}
		if err := cert.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(g.dir, name+"-cert.pub"), string(gossh.MarshalAuthorizedKey(cert)))
		return filepath.Join(g.dir, name)
	}
	_, otherCAPriv, _ := ed25519.GenerateKey(rand.Reader)
	otherCA, _ := gossh.NewSignerFromKey(otherCAPriv)

	out, stderr, code := g.ssh(certKey("alice-cert", []string{"nobody", "alice"}, gossh.CertTimeInfinity, caSigner), accountKey, "echo in")
	if code != 0 || out != "in\n" {
		t.Fatalf("certificate login: exit %d, %q, %s", code, out, stderr)
	}
	evs := g.waitSessionEnds(1)
	if info := ofKind(evs, "start")[0].Info; info.User != "alice" || info.AuthMethod != "publickey-cert" {
		t.Fatalf("session = %+v; want alice by publickey-cert", info)
	}
	for i, key := range []string{
		certKey("mallory-cert", []string{"mallory"}, gossh.CertTimeInfinity, caSigner),
		certKey("expired-cert", []string{"alice"}, uint64(time.Now().Add(-time.Hour).Unix()), caSigner),
		certKey("forged-cert", []string{"alice"}, gossh.CertTimeInfinity, otherCA),
	} {
		if _, _, code := g.ssh(key, accountKey, "echo in"); code != 255 {
			t.Errorf("certificate %s: exit %d, want refused", key, code)
		}
		evs := g.waitEvents("auth failure", func(evs []recordertest.Event) bool { return len(ofKind(evs, "auth_failure")) == i+1 })
		if f := ofKind(evs, "auth_failure")[i].Failure; f.Reason != schema.AuthBadKey {
			t.Errorf("certificate %s: failure %+v", key, f)
		}
	}
}

// TestFailClosedRecording: when the recorder refuses an event (fail-closed
// policy), the session ends with recording_error.
func TestFailClosedRecording(t *testing.T) {
	g := startGateway(t, gatewayOptions{failWith: errors.New("spool is full")})
	_, _, code := g.ssh(g.aliceKey, accountKey, "-tt", "echo hi; sleep 30")
	if code != 255 {
		t.Fatalf("ssh exit %d; want the session cut (255)", code)
	}
	evs := g.waitSessionEnds(1)
	if end := ofKind(evs, "end")[0].End; end.Reason != schema.EndRecordingError || !strings.Contains(end.Message, "spool is full") {
		t.Fatalf("end = %+v", end)
	}
}
