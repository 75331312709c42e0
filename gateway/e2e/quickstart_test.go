package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestQuickstartContract runs what `make run` runs (deploy/local/quickstart.sh
// with examples/quickstart/) and checks the README's promises from outside:
// the fixed ports, the exact psql command, a full-text hit in
// pamtrail-events* within 15 s, and the printed ssh command.
func TestQuickstartContract(t *testing.T) {
	esURL := testenv.Elasticsearch(t)
	for _, bin := range []string{"bin/pamtrail", "bin/otelcol-pamtrail"} {
		if _, err := os.Stat(filepath.Join(repoRoot, bin)); err != nil {
			t.Fatalf("%s missing: run make build first (make test does)", bin)
		}
	}
	cmd := exec.Command("deploy/local/quickstart.sh")
	cmd.Dir = repoRoot
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var output []string
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Error("quickstart did not stop within 30 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("quickstart output:\n%s", strings.Join(output, "\n"))
		}
	}()
	deadline := time.After(3 * time.Minute)
	sshCommand, mysqlCommand := "", ""
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("quickstart exited before it was running")
			}
			output = append(output, l)
			if strings.Contains(l, "mariadb -h ") {
				mysqlCommand = strings.TrimSpace(l)
			}
			if strings.Contains(l, "ssh -i ") {
				sshCommand = strings.TrimSpace(l)
			}
			if strings.Contains(l, "Collector log:") {
				break wait
			}
		case <-deadline:
			t.Fatal("quickstart did not report running within 3 minutes")
		}
	}
	go func() {
		for l := range lines {
			_ = l // keep draining so the script never blocks on its stdout
		}
	}()

	marker := "qs_" + randomHex(4)
	start := time.Now()
	out, err := exec.Command("psql", "postgres://alice:alice-demo-password@127.0.0.1:6432/demo-postgres",
		"-X", "-At", "-c", "select 1", "-c", "select '"+marker+"'").CombinedOutput()
	if err != nil || !strings.Contains(string(out), marker) {
		t.Fatalf("the README's psql command failed: %v\n%s", err, out)
	}
	client, err := review.NewClient(esURL)
	if err != nil {
		t.Fatal(err)
	}
	if !searchable(t, client, marker, 15*time.Second) {
		t.Fatalf("statement not found by full-text search of pamtrail-events* within 15 s")
	}
	t.Logf("statement searchable %.1fs after psql ran", time.Since(start).Seconds())

	// The printed mariadb command, with a marker statement instead of its
	// "select 1", lands in Elasticsearch as a mysql session's statement.
	if mysqlCommand == "" {
		t.Fatal("quickstart printed no mariadb command")
	}
	mysqlArgs := strings.Fields(strings.SplitN(mysqlCommand, " -e ", 2)[0])[1:]
	mysqlMarker := "qsmy_" + randomHex(4)
	start = time.Now()
	if out, err := exec.Command("mariadb", append(mysqlArgs, "-e", "select '"+mysqlMarker+"'")...).CombinedOutput(); err != nil || !strings.Contains(string(out), mysqlMarker) {
		t.Fatalf("the printed mariadb command failed: %v\n%s", err, out)
	}
	if !searchable(t, client, mysqlMarker, 15*time.Second) {
		t.Fatalf("mysql statement not found by full-text search of pamtrail-events* within 15 s")
	}
	t.Logf("mysql statement searchable %.1fs after mariadb ran", time.Since(start).Seconds())

	if sshCommand == "" {
		t.Fatal("quickstart printed no ssh command")
	}
	args := append(strings.Fields(sshCommand)[1:], "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "echo", "quickstart-ssh-ok")
	sshOut, err := exec.Command("ssh", args...).CombinedOutput()
	if err != nil || !strings.Contains(string(sshOut), "quickstart-ssh-ok") {
		t.Fatalf("the printed ssh command failed: %v\n%s", err, sshOut)
	}
}

// searchable polls a full-text search of the quickstart's events until a
// query event holding text shows up, or the deadline passes.
func searchable(t *testing.T, client *review.Client, text string, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		evs, _, err := client.Events(ctx, review.Filter{Text: text, GatewayID: "quickstart-gw"})
		cancel()
		if err == nil && len(evs) > 0 && evs[0].EventName == schema.EventDBQuery {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return false
}
