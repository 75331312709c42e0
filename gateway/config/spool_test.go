package config

import (
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

// TestSpoolOptions: every spool section the config validates gives options
// the spool, which has no defaults of its own, accepts, and the largest
// record the gateway spools fits its segments.
func TestSpoolOptions(t *testing.T) {
	tests := []struct {
		name    string
		section string // spool keys added to validBase's spool section
	}{
		{"defaults", ""},
		{"smallest segments and quota", "\n  segment_bytes: 17MiB\n  max_bytes: 34MiB"},
		{"fsync always, drop-oldest", "\n  fsync: always\n  overflow: drop-oldest"},
		{"fsync none", "\n  fsync: none\n  fsync_interval: 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(validBase, "key_env: PAMTRAIL_SPOOL_KEY", "key_env: PAMTRAIL_SPOOL_KEY"+tt.section, 1)
			cfg, err := Parse([]byte(src), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			sp, err := spool.Open(t.TempDir(), cfg.Spool.Options(testenv.Keyring(t, 1), nil))
			if err != nil {
				t.Fatalf("the spool refuses the config's options: %v", err)
			}
			defer sp.Close()
			if _, err := sp.Append(make([]byte, SpoolMaxRecordBytes)); err != nil {
				t.Fatalf("appending the largest record: %v", err)
			}
			if _, err := sp.Append(make([]byte, SpoolMaxRecordBytes+1)); err == nil {
				t.Fatal("a record over SpoolMaxRecordBytes was accepted")
			}
		})
	}
}
