package ssh

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

func authorizedKey(k gossh.PublicKey) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
}

func TestIdentify(t *testing.T) {
	_, alice := newTestKey(t)
	_, bob := newTestKey(t)
	_, stranger := newTestKey(t)
	caSigner, _ := newTestKey(t)
	cfg := &config.Config{Users: []config.User{
		{Name: "alice", SSHAuthorizedKeys: []string{authorizedKey(alice)}},
		{Name: "bob", SSHAuthorizedKeys: []string{authorizedKey(bob)}},
	}}
	keys, err := newUserKeys(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cert := &gossh.Certificate{Key: stranger, CertType: gossh.UserCert, ValidPrincipals: []string{"alice"}, ValidBefore: gossh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, caSigner); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		key      gossh.PublicKey
		wantUser string
		wantErr  string
	}{
		{"alice's key", alice, "alice", ""},
		{"bob's key", bob, "bob", ""},
		{"unknown key", stranger, "", errUnknownKey.Error()},
		{"certificate without a CA configured", cert, "", "no ssh.user_ca_file"},
	}
	for _, tt := range tests {
		id, _, err := keys.identify(tt.key)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || id.user != tt.wantUser || id.method != authMethodPublicKey {
			t.Errorf("%s: identity %+v, err %v; want user %s", tt.name, id, err, tt.wantUser)
		}
	}
}

func TestUserKeysConfigErrors(t *testing.T) {
	_, k := newTestKey(t)
	shared := &config.Config{Users: []config.User{
		{Name: "alice", SSHAuthorizedKeys: []string{authorizedKey(k)}},
		{Name: "bob", SSHAuthorizedKeys: []string{authorizedKey(k)}},
	}}
	if _, err := newUserKeys(shared); err == nil || !strings.Contains(err.Error(), `also listed for user "alice"`) {
		t.Errorf("a key shared by two users: err = %v", err)
	}
	dir := t.TempDir()
	emptyCA := filepath.Join(dir, "ca.pub")
	if err := writeTestFile(emptyCA, "# nothing\n"); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"missing CA file": filepath.Join(dir, "nope"), "CA file without keys": emptyCA} {
		cfg := &config.Config{SSH: &config.SSHListen{UserCAFile: path}}
		if _, err := newUserKeys(cfg); err == nil || !strings.Contains(err.Error(), "ssh.user_ca_file") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestNewRequiresOptions(t *testing.T) {
	hostKey := filepath.Join(t.TempDir(), "k")
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no config", Options{Deps: engine.Deps{Recorder: recordertest.New()}}, "Options.Config"},
		{"no ssh section", Options{Deps: engine.Deps{Config: &config.Config{}, Recorder: recordertest.New()}}, "no ssh listener"},
		{"no recorder", Options{Deps: engine.Deps{Config: &config.Config{SSH: &config.SSHListen{HostKeyFile: hostKey}}}}, "Options.Recorder"},
	}
	for _, tt := range tests {
		if _, err := New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	e, err := New(Options{Deps: engine.Deps{Config: &config.Config{SSH: &config.SSHListen{HostKeyFile: hostKey}}, Recorder: recordertest.New()}})
	if err != nil {
		t.Fatal(err)
	}
	// Shutdown before Serve, and twice, is fine.
	for range 2 {
		if err := e.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if e.Protocol() != "ssh" {
		t.Errorf("Protocol() = %q", e.Protocol())
	}
}

func TestWireParsers(t *testing.T) {
	pty := gossh.Marshal(ptyRequest{Term: "xterm", Cols: 120, Rows: 40})
	if p, err := parsePtyRequest(pty); err != nil || p.Cols != 120 || p.Rows != 40 || p.Term != "xterm" {
		t.Errorf("pty-req: %+v, %v", p, err)
	}
	if _, err := parsePtyRequest(pty[:5]); err == nil {
		t.Error("truncated pty-req accepted")
	}
	if cols, rows, ok := parseWindowChange(gossh.Marshal(struct{ A, B, C, D uint32 }{80, 24, 0, 0})); !ok || cols != 80 || rows != 24 {
		t.Errorf("window-change: %d %d %v", cols, rows, ok)
	}
	if _, _, ok := parseWindowChange([]byte{1, 2}); ok {
		t.Error("truncated window-change accepted")
	}
	if name, ok := parseEnvName(gossh.Marshal(struct{ N, V string }{"LANG", "C"})); !ok || name != "LANG" {
		t.Errorf("env: %q %v", name, ok)
	}
	exit := gossh.Marshal(struct {
		Signal string
		Core   bool
		Msg    string
		Lang   string
	}{"KILL", false, "", ""})
	if sig, ok := parseString(exit); !ok || sig != "KILL" {
		t.Errorf("exit-signal: %q %v", sig, ok)
	}
	if _, ok := parseString([]byte{0, 0, 0, 9, 'x'}); ok {
		t.Error("string longer than its payload accepted")
	}
	if n, ok := parseUint32([]byte{0, 0, 0, 3}); !ok || n != 3 {
		t.Errorf("exit-status: %d %v", n, ok)
	}
}

func TestHeadBufferAndUTF8(t *testing.T) {
	h := headBuffer{max: 5}
	h.write([]byte("abc"))
	h.write([]byte("defg"))
	if h.text() != "abcde" || !h.truncated {
		t.Errorf("head buffer kept %q truncated=%v", h.text(), h.truncated)
	}
	bad := headBuffer{max: 10}
	bad.write([]byte{'a', 0xff, 'b'})
	if bad.text() != "a\uFFFDb" {
		t.Errorf("invalid UTF-8 kept as %q", bad.text())
	}
	for _, tt := range []struct {
		in   []byte
		want int
	}{
		{[]byte("abc"), 0},
		{[]byte("a\xe6\x97"), 2},     // 日 cut after 2 of 3 bytes
		{[]byte("a\xe6\x97\xa5"), 0}, // complete
		{[]byte{0xff}, 0},            // invalid, not incomplete
		{[]byte("\xf0\x9f\x98"), 3},  // an emoji cut before its last byte
	} {
		if got := incompleteUTF8Tail(tt.in); got != tt.want {
			t.Errorf("incompleteUTF8Tail(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func writeTestFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
