// Package benchrec gives benchmarks the production recorder, so what they
// measure includes recording as a deployed gateway does it.
package benchrec

import (
	"testing"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

// SpoolRecorder is the production recorder writing into an encrypted spool
// in a temporary directory (nothing uploads it) with the given fsync
// policy.
func SpoolRecorder(tb testing.TB, fsync spool.FsyncPolicy) recorder.Recorder {
	tb.Helper()
	return SpoolRecorderWith(tb, fsync, nil)
}

// SpoolRecorderWith is SpoolRecorder with its options adjusted (a signing
// key, the chain switched off) before it is built.
func SpoolRecorderWith(tb testing.TB, fsync spool.FsyncPolicy, adjust func(*recorder.Options)) *recorder.OTel {
	tb.Helper()
	cfg := config.Default()
	cfg.Spool.Fsync = fsync
	sp, err := spool.Open(tb.TempDir(), cfg.Spool.Options(testenv.Keyring(tb, 1), nil))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sp.Close() })
	opts := recorder.Options{Sink: spool.RecordSink{Spool: sp}, GatewayID: "bench",
		MaxTextBytes: int(cfg.Recording.MaxTextBytes), PolicyFor: func(string) recorder.Policy { return recorder.Policy{} }}
	if adjust != nil {
		adjust(&opts)
	}
	rec, err := recorder.NewOTel(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return rec
}
