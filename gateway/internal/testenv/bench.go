package testenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchSeconds is the duration of each timed benchmark run:
// PAMTRAIL_BENCH_SECONDS, or def when it is unset.
func BenchSeconds(tb testing.TB, def int) int {
	tb.Helper()
	return PositiveInt(tb, "PAMTRAIL_BENCH_SECONDS", def)
}

// PositiveInt is environment variable name as a positive integer, or def
// when it is unset; anything else fails tb.
func PositiveInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q is not a positive integer", name, s)
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

// PIDCPU is the CPU time (user and system) process pid has used, from
// /proc/<pid>/stat; it fails once the process is gone.
func PIDCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis are fixed: utime and stime are the 12th and 13th.
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, fields[11], fields[12])
	}
	// USER_HZ, the unit of these fields, is 100 on Linux.
	return time.Duration(utime+stime) * (time.Second / 100), nil
}
