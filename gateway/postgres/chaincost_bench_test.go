package postgres

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/internal/benchrec"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/server"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

// chainCostVariantEnv selects, in a child process of
// BenchmarkPgbenchChainCost, which gateway TestChainCostGateway serves.
const chainCostVariantEnv = "PAMTRAIL_CHAINCOST_VARIANT"

// chainCostVariants are the two gateways BenchmarkPgbenchChainCost
// compares: one that chains and signs as a gateway with a signing key does
// (a checkpoint per live session every upload.interval and at each
// session's end), one with the chain switched off
// (recorder.Options.DisableChainForBenchmark).
var chainCostVariants = []chainCostVariant{
	{"chained+signed", func(o *recorder.Options, signer keys.SigningKey) { o.Signer = signer }},
	{"unchained", func(o *recorder.Options, _ keys.SigningKey) { o.DisableChainForBenchmark = true }},
}

type chainCostVariant struct {
	name   string
	adjust func(o *recorder.Options, signer keys.SigningKey)
}

// BenchmarkPgbenchChainCost measures what tamper evidence costs the
// gateway: pgbench -S (simple protocol, 8 clients each) through the two
// chainCostVariants at the same time, each gateway a process of its own
// (this test binary, running TestChainCostGateway), so that both meet the
// same load from the rest of the machine at every moment and each one's CPU
// is read from /proc. It runs two loads: as fast as pgbench goes, where a
// gateway that does more per statement also serves fewer statements per
// wake-up, and pgbench throttled to the same rate through both gateways
// (PAMTRAIL_CHAINCOST_RATE per gateway, default 2,000 tps, about half of
// what each takes when both are saturated), where the two do the same
// transactions in the same rhythm and differ only by the chain's own work.
// For each it prints the ratio of the two gateways' CPU per transaction
// over all rounds, and the median of the rounds' ratios. Goal (issue 15):
// chaining and signing add at most 2 %. PAMTRAIL_BENCH_SECONDS (default 60)
// is the length of each load, in rounds of 10 s.
//
//	go test ./gateway/postgres -run '^$' -bench PgbenchChainCost -benchtime 1x -count 3
func BenchmarkPgbenchChainCost(b *testing.B) {
	pg := postgresServer(b)
	initPgbench(b, pg)
	rounds := max(1, testenv.BenchSeconds(b, 60)/chainCostRound)
	rate := testenv.PositiveInt(b, "PAMTRAIL_CHAINCOST_RATE", 2000) // tps per gateway, throttled load
	gateways := make([]chainCostGateway, len(chainCostVariants))
	for i, v := range chainCostVariants {
		gateways[i] = startChainCostGateway(b, v.name)
	}
	b.ResetTimer()
	saturated := measureChainCost(b, gateways, rounds, 0)
	throttled := measureChainCost(b, gateways, rounds, rate)
	b.StopTimer()
	fmt.Printf("\npgbench -S simple, 8 clients per gateway, both gateways at once, %d rounds of %ds per load\n", rounds, chainCostRound)
	saturated.print(gateways, "as fast as pgbench goes")
	throttled.print(gateways, fmt.Sprintf("throttled to %d tps per gateway", rate))
	b.ReportMetric(saturated.perTx[0], "cpu_us_per_tx_chained")
	b.ReportMetric(saturated.perTx[1], "cpu_us_per_tx_unchained")
	b.ReportMetric(saturated.ratio(), "ratio_chain_cpu_per_tx")
	b.ReportMetric(saturated.median, "ratio_chain_cpu_per_tx_median")
	b.ReportMetric(throttled.ratio(), "ratio_chain_cpu_per_tx_throttled")
	b.ReportMetric(throttled.median, "ratio_chain_cpu_per_tx_throttled_median")
}

const chainCostRound = 10 // seconds

// chainCostLoad is one load's result: per gateway, transactions per
// second and proxy CPU per transaction over all rounds.
type chainCostLoad struct {
	tps, perTx  []float64
	roundRatios []float64 // chained ÷ unchained CPU per transaction, in run order
	median      float64
}

func (l chainCostLoad) ratio() float64 { return l.perTx[0] / l.perTx[1] }

