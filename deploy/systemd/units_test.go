// Package systemd holds the tests of the hardened units beside it.
package systemd

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var units = []struct{ name, binary string }{
	{"pamtrail-gateway.service", "pamtrail"},
	{"otelcol-pamtrail.service", "otelcol-pamtrail"},
}

// verifyRoot lays out a root directory for systemd-analyze --root: the units,
// the system's own units (sysinit.target and friends) and the binaries at
// the paths ExecStart names, so verify checks them for real.
func verifyRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"etc/systemd/system", "usr/local/bin", "usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copying the system units: %v: %s", err, out)
	}
	for _, u := range units {
		install(t, u.name, filepath.Join(root, "etc/systemd/system", u.name))
		bin := filepath.Join("..", "..", "bin", u.binary)
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%v: run make build first", err)
		}
		install(t, bin, filepath.Join(root, "usr/local/bin", u.binary))
	}
	return root
}

// install hard-links src to dst, or copies it across filesystems.
func install(t *testing.T, src, dst string) {
	t.Helper()
	if os.Link(src, dst) == nil {
		return
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUnitsVerify: systemd-analyze verify accepts both units without a
// single warning (an unknown or misspelt key is only a warning to systemd).
func TestUnitsVerify(t *testing.T) {
	root := verifyRoot(t)
	for _, u := range units {
		cmd := exec.Command("systemd-analyze", "verify", "--root="+root, u.name)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil || out.Len() > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u.name, err, out.String())
		}
	}
}

// TestUnitsHardened: the settings the project promises are there, and
// systemd-analyze security rates each unit at most 2.0 ("OK").
func TestUnitsHardened(t *testing.T) {
	required := []string{
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"CapabilityBoundingSet=\n", "DynamicUser=yes", "TimeoutStopSec=", "UMask=0077",
	}
	for _, u := range units {
		b, err := os.ReadFile(u.name)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range required {
			if !strings.Contains(string(b), "\n"+want) {
				t.Errorf("%s lacks %q", u.name, strings.TrimSpace(want))
			}
		}
		if !regexp.MustCompile(`\nStateDirectory=\S+`).Match(b) {
			t.Errorf("%s has no StateDirectory", u.name)
		}
		out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--threshold=20", u.name).CombinedOutput()
		score := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+ \S+)`).FindSubmatch(out)
		if err != nil || score == nil {
			t.Errorf("systemd-analyze security %s: %v\n%s", u.name, err, out)
			continue
		}
		t.Logf("systemd-analyze security %s: %s", u.name, score[1])
	}
}
