package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/healthz"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/porttest"
)

// startHealthGateway runs a gateway with one listener and an uploader aimed at
// a port nobody listens on, so every spooled record stays pending.
func startHealthGateway(t *testing.T, maxLag time.Duration) (*Gateway, string) {
	t.Helper()
	dir := t.TempDir()
	if err := testenv.Keyring(t, 1).Save(filepath.Join(dir, "spool.keys")); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Gateway.ID = "health-test-" + t.Name()
	cfg.Dir = dir
	cfg.SSH = &config.SSHListen{Address: "127.0.0.1:0"}
	cfg.Spool.Dir = filepath.Join(dir, "spool")
	cfg.Spool.KeyFile = filepath.Join(dir, "spool.keys")
	cfg.Upload.Endpoint = porttest.Addr(t)
	cfg.Upload.Insecure = true
	cfg.Upload.Interval = config.Duration(time.Hour) // only Shutdown uploads
	cfg.Upload.Timeout = config.Duration(200 * time.Millisecond)
	lag := config.Duration(maxLag)
	metricsAddr := porttest.Addr(t)
	cfg.Metrics = &config.MetricsEndpoint{Address: metricsAddr, MaxUploadLag: &lag}
	factories := map[string]EngineFactory{"ssh": func(engine.Deps) (engine.Engine, error) {
		// A lifecycle that closes what it accepts: enough for the listeners check.
		return engine.NewLifecycle(engine.Options{Protocol: "ssh", Logger: slog.New(slog.DiscardHandler), Handle: func(net.Conn) {}}), nil
	}}
	g, err := Start(context.Background(), cfg, "", slog.New(slog.NewTextHandler(io.Discard, nil)), factories)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		g.Shutdown(ctx)
	})
	return g, "http://" + metricsAddr + "/healthz"
}

func getHealth(t *testing.T, url string) (int, healthz.Report) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r healthz.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("/healthz body: %v", err)
	}
	return resp.StatusCode, r
}

// TestHealthzReportsWhatIsTrue breaks one condition at a time and expects
// /healthz to turn 503 naming exactly that check.
func TestHealthzReportsWhatIsTrue(t *testing.T) {
	tests := []struct {
		name   string
		maxLag time.Duration
		breaks func(t *testing.T, g *Gateway)
		failed string
	}{
		{name: "ready", maxLag: time.Minute},
		{name: "upload lag beyond the bound", maxLag: 20 * time.Millisecond, failed: "upload_lag",
			breaks: func(t *testing.T, g *Gateway) {
				if _, err := g.spool.Append([]byte("pending record")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "no bound: lag never fails", maxLag: 0,
			breaks: func(t *testing.T, g *Gateway) {
				if _, err := g.spool.Append([]byte("pending record")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "listener stopped", maxLag: time.Minute, failed: "listeners",
			breaks: func(t *testing.T, g *Gateway) { _ = g.engines[0].ln.Close() }},
		{name: "spool directory gone", maxLag: time.Minute, failed: "spool_writable",
			breaks: func(t *testing.T, g *Gateway) {
				if err := os.RemoveAll(g.cfg.Spool.Dir); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, url := startHealthGateway(t, tc.maxLag)
			if code, r := getHealth(t, url); code != http.StatusOK || !r.Ready || len(r.Checks) != 4 {
				t.Fatalf("before breaking anything: %d %+v", code, r)
			}
			if tc.breaks != nil {
				tc.breaks(t, g)
			}
			wantCode := http.StatusOK
			if tc.failed != "" {
				wantCode = http.StatusServiceUnavailable
			}
			testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() (bool, string) {
				code, r := getHealth(t, url)
				if code != wantCode || r.Ready != (tc.failed == "") {
					return false, fmt.Sprintf("status %d, report %+v", code, r)
				}
				for name, c := range r.Checks {
					if c.OK == (name == tc.failed) || c.Detail == "" {
						return false, fmt.Sprintf("check %s = %+v (want failed: %q)", name, c, tc.failed)
					}
				}
				return true, ""
			})
		})
	}
}

// TestProbe: the client `pamtrail health` and the images use exits non-zero
// on a 503 and carries the failing checks in its error.
func TestProbe(t *testing.T) {
	g, url := startHealthGateway(t, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := healthz.Probe(ctx, url); err != nil {
		t.Fatalf("ready gateway: %v", err)
	}
	_ = g.engines[0].ln.Close()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() (bool, string) {
		err := healthz.Probe(ctx, url)
		return err != nil && strings.Contains(err.Error(), "503") && strings.Contains(err.Error(), `"listeners"`), fmt.Sprint(err)
	})
}
