package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

func runKeygenT(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := runKeygen(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestKeygenCreateRotatePrune(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spool.keys")
	spoolDir := filepath.Join(dir, "spool")

	if code, _, stderr := runKeygenT("--out", path); code != 0 {
		t.Fatalf("create: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runKeygenT("--out", path); code == 0 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("create over an existing keyring: exit %d: %s", code, stderr)
	}
	first, err := keys.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// A segment sealed with the first key keeps it in use.
	sp, err := spool.Open(spoolDir, config.Default().Spool.Options(first, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Append([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runKeygenT("--prune-unused", "--spool", spoolDir, "--out", path); code == 0 || !strings.Contains(stderr, "running gateway") {
		t.Fatalf("prune while the spool is open: exit %d: %s", code, stderr)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if code, stdout, stderr := runKeygenT("--rotate", "--out", path); code != 0 || !strings.Contains(stdout, "current key") {
			t.Fatalf("rotate: exit %d: %s %s", code, stdout, stderr)
		}
	}
	code, stdout, stderr := runKeygenT("--prune-unused", "--spool", spoolDir, "--out", path)
	if code != 0 {
		t.Fatalf("prune: exit %d: %s", code, stderr)
	}
	r, err := keys.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ids := r.IDs()
	if len(ids) != 2 || ids[0] != first.Current().ID {
		t.Fatalf("after prune: %v (stdout %q); want the in-use first key and the current key", ids, stdout)
	}
	raw, _ := os.ReadFile(path)
	for _, out := range []string{stdout, stderr} {
		for _, line := range strings.Split(string(raw), "\n") {
			if k, ok := strings.CutPrefix(strings.TrimSpace(line), `"key": `); ok && strings.Contains(out, strings.Trim(k, `",`)) {
				t.Fatal("keygen printed key material")
			}
		}
	}
}

func TestKeygenUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--out FILE is required"},
		{[]string{"--out", "k", "--rotate", "--prune-unused", "--spool", "d"}, "separate steps"},
		{[]string{"--out", "k", "--prune-unused"}, "go together"},
		{[]string{"--out", "k", "--rotate", "--force"}, "--force only applies"},
		{[]string{"--out", "k", "extra"}, "unexpected arguments"},
		{[]string{"--rotate", "--out", "/nonexistent/dir/k"}, "no such file"},
	}
	for _, tt := range tests {
		code, _, stderr := runKeygenT(tt.args...)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("keygen %v: exit %d, stderr %q; want failure mentioning %q", tt.args, code, stderr, tt.want)
		}
	}
}

func TestKeygenSigning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signing.key")
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"--signing", "--out", path}, 0, "signing key"},
		{[]string{"--signing", "--out", path}, 1, "already exists"},
		{[]string{"--signing", "--rotate", "--out", path}, 0, "current signing key"},
		{[]string{"--signing", "--prune-unused", "--spool", "x", "--out", path}, 1, "spool keyring"},
	}
	for _, tt := range tests {
		code, stdout, stderr := runKeygenT(tt.args...)
		if code != tt.wantCode || !strings.Contains(stdout+stderr, tt.want) {
			t.Errorf("%v: exit %d, output %q %q; want %d and %q", tt.args, code, stdout, stderr, tt.wantCode, tt.want)
		}
	}
	pubs, err := keys.LoadPublic(keys.PublicPath(path))
	if err != nil || len(pubs) != 2 {
		t.Fatalf("public keys after a rotation: %v %v", pubs, err)
	}
}
