package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// cpuSeconds is the user+system CPU time a process has used so far, or -1
// when it cannot be read (the process is gone).
func cpuSeconds(pid int) float64 {
	d, err := testenv.PIDCPU(pid)
	if err != nil {
		return -1
	}
	return d.Seconds()
}

// pid is the process's id, or 0 when it is not running.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// elasticsearchPID is the pid of the single-node Elasticsearch that
// services.sh runs, from its pidfile.
func elasticsearchPID(t testing.TB) int {
	t.Helper()
	home := testenv.Get("PAMTRAIL_HOME")
	if home == "" {
		home = filepath.Join(testenv.RepoRoot(t), ".pamtrail")
	}
	files, _ := filepath.Glob(filepath.Join(home, "elasticsearch", "node-*", "elasticsearch.pid"))
	if len(files) != 1 {
		t.Fatalf("want one Elasticsearch pidfile under %s/elasticsearch, found %v", home, files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || cpuSeconds(pid) < 0 {
		t.Fatalf("Elasticsearch pidfile %s: %q does not name a running process", files[0], raw)
	}
	return pid
}

// cpuMeter measures the CPU time a set of processes spend between start and
// stop, to say where the time of a phase went.
type cpuMeter struct {
	names []string
	pids  []int
	start []float64
}

func newCPUMeter(names []string, pids []int) *cpuMeter {
	m := &cpuMeter{names: names, pids: pids, start: make([]float64, len(pids))}
	for i, pid := range pids {
		m.start[i] = cpuSeconds(pid)
	}
	return m
}

// perItem returns each process's CPU microseconds per item since the meter
// was made, and a printable summary.
func (m *cpuMeter) perItem(items int) ([]float64, string) {
	out := make([]float64, len(m.pids))
	parts := make([]string, len(m.pids))
	for i, pid := range m.pids {
		used := cpuSeconds(pid) - m.start[i]
		out[i] = used * 1e6 / float64(max(items, 1))
		parts[i] = fmt.Sprintf("%s %.0f µs", m.names[i], out[i])
	}
	return out, strings.Join(parts, ", ")
}
