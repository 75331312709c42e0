package ssh_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	sshgw "github.com/pamtrail/pamtrail/gateway/ssh"
)

// gateway is a running SSH engine in front of the real OpenSSH target,
// with an in-memory recorder and real OpenSSH clients to drive it.
type gateway struct {
	t          testing.TB
	engine     *sshgw.Engine
	cfg        *config.Config
	rec        *recordertest.Memory
	target     testenv.SSHTarget
	dir        string
	port       int
	aliceKey   string // private key files for the OpenSSH clients
	bobKey     string
	strayKey   string // a key no user has
	knownHosts string // the gateway's host key, for the clients
	served     chan error
}

// gatewayOptions adjust a test gateway.
type gatewayOptions struct {
	engine      func(*sshgw.Options)
	accounts    []extraAccount
	sshListener string // extra YAML for the ssh: section
	failWith    error  // make the recorder fail every session event
	extra       string // YAML appended to the config (policies:)
}

// extraAccount is an account granted to alice; fields are YAML values
// overriding the defaults (host, port, secret, known_hosts...).
type extraAccount struct {
	name   string
	fields map[string]string
}

const (
	accountKey      = "demo-ssh"      // private-key credential
	accountPassword = "demo-password" // password credential
	accountBadHost  = "demo-badhost"  // pins a host key the target does not have
	accountForward  = "demo-forward"  // allows port forwarding
	accountNoGrant  = "demo-nogrant"  // exists, but alice has no grant
)

func startGateway(t *testing.T, opts gatewayOptions) *gateway {
	t.Helper()
	return startGatewayTB(t, opts)
}

// startGatewayTB is startGateway for tests and benchmarks alike; a
// benchmark's gateway logs only warnings.
func startGatewayTB(t testing.TB, opts gatewayOptions) *gateway {
	t.Helper()
	target := testenv.SSHD(t)
	dir := t.TempDir()
	g := &gateway{t: t, target: target, dir: dir, rec: recordertest.New(), served: make(chan error, 1)}
	g.rec.FailWith = opts.failWith
	alicePub := g.newKey("alice")
	bobPub := g.newKey("bob")
	g.newKey("stray")
	g.aliceKey, g.bobKey, g.strayKey = filepath.Join(dir, "alice"), filepath.Join(dir, "bob"), filepath.Join(dir, "stray")

	passwordFile := filepath.Join(dir, "target.password")
	writeFile(t, passwordFile, target.Password)
	// A well-formed pin of a key the target does not hold.
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	otherKey, _ := gossh.NewPublicKey(otherPub)
	badPin := fmt.Sprintf("[%s]:%d %s", target.Host, target.Port, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(otherKey))))

	// Every account reaches the real target with the stored key, unless
	// it says otherwise; extra accounts from the options are granted to
	// alice.
	account := func(name string, fields map[string]string) string {
		entries := map[string]string{
			"name": name, "type": "ssh", "host": target.Host, "port": strconv.Itoa(target.Port), "user": target.User,
			"secret": fmt.Sprintf("{file: %q}", target.KeyFile), "known_hosts": strconv.Quote(target.KnownHosts),
		}
		maps.Copy(entries, fields)
		keys := slices.Sorted(maps.Keys(entries))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + entries[k]
		}
		return "  - {" + strings.Join(parts, ", ") + "}\n"
	}
	accounts := account(accountKey, map[string]string{"secret_kind": "private_key", "env_allow": `["LC_*"]`}) +
		account(accountPassword, map[string]string{"secret": fmt.Sprintf("{file: %q}", passwordFile), "secret_kind": "password"}) +
		account(accountBadHost, map[string]string{"known_hosts": strconv.Quote(badPin)}) +
		account(accountForward, map[string]string{"allow_port_forwarding": "true"}) +
		account(accountNoGrant, nil)
	aliceGrants := []string{accountKey, accountPassword, accountBadHost, accountForward}
	for _, a := range opts.accounts {
		accounts += account(a.name, a.fields)
		aliceGrants = append(aliceGrants, a.name)
	}
	yaml := fmt.Sprintf(`
ssh:
  address: 127.0.0.1:0
  host_key_file: %[1]s/gateway_host_key
  %[2]s
spool:
  dir: %[1]s/spool
  key_file: %[1]s/spool.key
recording:
  preview_bytes: 2KiB
users:
  - name: alice
    ssh_authorized_keys: [%[3]q]
  - name: bob
    ssh_authorized_keys: [%[4]q]
accounts:
%[5]s
grants:
  - {user: alice, accounts: [%[6]s]}
  - {user: bob, accounts: [%[7]s]}
%[8]s
`, dir, opts.sshListener, alicePub, bobPub, accounts, strings.Join(aliceGrants, ", "), accountKey, opts.extra)
	cfg, err := config.Parse([]byte(yaml), dir)
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	g.cfg = cfg
	eo := sshgw.Options{Deps: engine.Deps{
		Config:   cfg,
		Recorder: g.rec,
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: logLevel(t)})),
	}}
	if opts.engine != nil {
		opts.engine(&eo)
	}
	g.engine, err = sshgw.New(eo)
	if err != nil {
		t.Fatalf("ssh.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.port = ln.Addr().(*net.TCPAddr).Port
	go func() { g.served <- g.engine.Serve(ln) }()
	g.knownHosts = filepath.Join(dir, "known_hosts")
	writeFile(t, g.knownHosts, fmt.Sprintf("[127.0.0.1]:%d %s", g.port, gossh.MarshalAuthorizedKey(g.engine.HostKey())))
	t.Cleanup(g.stop)
	return g
}

// stop shuts the engine down and checks Serve returned cleanly.
func (g *gateway) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.engine.Shutdown(ctx); err != nil {
		g.t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-g.served:
		if err != nil {
			g.t.Errorf("Serve returned %v after Shutdown", err)
		}
	case <-ctx.Done():
		g.t.Errorf("Serve did not return after Shutdown")
	}
}

