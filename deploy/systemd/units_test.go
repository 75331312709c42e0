// Package systemd holds the tests of the hardened units beside it.
package systemd

import (
	"bytes"
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

// verifyRoot installs both services with install.sh into a fresh root
// (DESTDIR) beside a copy of the system's own units (sysinit.target and
// friends), so systemd-analyze --root checks the units, the binaries at the
// paths ExecStart names, and what the installer put under /etc.
func verifyRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copying the system units: %v: %s", err, out)
	}
	install := exec.Command("./install.sh")
	install.Env = append(os.Environ(), "DESTDIR="+root)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	for _, path := range []string{"etc/pamtrail/spool.keys", "etc/otelcol-pamtrail/queue.keys", "etc/pamtrail/gateway.yaml"} {
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s after install.sh: %v, mode %v; want a 0600 file", path, err, fi)
		}
	}
	return root
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
	// The installed configs load with what the units give the processes:
	// the credentials directory and the environment.
	for _, c := range []struct {
		bin, config string
		env         []string
	}{
		{"pamtrail", "etc/pamtrail/gateway.yaml", []string{"CREDENTIALS_DIRECTORY=" + filepath.Join(root, "etc/pamtrail")}},
		{"otelcol-pamtrail", "etc/otelcol-pamtrail/config.yaml", []string{
			"PAMTRAIL_QUEUE_KEY_FILE=" + filepath.Join(root, "etc/otelcol-pamtrail/queue.keys"), "PAMTRAIL_ES_URL=http://127.0.0.1:9200"}},
	} {
		cmd := exec.Command(filepath.Join(root, "usr/local/bin", c.bin), "validate", "--config", filepath.Join(root, c.config))
		cmd.Env = append(os.Environ(), c.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s validate %s: %v\n%s", c.bin, c.config, err, out)
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
