package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/porttest"
)

// BenchmarkFairness: 8 gateway processes, each under the same pgbench load,
// upload to one collector (10 s cadence). No gateway may starve: each one's
// largest oldest-unacknowledged age over the run stays within 2x of every
// other's (issue #10). It prints each gateway's peak and the spread.
func BenchmarkFairness(b *testing.B) {
	const gateways, perGatewayRate = 8, 250.0
	const window = 60 * time.Second
	for range b.N {
		s := newStack(b, stackOptions{uploadInterval: "10s"})
		s.startCollector()
		stacks := []*stack{s}
		for i := 1; i < gateways; i++ {
			stacks = append(stacks, s.extraGateway(b, i))
		}
		for _, g := range stacks {
			g.startGateway()
		}
		peaks := make([]atomic.Int64, gateways)
		var stops []func()
		for i, g := range stacks {
			stops = append(stops, g.sampleOldestUnacked(b, &peaks[i]))
		}
		var wg sync.WaitGroup
		for _, g := range stacks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.runPgbench(b, pgbenchLoad{clients: 1, duration: window, rate: perGatewayRate})
			}()
		}
		wg.Wait()
		for _, stop := range stops {
			stop()
		}
		lo, hi := peaks[0].Load(), peaks[0].Load()
		var each []string
		for i := range peaks {
			p := peaks[i].Load()
			lo, hi = min(lo, p), max(hi, p)
			each = append(each, fmt.Sprintf("%.1f", float64(p)/1000))
		}
		spread := float64(hi) / float64(max(lo, 1))
		fmt.Printf("\nfairness: %d gateways x %.0f statements/s, one collector, %v: oldest-unacked peaks [%s] s, max/min %.2f (goal <= 2)\n\n",
			gateways, perGatewayRate, window, strings.Join(each, " "), spread)
		b.ReportMetric(spread, "oldest-unacked-max/min")
		b.ReportMetric(float64(hi)/1000, "worst-oldest-unacked-s")
	}
}

// extraGateway is another gateway process of this stack's collector: the
// same configuration with its own id, ports and spool.
func (s *stack) extraGateway(t testing.TB, n int) *stack {
	t.Helper()
	g := *s
	g.dir = filepath.Join(s.dir, fmt.Sprintf("gateway-%d", n))
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"spool.keys", "demo.password"} {
		raw, err := os.ReadFile(filepath.Join(s.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(g.dir, f), string(raw))
	}
	g.gatewayID = fmt.Sprintf("%s-%d", s.gatewayID, n)
	g.gwAddr = porttest.Addr(t)
	g.metricsAddr = porttest.Addr(t)
	g.spoolDir = filepath.Join(g.dir, "spool")
	raw, err := os.ReadFile(s.gwConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("id: "+s.gatewayID, "id: "+g.gatewayID, s.gwAddr, g.gwAddr, s.metricsAddr, g.metricsAddr).Replace(string(raw))
	g.gwConfig = filepath.Join(g.dir, "gateway.yaml")
	writeFile(t, g.gwConfig, cfg)
	g.gateway = newProc(t, g.gatewayID, nil, pamtrailBin, "gateway", "--config", g.gwConfig)
	return &g
}
