package postgres

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/internal/benchrec"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/server"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

// BenchmarkPgbench measures what the gateway costs with pgbench -S
// (select-only, 8 clients) against the same server direct, through
// pgbouncer (which records nothing), through the gateway recording into a
// real encrypted spool, and through the gateway with recording off; in
// simple and prepared query modes; and the p50 latency one client adds.
// PAMTRAIL_BENCH_SECONDS sets each run's duration (default 20). It prints a
// table and reports every figure with b.ReportMetric. Run it with
// `make bench` or:
//
//	go test ./gateway/postgres -run '^$' -bench Pgbench -benchtime 1x
func BenchmarkPgbench(b *testing.B) {
	pg := postgresServer(b)
	if pg.PgBouncerPort == 0 {
		b.Fatal("pgbouncer is not running: deploy/local/services.sh up pgbouncer")
	}
	seconds := testenv.BenchSeconds(b, 20)
	initPgbench(b, pg)
	server.ApplyGCPercent(0) // as the gateway binary runs

	recording := startGatewayWith(b, benchConfig(b, pg, true), func(o *Options) {
		o.Recorder = benchrec.SpoolRecorder(b, spool.FsyncInterval)
		o.Logger = slog.New(slog.DiscardHandler)
	})
	off := startGatewayWith(b, benchConfig(b, pg, false), func(o *Options) {
		o.Recorder = recorder.Nop{}
		o.Logger = slog.New(slog.DiscardHandler)
	})
	// The same recording gateway with postgres.event_loops: 0, two
	// goroutines per session, for comparison.
	goroutineCfg := benchConfig(b, pg, true)
	noLoops := 0
	goroutineCfg.Postgres.EventLoops = &noLoops
	goroutines := startGatewayWith(b, goroutineCfg, func(o *Options) {
		o.Recorder = benchrec.SpoolRecorder(b, spool.FsyncInterval)
		o.Logger = slog.New(slog.DiscardHandler)
	})
	targets := []pgbenchTarget{
		{name: "direct", host: pg.Host, port: pg.Port, user: pg.DemoUser, password: pg.DemoPassword},
		{name: "pgbouncer", host: pg.Host, port: pg.PgBouncerPort, user: pg.DemoUser, password: pg.DemoPassword,
			cpu: pgbouncerCPU(b)},
		{name: "gateway", host: recording.host, port: recording.port, user: testUser, password: testPassword, cpu: testenv.ProcessCPU},
		{name: "gateway_norec", host: off.host, port: off.port, user: testUser, password: testPassword, cpu: testenv.ProcessCPU},
		{name: "gateway_goroutines", host: goroutines.host, port: goroutines.port, user: testUser, password: testPassword, cpu: testenv.ProcessCPU},
	}
	b.ResetTimer()
	tps := map[string]float64{}
	cpuPerTx := map[string]time.Duration{}
	for _, mode := range []string{"simple", "prepared"} {
		for _, tg := range targets {
			if mode == "prepared" && tg.name == "gateway_goroutines" {
				continue // nothing new to learn in this mode
			}
			key := tg.name + "_" + mode
			var cpuBefore time.Duration
			if tg.cpu != nil {
				cpuBefore = tg.cpu()
			}
			tps[key] = tg.tps(b, mode, 8, seconds)
			b.ReportMetric(tps[key], "tps_"+key)
			if tg.cpu != nil && tps[key] > 0 {
				cpuPerTx[key] = (tg.cpu() - cpuBefore) / time.Duration(tps[key]*float64(seconds))
				b.ReportMetric(float64(cpuPerTx[key].Nanoseconds())/1000, "cpu_us_per_tx_"+key)
			}
		}
	}
	latencySeconds := max(3, seconds/4)
	p50Direct := targets[0].p50(b, latencySeconds)
	p50Gateway := targets[2].p50(b, latencySeconds)
	b.StopTimer()

	ratios := []struct {
		name  string
		value float64
		goal  string
	}{
		{"gateway/direct", tps["gateway_simple"] / tps["direct_simple"], ">= 0.80"},
		{"gateway/pgbouncer", tps["gateway_simple"] / tps["pgbouncer_simple"], ">= 1.00"},
		{"gateway/direct (-M prepared)", tps["gateway_prepared"] / tps["direct_prepared"], ">= 0.65"},
		// For scale: what a proxy that records nothing reaches here.
		{"pgbouncer/direct", tps["pgbouncer_simple"] / tps["direct_simple"], "none, for scale"},
		{"pgbouncer/direct (-M prepared)", tps["pgbouncer_prepared"] / tps["direct_prepared"], "none, for scale"},
		{"recording on/off", tps["gateway_simple"] / tps["gateway_norec_simple"], ">= 0.95"},
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\npgbench -S, 8 clients, %ds per run, %d CPUs\n", seconds, runtime.NumCPU())
	for _, mode := range []string{"simple", "prepared"} {
		for _, tg := range targets {
			key := tg.name + "_" + mode
			if v, ok := tps[key]; ok {
				fmt.Fprintf(&sb, "  %-9s %-18s %10.0f tps", mode, tg.name, v)
				if c, ok := cpuPerTx[key]; ok {
					// The proxy's own CPU (user+system) per transaction: on
					// a machine where client, proxy and server share the
					// cores, this is what the proxy takes from the others.
					fmt.Fprintf(&sb, "   proxy CPU %5.1f µs/tx", float64(c.Nanoseconds())/1000)
				}
				sb.WriteString("\n")
			}
		}
	}
	for _, r := range ratios {
		fmt.Fprintf(&sb, "  %-30s %6.3f  (goal %s)\n", r.name, r.value, r.goal)
		b.ReportMetric(r.value, "ratio_"+strings.NewReplacer("/", "_", " ", "_", "(", "", ")", "", "-", "").Replace(r.name))
	}
	added := (p50Gateway - p50Direct).Microseconds()
	fmt.Fprintf(&sb, "  p50 latency, 1 client: direct %dµs, gateway %dµs, added %dµs (goal <= 100µs)\n",
		p50Direct.Microseconds(), p50Gateway.Microseconds(), added)
	b.ReportMetric(float64(added), "added_p50_us")
	fmt.Print(sb.String())
}

// pgbenchTarget is one server pgbench runs against.
type pgbenchTarget struct {
	name, host, user, password string
	port                       int
	// cpu returns the CPU time the proxy process has used so far; nil for
	// direct, where there is no proxy.
	cpu func() time.Duration
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

func (tg pgbenchTarget) command(b *testing.B, args ...string) *exec.Cmd {
	cmd := exec.Command("pgbench", append([]string{"-h", tg.host, "-p", strconv.Itoa(tg.port), "-U", tg.user, "-n"}, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+tg.password, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	return cmd
}

// tps runs pgbench -S and returns its transactions per second.
func (tg pgbenchTarget) tps(b *testing.B, mode string, clients, seconds int) float64 {
	return tg.tpsAt(b, mode, clients, seconds, 0)
}

// tpsAt is tps with pgbench throttled to rate transactions per second in
// all (-R), or as fast as it goes when rate is 0.
func (tg pgbenchTarget) tpsAt(b *testing.B, mode string, clients, seconds, rate int) float64 {
	b.Helper()
	args := []string{"-S", "-M", mode, "-c", strconv.Itoa(clients), "-j", "2", "-T", strconv.Itoa(seconds)}
	if rate > 0 {
		args = append(args, "-R", strconv.Itoa(rate))
	}
	out, err := tg.command(b, append(args, "demo")...).CombinedOutput()
	m := tpsLine.FindSubmatch(out)
	if err != nil || m == nil {
		b.Fatalf("pgbench against %s: %v\n%s", tg.name, err, out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// p50 runs pgbench -S with one client, logging every transaction, and
// returns the median latency.
func (tg pgbenchTarget) p50(b *testing.B, seconds int) time.Duration {
	b.Helper()
	dir := b.TempDir()
	cmd := tg.command(b, "-S", "-c", "1", "-T", strconv.Itoa(seconds), "-l", "--log-prefix", filepath.Join(dir, "tx"), "demo")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("pgbench latency run against %s: %v\n%s", tg.name, err, out)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "tx.*"))
	var us []int
	for _, l := range logs {
		f, err := os.Open(l)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// client_id transaction_no time script_no time_epoch time_us
			if fields := strings.Fields(sc.Text()); len(fields) >= 3 {
				if v, err := strconv.Atoi(fields[2]); err == nil {
					us = append(us, v)
				}
			}
		}
		f.Close()
	}
	if len(us) == 0 {
		b.Fatalf("pgbench wrote no transaction log for %s", tg.name)
	}
	slices.Sort(us)
	return time.Duration(us[len(us)/2]) * time.Microsecond
}

// pgbouncerCPU returns a reader of the running pgbouncer's CPU time, from
// /proc/<pid>/stat (utime and stime, in clock ticks of 10 ms), or nil when
// its pid is not known (a pgbouncer run by the user elsewhere).
func pgbouncerCPU(b *testing.B) func() time.Duration {
	home := os.Getenv("PAMTRAIL_HOME")
	pidText, err := os.ReadFile(filepath.Join(home, "pgbouncer", "pgbouncer.pid"))
	if home == "" || err != nil {
		b.Logf("pgbouncer pid unknown (%v): its CPU per transaction is not reported", err)
		return nil
	}
	stat := filepath.Join("/proc", strings.TrimSpace(string(pidText)), "stat")
	return func() time.Duration {
		raw, err := os.ReadFile(stat)
		if err != nil {
			return 0
		}
		// Fields after the parenthesised command name; utime and stime
		// are fields 14 and 15 of the whole line.
		rest := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		if len(rest) < 13 {
			return 0
		}
		ut, _ := strconv.ParseInt(rest[11], 10, 64)
		st, _ := strconv.ParseInt(rest[12], 10, 64)
		return time.Duration(ut+st) * 10 * time.Millisecond
	}
}

// initPgbench creates pgbench's tables in the demo database once (scale 10).
func initPgbench(b *testing.B, pg pgServer) {
	b.Helper()
	c := connectPgx(b, pg.directDSN(pg.DemoUser, pg.DemoPassword, pg.DemoDB))
	var branches int
	err := c.QueryRow(context.Background(), "select count(*) from pgbench_branches").Scan(&branches)
	if err == nil && branches == 10 {
		return
	}
	tg := pgbenchTarget{name: "direct", host: pg.Host, port: pg.Port, user: pg.DemoUser, password: pg.DemoPassword}
	cmd := tg.command(b, "-i", "-s", "10", "-q", "demo")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("pgbench -i: %v\n%s", err, out)
	}
}

func benchConfig(b testing.TB, pg pgServer, record bool) *config.Config {
	cfg := baseConfig(b, pg.demoAccount(b))
	cfg.Recording.Enabled = &record
	return cfg
}

// BenchmarkIdleSessionMemory measures the gateway's memory per idle
// proxied session: heap and goroutine stacks with n sessions open through
// the gateway, minus the same number of direct connections (the clients
// live in this process too). PostgreSQL's max_connections (300) bounds n,
// so the figure for 1,000 sessions is extrapolated.
func BenchmarkIdleSessionMemory(b *testing.B) {
	pg := postgresServer(b)
	const n = 200
	g := startGatewayWith(b, baseConfig(b, pg.demoAccount(b)), func(o *Options) {
		o.Recorder = benchrec.SpoolRecorder(b, spool.FsyncInterval)
		o.Logger = slog.New(slog.DiscardHandler)
	})
	measure := func(dsn string) uint64 {
		before := memInUse()
		conns := make([]*pgconn.PgConn, 0, n)
		for range n {
			c, err := pgconn.Connect(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		after := memInUse()
		for _, c := range conns {
			_ = c.Close(context.Background())
		}
		return after - min(before, after)
	}
	b.ResetTimer()
	direct := measure(pg.directDSN(pg.DemoUser, pg.DemoPassword, pg.DemoDB))
	via := measure(g.connString(testUser, testPassword, "demo"))
	b.StopTimer()
	perSession := float64(via-min(direct, via)) / n
	b.ReportMetric(perSession/1024, "KiB/session")
	b.ReportMetric(perSession*1000/(1<<20), "MiB/1000sessions")
	fmt.Printf("\nidle sessions: %.1f KiB each through the gateway (heap+stacks); 1,000 sessions ≈ %.0f MiB (goal <= 200 MiB RSS)\n",
		perSession/1024, perSession*1000/(1<<20))
}

// memInUse is the process's heap and stack memory after a full GC.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkLargeResultMemory streams a 1 GB result through the recording
// gateway and reports the peak heap growth, which must stay bounded
// (buffers and the preview), whatever the result size.
func BenchmarkLargeResultMemory(b *testing.B) {
	pg := postgresServer(b)
	g := startGatewayWith(b, baseConfig(b, pg.demoAccount(b)), func(o *Options) {
		o.Recorder = benchrec.SpoolRecorder(b, spool.FsyncInterval)
		o.Logger = slog.New(slog.DiscardHandler)
	})
	ctx := context.Background()
	c, err := pgconn.Connect(ctx, g.connString(testUser, testPassword, "demo"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	base := memInUse()
	peak := base
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse+m.StackInuse)
		}
	}()
	b.ResetTimer()
	start := time.Now()
	rr := c.ExecParams(ctx, "select repeat('x', 1000) from generate_series(1, 1000000)", nil, nil, nil, nil)
	var bytes int64
	for rr.NextRow() {
		bytes += int64(len(rr.Values()[0]))
	}
	if _, err := rr.Close(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	<-sampled
	growth := float64(peak-base) / (1 << 20)
	b.ReportMetric(growth, "MiB_peak_heap_growth")
	b.ReportMetric(float64(bytes)/elapsed.Seconds()/(1<<20), "MiB/s")
	fmt.Printf("\n1 GB result through the gateway: %.0f MiB/s, peak heap growth %.1f MiB (client included)\n",
		float64(bytes)/elapsed.Seconds()/(1<<20), growth)
}
