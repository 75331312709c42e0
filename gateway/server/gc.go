package server

import (
	"os"
	"runtime/debug"

	"github.com/pamtrail/pamtrail/gateway/config"
)

// ApplyGCPercent sets the garbage collector's target to gateway.gc_percent
// (0 means config.DefaultGCPercent) unless the GOGC environment variable is
// set, which wins as it does for any Go program. It returns the target in
// effect and where it came from ("GOGC" or "gateway.gc_percent"). Benchmarks
// call it too, so they measure the gateway as it runs.
func ApplyGCPercent(percent int) (int, string) {
	if env, ok := os.LookupEnv("GOGC"); ok && env != "" {
		current := debug.SetGCPercent(100)
		debug.SetGCPercent(current)
		return current, "GOGC"
	}
	if percent == 0 {
		percent = config.DefaultGCPercent
	}
	debug.SetGCPercent(percent)
	return percent, "gateway.gc_percent"
}
