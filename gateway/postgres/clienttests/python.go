package clienttests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// clientsDir is where install.sh put a language's client libraries.
func clientsDir(t testing.TB, lang string) string {
	home := os.Getenv("PAMTRAIL_HOME")
	if home == "" {
		home = filepath.Join(testenv.RepoRoot(t), ".pamtrail")
	}
	return filepath.Join(home, "clients", lang)
}

// RunPython runs one of the psycopg scripts under python/ with the libpq
// DSN of host:port in PAMTRAIL_WORKLOAD_DSN and returns its standard
// output. Install(t, "python") must have run.
func RunPython(t testing.TB, script string, host string, port int, user, password, db string, args ...string) string {
	t.Helper()
	cmd := exec.Command("python3", append([]string{filepath.Join(dir(t), "python", script)}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(clientsDir(t, "python"), "lib"),
		"PAMTRAIL_WORKLOAD_DSN=host="+host+" port="+strconv.Itoa(port)+" user="+user+" password="+password+
			" dbname="+db+" sslmode=disable connect_timeout=10")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}
