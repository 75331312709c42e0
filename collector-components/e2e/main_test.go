// Package e2e runs the real otelcol-pamtrail binary with the quickstart
// configuration against the real Elasticsearch that deploy/local/services.sh
// starts: OTLP in, documents out.
package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

var (
	repoRoot     string
	collectorBin string
)

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	collectorBin = filepath.Join(repoRoot, "bin", "otelcol-pamtrail")
	// The same rule `make build` uses: a no-op when the binary is newer than
	// every source, an ocb build (a minute or more) otherwise, so the test
	// never runs a stale collector.
	build := exec.Command("make", "--no-print-directory", "bin/otelcol-pamtrail")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building bin/otelcol-pamtrail with `make bin/otelcol-pamtrail` failed: %v\n", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

// elasticsearchURL returns the Elasticsearch started by deploy/local/services.sh:
// PAMTRAIL_ES_URL, else the value recorded in .pamtrail/services.env.
// (gateway/internal/testenv, which the gateway's tests use, is internal to
// gateway/ and so not importable from here.)
func elasticsearchURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("PAMTRAIL_ES_URL"); u != "" {
		return u
	}
	home := os.Getenv("PAMTRAIL_HOME")
	if home == "" {
		home = filepath.Join(repoRoot, ".pamtrail")
	}
	envFile := filepath.Join(home, "services.env")
	f, err := os.Open(envFile)
	if err != nil {
		t.Fatalf("Elasticsearch is not configured: PAMTRAIL_ES_URL is unset and %v; start it with `deploy/local/services.sh up elasticsearch`", err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(scanner.Text()), "export ")
		if v, ok := strings.CutPrefix(line, "PAMTRAIL_ES_URL="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	t.Fatalf("Elasticsearch is not configured: PAMTRAIL_ES_URL is unset and %s has no PAMTRAIL_ES_URL; run `deploy/local/services.sh up elasticsearch`", envFile)
	return ""
}
