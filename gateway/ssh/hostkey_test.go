package ssh

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

func TestHostKeyCreatedOnceWithPrivateModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new-dir", "host_key")
	first, err := loadOrCreateHostKey(path)
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
	}
	again, err := loadOrCreateHostKey(path)
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	if !bytes.Equal(first.PublicKey().Marshal(), again.PublicKey().Marshal()) {
		t.Fatal("the host key changed across restarts")
	}
	if first.PublicKey().Type() != gossh.KeyAlgoED25519 {
		t.Errorf("host key type %s, want ed25519", first.PublicKey().Type())
	}
}

func TestHostKeyRefusals(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"readable by others", "", 0o644, "chmod 600"},
		{"not a key", "garbage", 0o600, "ssh.host_key_file"},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
		content := tt.content
		if content == "" {
			if _, err := loadOrCreateHostKey(path); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(path, []byte(content), tt.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tt.mode); err != nil {
			t.Fatal(err)
		}
		if _, err := loadOrCreateHostKey(path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
	if _, err := loadOrCreateHostKey(""); err == nil {
		t.Error("empty path accepted")
	}
}

func newTestKey(t *testing.T) (gossh.Signer, gossh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.PublicKey()
}

func knownHostsLine(marker string, key gossh.PublicKey) string {
	line := "[127.0.0.1]:22 " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(key)))
	if marker != "" {
		line = "@" + marker + " " + line
	}
	return line
}

func TestHostKeyPin(t *testing.T) {
	_, pinned := newTestKey(t)
	_, other := newTestKey(t)
	caSigner, caKey := newTestKey(t)
	_, hostKey := newTestKey(t)
	hostCert := func(principal string, signer gossh.Signer) gossh.PublicKey {
		c := &gossh.Certificate{Key: hostKey, CertType: gossh.HostCert, ValidPrincipals: []string{principal}, ValidBefore: gossh.CertTimeInfinity}
		if err := c.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		return c
	}
	otherCA, _ := newTestKey(t)
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}

	tests := []struct {
		name     string
		pin      string
		presents gossh.PublicKey
		ok       bool
	}{
		{"pinned key", knownHostsLine("", pinned), pinned, true},
		{"another key", knownHostsLine("", pinned), other, false},
		{"one of several pins", knownHostsLine("", other) + "\n" + knownHostsLine("", pinned), pinned, true},
		{"revoked key", knownHostsLine("", pinned) + "\n" + knownHostsLine("revoked", pinned), pinned, false},
		{"certificate from the pinned CA", knownHostsLine("cert-authority", caKey), hostCert("127.0.0.1", caSigner), true},
		{"certificate for another host", knownHostsLine("cert-authority", caKey), hostCert("elsewhere", caSigner), false},
		{"certificate from another CA", knownHostsLine("cert-authority", caKey), hostCert("127.0.0.1", otherCA), false},
		{"plain key when only a CA is pinned", knownHostsLine("cert-authority", caKey), pinned, false},
	}
	for _, tt := range tests {
		pin, err := parseHostKeyPin(tt.pin)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		err = pin.callback("acct")("127.0.0.1:22", addr, tt.presents)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
		var mismatch *HostKeyMismatchError
		if err != nil && !errors.As(err, &mismatch) {
			t.Errorf("%s: error %T is not a HostKeyMismatchError", tt.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), gossh.FingerprintSHA256(tt.presents)) {
			t.Errorf("%s: error does not name the presented key: %v", tt.name, err)
		}
	}
}

func TestHostKeyPinParsing(t *testing.T) {
	for _, bad := range []string{"", "# only a comment\n", "not a known_hosts line", "@revoked " + knownHostsLine("", mustKey(t))} {
		if _, err := parseHostKeyPin(bad); err == nil {
			t.Errorf("parseHostKeyPin(%q) accepted", bad)
		}
	}
}

func mustKey(t *testing.T) gossh.PublicKey {
	_, k := newTestKey(t)
	return k
}

func TestHostKeyAlgorithms(t *testing.T) {
	rsaLine := "[h]:22 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDDHr/jh2Jy4yALcK4JyWbVkPRaWmhck3IgCoeOO3z1e2dBowLh64QAM+Qb72pxekALga2oi4GvT+TlWNhzPH4V4TcL4eA0ag8Dx+Ql0lRZtGS+6X+9qn1s0tclHL7YSqG4BnNNLcafR/fR8C8cMyO6Q9C0dkxuKmkpAHRPyl9MkQ=="
	pin, err := parseHostKeyPin(rsaLine + "\n" + knownHostsLine("", mustKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA, gossh.KeyAlgoED25519}
	if got := pin.algorithms(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("algorithms = %v, want %v", got, want)
	}
	ca, _ := parseHostKeyPin(knownHostsLine("cert-authority", mustKey(t)))
	if got := ca.algorithms(); got != nil {
		t.Errorf("with a CA pinned, algorithms = %v, want the default (nil)", got)
	}
}
