package server

import (
	"runtime/debug"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/config"
)

func TestApplyGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tests := []struct {
		name       string
		gogc       string // "" leaves GOGC unset
		configured int
		want       int
		source     string
	}{
		{"config value", "", 250, 250, "gateway.gc_percent"},
		{"zero is the default", "", 0, config.DefaultGCPercent, "gateway.gc_percent"},
		{"GOGC wins", "150", 250, 150, "GOGC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.gogc != "" {
				t.Setenv("GOGC", tt.gogc)
				debug.SetGCPercent(150) // what the runtime read from GOGC at start
			} else {
				t.Setenv("GOGC", "")
			}
			got, source := ApplyGCPercent(tt.configured)
			if got != tt.want || source != tt.source {
				t.Fatalf("ApplyGCPercent(%d) = %d from %s, want %d from %s", tt.configured, got, source, tt.want, tt.source)
			}
			if now := debug.SetGCPercent(got); now != tt.want {
				t.Fatalf("runtime GC percent is %d, want %d", now, tt.want)
			}
		})
	}
}
