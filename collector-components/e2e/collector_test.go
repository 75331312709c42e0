package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/porttest"
)

// collector is one otelcol-pamtrail process with its own ports and queue
// directory, so tests are independent of each other and of `make run`.
type collector struct {
	OTLPAddr    string
	HealthAddr  string
	MetricsAddr string

	cmd    *exec.Cmd
	output *syncBuffer
	exited chan struct{}
}

// startCollector runs the quickstart configuration with test overrides and
// waits until its health check answers. The process is stopped at test end.
func startCollector(t *testing.T, esURL string, overrides ...string) *collector {
	t.Helper()
	return startCollectorIn(t, t.TempDir(), esURL, overrides...)
}

// startCollectorIn is startCollector with a given PAMTRAIL_HOME, which holds
// the persistent queue: a collector restarted in the same home resumes it.
func startCollectorIn(t *testing.T, home, esURL string, overrides ...string) *collector {
	t.Helper()
	c := &collector{
		OTLPAddr:    porttest.Addr(t),
		HealthAddr:  porttest.Addr(t),
		MetricsAddr: porttest.Addr(t),
		output:      &syncBuffer{},
		exited:      make(chan struct{}),
	}
	// The quickstart seals the queue with encrypted_storage; make run
	// creates its keyring, so the test does too (once per home).
	keyring := filepath.Join(home, "collector", "queue.keys")
	if !keys.Exists(keyring) {
		if err := os.MkdirAll(filepath.Dir(keyring), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.CreateFile(keyring, false); err != nil {
			t.Fatalf("creating the queue keyring: %v", err)
		}
	}
	metricsHost, metricsPort, _ := net.SplitHostPort(c.MetricsAddr)
	args := []string{
		"--config", filepath.Join(repoRoot, "examples", "quickstart", "collector.yaml"),
		"--set=receivers::otlp::protocols::grpc::endpoint=" + c.OTLPAddr,
		"--set=extensions::health_check::endpoint=" + c.HealthAddr,
		fmt.Sprintf("--config=yaml:service::telemetry::metrics::readers: [{pull: {exporter: {prometheus: {host: %q, port: %s}}}}]",
			metricsHost, metricsPort),
	}
	for _, o := range overrides {
		args = append(args, "--set="+o)
	}
	c.cmd = exec.Command(collectorBin, args...)
	c.cmd.Env = append(os.Environ(),
		"PAMTRAIL_ES_URL="+esURL,
		"PAMTRAIL_HOME="+home,
	)
	c.cmd.Stdout, c.cmd.Stderr = c.output, c.output
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", collectorBin, err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() { c.stop(t) })

	waitFor(t, 60*time.Second, func() (bool, string) {
		select {
		case <-c.exited:
			t.Fatalf("collector exited during start-up:\n%s", c.output.String())
		default:
		}
		resp, err := http.Get("http://" + c.HealthAddr + "/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, "health check: " + resp.Status
	})
	return c
}

// stop ends the collector with SIGTERM (its normal shutdown path flushes the
// session processor) and kills it if it does not exit in time.
func (c *collector) stop(t *testing.T) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		t.Errorf("collector did not stop within 30s of SIGTERM; killed. Output:\n%s", c.output.String())
	}
	if t.Failed() {
		t.Logf("collector output:\n%s", c.output.String())
	}
}

// crash kills the collector with SIGKILL, as a power loss or the OOM killer
// would: no shutdown code runs.
func (c *collector) crash() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// metrics returns the collector's Prometheus exposition.
func (c *collector) metrics() (string, error) {
	resp, err := http.Get("http://" + c.MetricsAddr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	return buf.String(), err
}

// waitFor polls cond until it holds or the deadline passes; the message of
// the last attempt explains a failure.
func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", timeout, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// syncBuffer collects process output written from the exec goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