// newKey writes an ed25519 key pair for name and returns the public key
// in authorized_keys form.
func (g *gateway) newKey(name string) string {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		g.t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, name)
	if err != nil {
		g.t.Fatal(err)
	}
	writeFile(g.t, filepath.Join(g.dir, name), string(pem.EncodeToMemory(block)))
	sshPub, _ := gossh.NewPublicKey(pub)
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sshPub)))
}

// sshArgs are the options every OpenSSH client gets: no user config, no
// agent, the gateway's host key verified strictly.
func (g *gateway) sshArgs(key string) []string {
	return []string{
		"-F", "/dev/null",
		"-i", key,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + g.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=10",
	}
}

// ssh runs the OpenSSH client against the gateway as key, logging in to
// account, and returns stdout, stderr and the exit code.
func (g *gateway) ssh(key, account string, args ...string) (string, string, int) {
	g.t.Helper()
	full := append(g.sshArgs(key), "-p", strconv.Itoa(g.port), account+"@127.0.0.1")
	return run(g.t, exec.Command("ssh", append(full, args...)...))
}

// scpArgs are sshArgs plus the port, for scp, sftp and rsync -e.
func (g *gateway) scpArgs(key string) []string {
	return append(g.sshArgs(key), "-P", strconv.Itoa(g.port))
}

func run(t testing.TB, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", cmd.Args[0], err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// waitEvents waits until the recorder holds events satisfying cond.
func (g *gateway) waitEvents(what string, cond func([]recordertest.Event) bool) []recordertest.Event {
	g.t.Helper()
	evs, ok := g.rec.WaitFor(20*time.Second, cond)
	if !ok {
		g.t.Fatalf("timed out waiting for %s; recorded:\n%s", what, dumpEvents(evs))
	}
	return evs
}

// waitSessionEnds waits for n session ends in total.
func (g *gateway) waitSessionEnds(n int) []recordertest.Event {
	g.t.Helper()
	return g.waitEvents(fmt.Sprintf("%d session end(s)", n), func(evs []recordertest.Event) bool {
		return len(ofKind(evs, "end")) >= n
	})
}

// settle waits until every session started has ended, so tests that count
// sessions see only their own.
func (g *gateway) settle() {
	g.t.Helper()
	g.waitEvents("all sessions to end", func(evs []recordertest.Event) bool {
		return len(ofKind(evs, "end")) == len(ofKind(evs, "start"))
	})
}

func ofKind(evs []recordertest.Event, kind string) []recordertest.Event {
	var out []recordertest.Event
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func dumpEvents(evs []recordertest.Event) string {
	var b strings.Builder
	for _, e := range evs {
		switch e.Kind {
		case "command":
			fmt.Fprintf(&b, "  command %s %q -> %q exit=%v\n", e.Command.Channel, e.Command.Text, e.Command.Output, deref(e.Command.ExitStatus))
		case "file":
			fmt.Fprintf(&b, "  file %+v\n", e.File)
		case "output":
			fmt.Fprintf(&b, "  output %d bytes\n", len(e.Output.Data))
		case "end":
			fmt.Fprintf(&b, "  end %s: %s\n", e.End.Reason, e.End.Message)
		case "auth_failure":
			fmt.Fprintf(&b, "  auth_failure %+v\n", e.Failure)
		default:
			fmt.Fprintf(&b, "  %s\n", e.Kind)
		}
	}
	return b.String()
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func logLevel(t testing.TB) slog.Level {
	if _, bench := t.(*testing.B); bench {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

// testWriter sends engine logs to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
