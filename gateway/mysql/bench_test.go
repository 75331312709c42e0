package mysql

import (
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/internal/benchrec"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/server"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

const (
	sysbenchDB      = "sbtest"
	sysbenchThreads = 8
	sysbenchTables  = 4
	sysbenchRows    = 10000
)

// BenchmarkSysbench measures what the gateway costs with sysbench
// oltp_read_only (8 threads, server-side prepared statements) against the
// same MariaDB direct, through the gateway recording into a real
// encrypted spool, and through the gateway with recording off, one run
// after the other. It prints each run's transactions per second, the
// ratio to direct and the gateway's CPU per transaction.
// PAMTRAIL_BENCH_SECONDS sets each run's duration (default 20). Run it
// with `make bench` or:
//
//	go test ./gateway/mysql -run '^$' -bench Sysbench -benchtime 1x
func BenchmarkSysbench(b *testing.B) {
	seconds := testenv.BenchSeconds(b, 20)
	db := testenv.MySQL(b)
	direct := sysbenchTarget{name: "direct", host: db.Host, port: strconv.Itoa(db.Port), user: db.DemoUser,
		password: db.DemoPassword, db: sysbenchDB}
	direct.run(b, "cleanup")
	direct.run(b, "prepare")
	server.ApplyGCPercent(0) // as the gateway binary runs

	bench := func(c *config.Config) { c.Accounts[0].Database = sysbenchDB }
	recording := startGatewayRecording(b, benchrec.SpoolRecorder(b, spool.FsyncInterval), bench)
	off := startGatewayRecording(b, recorder.Nop{}, bench, func(c *config.Config) {
		record := false
		c.Recording.Enabled = &record
	})
	targets := []sysbenchTarget{direct}
	for _, g := range []struct {
		name string
		gw   *gateway
	}{{"gateway", recording}, {"gateway_norec", off}} {
		host, port := splitHostPort(b, g.gw.addr)
		targets = append(targets, sysbenchTarget{name: g.name, host: host, port: port, user: testUser,
			password: testPassword, db: testAccount, cpu: testenv.ProcessCPU})
	}
	b.ResetTimer()
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nsysbench oltp_read_only, %d threads, %d tables of %d rows, %ds per run, %d CPUs\n",
		sysbenchThreads, sysbenchTables, sysbenchRows, seconds, runtime.NumCPU())
	var directTPS float64
	for _, tg := range targets {
		var cpuBefore time.Duration
		if tg.cpu != nil {
			cpuBefore = tg.cpu()
		}
		out := tg.run(b, "run", "--threads="+strconv.Itoa(sysbenchThreads), "--time="+strconv.Itoa(seconds))
		m := sysbenchTx.FindStringSubmatch(out)
		if m == nil {
			b.Fatalf("sysbench against %s printed no transaction count:\n%s", tg.name, out)
		}
		txs, _ := strconv.ParseFloat(m[1], 64)
		tps, _ := strconv.ParseFloat(m[2], 64)
		b.ReportMetric(tps, "tps_"+tg.name)
		fmt.Fprintf(&sb, "  %-14s %9.1f tps", tg.name, tps)
		if tg.cpu == nil {
			directTPS = tps
		} else {
			ratio := tps / directTPS
			cpuPerTx := float64((tg.cpu() - cpuBefore).Nanoseconds()) / 1000 / txs
			b.ReportMetric(ratio, "ratio_"+tg.name)
			b.ReportMetric(cpuPerTx, "cpu_us_per_tx_"+tg.name)
			// The gateway's own CPU (user+system) per transaction; each
			// oltp_read_only transaction is 14 statements plus BEGIN/COMMIT.
			fmt.Fprintf(&sb, "   %.3f of direct   proxy CPU %6.1f µs/tx", ratio, cpuPerTx)
		}
		sb.WriteString("\n")
	}
	fmt.Print(sb.String())
}

var sysbenchTx = regexp.MustCompile(`transactions:\s+(\d+)\s+\(([0-9.]+) per sec\.\)`)

// sysbenchTarget is one server sysbench runs against.
type sysbenchTarget struct {
	name, host, port, user, password, db string
	// cpu returns the CPU time the proxy has used so far; nil for direct.
	cpu func() time.Duration
}

// run runs sysbench oltp_read_only with command (prepare, run, cleanup)
// and returns its output.
func (tg sysbenchTarget) run(b *testing.B, command string, args ...string) string {
	b.Helper()
	args = append([]string{"oltp_read_only", "--db-driver=mysql", "--mysql-host=" + tg.host, "--mysql-port=" + tg.port,
		"--mysql-user=" + tg.user, "--mysql-password=" + tg.password, "--mysql-db=" + tg.db,
		"--tables=" + strconv.Itoa(sysbenchTables), "--table-size=" + strconv.Itoa(sysbenchRows)}, args...)
	out, err := exec.Command("sysbench", append(args, command)...).CombinedOutput()
	if err != nil {
		b.Fatalf("sysbench %s against %s: %v\n%s", command, tg.name, err, out)
	}
	return string(out)
}