// measureChainCost runs rounds of pgbench through all gateways at once,
// each throttled to rate (0: unthrottled).
func measureChainCost(b *testing.B, gateways []chainCostGateway, rounds, rate int) chainCostLoad {
	cpu := make([]time.Duration, len(gateways))
	tx := make([]float64, len(gateways))
	var l chainCostLoad
	for range rounds {
		perTx := make([]float64, len(gateways))
		var wg sync.WaitGroup
		for i := range gateways {
			wg.Go(func() {
				g := &gateways[i]
				before := g.cpu(b)
				tps := g.target.tpsAt(b, "simple", 8, chainCostRound, rate)
				used := g.cpu(b) - before
				cpu[i] += used
				tx[i] += tps * chainCostRound
				perTx[i] = float64(used) / (tps * chainCostRound)
			})
		}
		wg.Wait()
		l.roundRatios = append(l.roundRatios, perTx[0]/perTx[1])
	}
	sorted := slices.Sorted(slices.Values(l.roundRatios))
	l.median = (sorted[(rounds-1)/2] + sorted[rounds/2]) / 2
	for i := range gateways {
		l.tps = append(l.tps, tx[i]/float64(rounds*chainCostRound))
		l.perTx = append(l.perTx, float64(cpu[i].Nanoseconds())/1000/tx[i])
	}
	return l
}

func (l chainCostLoad) print(gateways []chainCostGateway, load string) {
	fmt.Printf("  %s\n", load)
	for i, g := range gateways {
		fmt.Printf("    gateway %-15s %10.0f tps   proxy CPU %5.1f µs/tx\n", g.target.name, l.tps[i], l.perTx[i])
	}
	fmt.Printf("    chain on/off CPU per tx        %6.3f  (goal <= 1.020)\n", l.ratio())
	fmt.Printf("    median of the rounds' ratios   %6.3f  (rounds in run order: %.3f)\n", l.median, l.roundRatios)
}

// chainCostGateway is a gateway process of BenchmarkPgbenchChainCost.
type chainCostGateway struct {
	target pgbenchTarget
	pid    int
}

func (g *chainCostGateway) cpu(b *testing.B) time.Duration {
	d, err := testenv.PIDCPU(g.pid)
	if err != nil {
		b.Fatalf("gateway %s: %v", g.target.name, err)
	}
	return d
}

// startChainCostGateway runs this test binary as the gateway of one
// variant, and stops it when the benchmark ends (by closing its stdin).
func startChainCostGateway(b *testing.B, variant string) chainCostGateway {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestChainCostGateway$", "-test.count", "1")
	cmd.Env = append(os.Environ(), chainCostVariantEnv+"="+variant)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("gateway %s: %v", variant, err)
		}
	})
	ready := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if addr, ok := strings.CutPrefix(lines.Text(), "LISTENING "); ok {
				ready <- addr
				break
			}
		}
		close(ready)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var addr string
	select {
	case addr = <-ready:
	case <-time.After(time.Minute):
	}
	host, port, ok := strings.Cut(addr, " ")
	p, err := strconv.Atoi(port)
	if !ok || err != nil {
		b.Fatalf("gateway %s did not report its address (got %q)", variant, addr)
	}
	return chainCostGateway{target: pgbenchTarget{name: variant, host: host, port: p, user: testUser, password: testPassword}, pid: cmd.Process.Pid}
}

// TestChainCostGateway is a gateway process of BenchmarkPgbenchChainCost
// (only when started by it): the variant chainCostVariantEnv names, with
// the production recorder and spool, its upload-cycle work run every
// upload.interval; it prints its address and serves until stdin closes.
func TestChainCostGateway(t *testing.T) {
	variant := os.Getenv(chainCostVariantEnv)
	if variant == "" {
		t.Skip("a gateway process of BenchmarkPgbenchChainCost")
	}
	i := slices.IndexFunc(chainCostVariants, func(v chainCostVariant) bool { return v.name == variant })
	if i < 0 {
		t.Fatalf("%s=%q names no variant", chainCostVariantEnv, variant)
	}
	server.ApplyGCPercent(0) // as the gateway binary runs
	signer, err := keys.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	rec := benchrec.SpoolRecorderWith(t, spool.FsyncInterval, func(o *recorder.Options) { chainCostVariants[i].adjust(o, signer) })
	cycleEvery(t, rec, config.Default().Upload.Interval.D())
	gw := startGatewayWith(t, benchConfig(t, postgresServer(t), true), func(o *Options) {
		o.Recorder = rec
		o.Logger = slog.New(slog.DiscardHandler)
	})
	fmt.Printf("LISTENING %s %d\n", gw.host, gw.port)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// cycleEvery runs rec's upload-cycle work (heartbeats, checkpoints) every
// interval, as the uploader does, until the test ends.
func cycleEvery(tb testing.TB, rec *recorder.OTel, interval time.Duration) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				rec.Cycle()
			case <-stop:
				return
			}
		}
	}()
	tb.Cleanup(func() { close(stop); <-done })
}
