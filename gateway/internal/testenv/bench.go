package testenv

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchSeconds is the duration of each timed benchmark run:
// PAMTRAIL_BENCH_SECONDS, or def when it is unset.
func BenchSeconds(tb testing.TB, def int) int {
	tb.Helper()
	s := os.Getenv("PAMTRAIL_BENCH_SECONDS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		tb.Fatalf("PAMTRAIL_BENCH_SECONDS=%q is not a positive number of seconds", s)
	}
	return n
}

// ProcessCPU is the CPU time (user and system) this process has used. A
// benchmark that serves a gateway in process while a load tool runs as a
// child reads it before and after a run to measure the gateway's CPU.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
