// Package compose holds the end-to-end test of docker-compose.yml: the same
// file a user starts, with the third-party images replaced by the local
// stand-ins of standins/ through the variables the file exposes. `make
// test-deploy` builds the images first (make images, standins/build.sh).
package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/porttest"
)

const (
	docker        = "/usr/bin/docker"
	dockerCompose = "/usr/bin/docker-compose"
	alicePassword = "alice-demo-password" // demo only; gateway.yaml holds its verifier
)

// version is the one version of the images: builder-config.yaml's.
func version(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../builder-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^  version: *(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("builder-config.yaml has no dist version")
	}
	return string(m[1])
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func requireImage(t *testing.T, ref string) {
	t.Helper()
	if err := exec.Command(docker, "image", "inspect", ref).Run(); err != nil {
		t.Fatalf("image %s is missing: run make test-deploy (it builds the images and the stand-ins)", ref)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, msg)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestImages: the images run their binaries' version as a non-root user and
// the compose file's default tags are this version.
func TestImages(t *testing.T) {
	v := version(t)
	compose, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(compose), "${PAMTRAIL_VERSION:-"+v+"}") {
		t.Errorf("docker-compose.yml's default image tag is not %s (builder-config.yaml)", v)
	}
	for _, tc := range []struct{ image, versionArgs, want string }{
		{"pamtrail:" + v, "version", "pamtrail " + v},
		{"otelcol-pamtrail:" + v, "--version", "otelcol-pamtrail version " + v},
	} {
		requireImage(t, tc.image)
		if user := strings.TrimSpace(run(t, nil, docker, "image", "inspect", "-f", "{{.Config.User}}", tc.image)); user == "" || user == "0" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0:") {
			t.Errorf("%s runs as %q, want a non-root numeric user", tc.image, user)
		}
		args := []string{"run", "--rm", "--read-only", "--network", "none", tc.image, tc.versionArgs}
		if out := run(t, nil, docker, args...); !strings.Contains(out, tc.want) {
			t.Errorf("docker run %s %s = %q, want %q", tc.image, tc.versionArgs, out, tc.want)
		}
	}
}

// TestComposeStack brings the stack up, runs psql and ssh through the
// gateway container and finds both sessions' events in Elasticsearch.
func TestComposeStack(t *testing.T) {
	v := version(t)
	for _, img := range []string{"pamtrail:" + v, "otelcol-pamtrail:" + v} {
		requireImage(t, img)
	}
	standins := standinImages(t)
	secrets := t.TempDir()
	project := fmt.Sprintf("pamtrailtest%d", time.Now().UnixNano()%1e9)
	esPort, pgPort, sshPort, metricsPort := porttest.Free(t), porttest.Free(t), porttest.Free(t), porttest.Free(t)
	env := append(standins,
		"PAMTRAIL_VERSION="+v,
		"PAMTRAIL_COMPOSE_SECRETS="+secrets,
		fmt.Sprintf("PAMTRAIL_COMPOSE_ES_PORT=%d", esPort),
		fmt.Sprintf("PAMTRAIL_COMPOSE_PG_PORT=%d", pgPort),
		fmt.Sprintf("PAMTRAIL_COMPOSE_SSH_PORT=%d", sshPort),
		fmt.Sprintf("PAMTRAIL_COMPOSE_METRICS_PORT=%d", metricsPort),
	)
	run(t, env, "./secrets.sh", secrets)
	compose := func(args ...string) string {
		return run(t, env, dockerCompose, append([]string{"-p", project, "-f", "docker-compose.yml"}, args...)...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("compose logs:\n%s", tail(compose("logs", "--no-color", "--tail=40"), 12000))
		}
		compose("down", "-v", "--remove-orphans")
	})
	// up returns once every depends_on condition holds: Elasticsearch
	// healthy, setup completed, collector healthy, gateway started.
	compose("up", "-d")
	eventually(t, 3*time.Minute, func() (bool, string) {
		status := strings.TrimSpace(run(t, nil, docker, "inspect", "-f", "{{.State.Health.Status}}", project+"_gateway_1"))
		return status == "healthy", "gateway container health: " + status
	})

	marker := fmt.Sprintf("compose-probe-%d", time.Now().UnixNano())
	psql := exec.Command("psql", fmt.Sprintf("host=127.0.0.1 port=%d user=alice dbname=demo-postgres sslmode=disable connect_timeout=10", pgPort),
		"-X", "-At", "-c", fmt.Sprintf("select '%s-pg'", marker))
	psql.Env = append(os.Environ(), "PGPASSWORD="+alicePassword)
	if out, err := psql.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != marker+"-pg" {
		t.Fatalf("psql through the gateway container: %v: %s", err, out)
	}
	ssh := exec.Command("ssh", "-i", filepath.Join(secrets, "alice"), "-p", fmt.Sprint(sshPort),
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
		"demo-ssh@127.0.0.1", "echo "+marker+"-ssh")
	if out, err := ssh.CombinedOutput(); err != nil || !strings.Contains(string(out), marker+"-ssh") {
		t.Fatalf("ssh through the gateway container: %v: %s", err, out)
	}

	esURL := fmt.Sprintf("http://127.0.0.1:%d", esPort)
	for _, want := range []string{marker + "-pg", marker + "-ssh"} {
		eventually(t, 90*time.Second, func() (bool, string) {
			n, err := countEvents(esURL, want)
			return err == nil && n > 0, fmt.Sprintf("events with %q in Elasticsearch: %d (%v)", want, n, err)
		})
	}
}

// standinImages are the stand-ins' compose variables, as standins/build.sh
// printed them (make test-deploy saves them in $PAMTRAIL_HOME).
func standinImages(t *testing.T) []string {
	t.Helper()
	path := os.Getenv("PAMTRAIL_STANDINS_ENV")
	if path == "" {
		t.Fatal("PAMTRAIL_STANDINS_ENV is not set: run make test-deploy (it builds the stand-ins and sets it)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("stand-in images: %v (run make test-deploy)", err)
	}
	var env []string
	for _, line := range strings.Fields(string(b)) {
		name, ref, ok := strings.Cut(line, "=")
		if !ok || !strings.HasSuffix(name, "_IMAGE") {
			t.Fatalf("%s: unexpected line %q", path, line)
		}
		requireImage(t, ref)
		env = append(env, line)
	}
	if len(env) != 3 {
		t.Fatalf("%s names %d stand-ins, want Elasticsearch, PostgreSQL and sshd", path, len(env))
	}
	return env
}

// countEvents counts pamtrail-events documents whose body (the statement or
// command) contains text.
func countEvents(esURL, text string) (int, error) {
	q, _ := json.Marshal(map[string]any{"query": map[string]any{"match_phrase": map[string]any{"body.text": text}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, esURL+"/pamtrail-events*/_count", bytes.NewReader(q))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Count int `json:"count"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	return r.Count, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
