//go:build unix

package recorder

import (
	"syscall"
	"testing"
	"time"
)

// reportCPU adds cpu-ns/op: the process's CPU time per iteration. On a
// shared machine wall time per op mostly measures the wait for a core; CPU
// time is what a gateway would pay.
func reportCPU(b *testing.B, loop func()) {
	b.Helper()
	before := processCPU()
	loop()
	b.ReportMetric(float64((processCPU()-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
