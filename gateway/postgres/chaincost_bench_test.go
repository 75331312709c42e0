package postgres

import (
	"fmt"
	"log/slog"
	"slices"
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

// BenchmarkPgbenchChainCost measures what tamper evidence costs the
// gateway: pgbench -S (simple protocol, 8 clients) through two recording
// gateways in this process, one that chains and signs as a gateway with a
// signing key does (a checkpoint per live session every upload.interval and
// at each session's end), one with the chain switched off
// (recorder.Options.DisableChainForBenchmark). Runs alternate between the
// two in ABBA order, so both meet the same load from the rest of the
// machine. It prints the ratio of each gateway's CPU per transaction
// summed over its runs, and the median of the rounds' ratios, which a burst
// of load from elsewhere during one run moves least. Goal (issue 15):
// chaining and signing add at most 2 %. PAMTRAIL_BENCH_SECONDS (default 20)
// is the length of one round (both gateways).
//
//	go test ./gateway/postgres -run '^$' -bench PgbenchChainCost -benchtime 1x -count 5
func BenchmarkPgbenchChainCost(b *testing.B) {
	pg := postgresServer(b)
	const rounds = 4
	seconds := max(3, testenv.BenchSeconds(b, 20)/2)
	initPgbench(b, pg)
	server.ApplyGCPercent(0) // as the gateway binary runs
	signer, err := keys.NewSigningKey()
	if err != nil {
		b.Fatal(err)
	}
	variants := []struct {
		name   string
		adjust func(*recorder.Options)
	}{
		{"chained+signed", func(o *recorder.Options) { o.Signer = signer }},
		{"unchained", func(o *recorder.Options) { o.DisableChainForBenchmark = true }},
	}
	targets := make([]pgbenchTarget, len(variants))
	for i, v := range variants {
		rec := benchrec.SpoolRecorderWith(b, spool.FsyncInterval, v.adjust)
		cycleEvery(b, rec, config.Default().Upload.Interval.D())
		gw := startGatewayWith(b, benchConfig(b, pg, true), func(o *Options) {
			o.Recorder = rec
			o.Logger = slog.New(slog.DiscardHandler)
		})
		targets[i] = pgbenchTarget{name: v.name, host: gw.host, port: gw.port, user: testUser, password: testPassword}
	}
	cpu := make([]time.Duration, len(targets))
	tx := make([]float64, len(targets))
	var roundRatios []float64
	b.ResetTimer()
	for round := range rounds {
		var perTx [2]float64
		for k := range targets {
			i := k
			if round%2 == 1 {
				i = len(targets) - 1 - k
			}
			before := testenv.ProcessCPU()
			tps := targets[i].tps(b, "simple", 8, seconds)
			used := testenv.ProcessCPU() - before
			cpu[i] += used
			tx[i] += tps * float64(seconds)
			perTx[i] = float64(used) / (tps * float64(seconds))
		}
		roundRatios = append(roundRatios, perTx[0]/perTx[1])
	}
	b.StopTimer()
	sorted := slices.Sorted(slices.Values(roundRatios)) // roundRatios stays in run order for the print
	median := (sorted[(rounds-1)/2] + sorted[rounds/2]) / 2
	perTx := make([]float64, len(targets))
	fmt.Printf("\npgbench -S simple, 8 clients, %d rounds of %ds per gateway, alternating\n", rounds, seconds)
	for i, tg := range targets {
		perTx[i] = float64(cpu[i].Nanoseconds()) / 1000 / tx[i]
		fmt.Printf("  gateway %-15s %10.0f tps   proxy CPU %5.1f µs/tx\n", tg.name, tx[i]/float64(rounds*seconds), perTx[i])
	}
	ratio := perTx[0] / perTx[1]
	fmt.Printf("  chain on/off CPU per tx        %6.3f  (goal <= 1.020)\n", ratio)
	fmt.Printf("  median of the rounds' ratios   %6.3f  (rounds in run order: %.3f)\n", median, roundRatios)
	b.ReportMetric(perTx[0], "cpu_us_per_tx_chained")
	b.ReportMetric(perTx[1], "cpu_us_per_tx_unchained")
	b.ReportMetric(ratio, "ratio_chain_cpu_per_tx")
	b.ReportMetric(median, "ratio_chain_cpu_per_tx_median")
}

// cycleEvery runs rec's upload-cycle work (heartbeats, checkpoints) every
// interval, as the uploader does, until the benchmark ends.
func cycleEvery(b *testing.B, rec *recorder.OTel, interval time.Duration) {
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
	b.Cleanup(func() { close(stop); <-done })
}
