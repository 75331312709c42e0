//go:build linux

package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/internal/benchrec"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

// claimRecorder passes sessions through, with MayBlock replaced by claim.
type claimRecorder struct {
	recorder.Recorder
	claim bool
}

func (r claimRecorder) SessionStart(ctx context.Context, info recorder.SessionInfo) (recorder.Session, error) {
	s, err := r.Recorder.SessionStart(ctx, info)
	if err != nil {
		return nil, err
	}
	return claimSession{s, r.claim}, nil
}

type claimSession struct {
	recorder.Session
	claim bool
}

func (s claimSession) MayBlock() bool { return s.claim }

// loopsStarted reports whether any session was handed to an event loop.
func loopsStarted(e *Engine) bool {
	e.loops.once.Do(func() {}) // orders the read after a pick's start
	return len(e.loops.loops) > 0
}

// A session whose recording may wait for the disk is relayed by its own
// goroutines; the others share the event loop.
func TestBlockingRecordingStaysOutOfTheEventLoop(t *testing.T) {
	pg := postgresServer(t)
	for _, mayBlock := range []bool{false, true} {
		t.Run(fmt.Sprintf("MayBlock=%v", mayBlock), func(t *testing.T) {
			cfg := baseConfig(t, pg.demoAccount(t))
			one := 1
			cfg.Postgres.EventLoops = &one
			g := startGatewayWith(t, cfg, func(o *Options) {
				o.Recorder = claimRecorder{Recorder: recordertest.New(), claim: mayBlock}
			})
			c := connectPgx(t, g.connString(testUser, testPassword, "demo"))
			if _, err := c.Exec(context.Background(), "select 1"); err != nil {
				t.Fatal(err)
			}
			if inLoop := loopsStarted(g.engine); inLoop == mayBlock {
				t.Errorf("a session with MayBlock %v: relayed by the event loop = %v", mayBlock, inLoop)
			}
			_ = c.Close(context.Background())
		})
	}
}

// BenchmarkFsyncAlwaysEventLoop measures whether a recording append that
// waits for its fsync (spool.fsync: always) stalls the other sessions of
// an event loop: pgbench -S, 8 clients, one event loop, recording into an
// fsync-always spool on disk, once with the sessions kept in the loop (a
// recorder claiming its appends never block, as the engine assumed when it
// looked at the account's mode alone) and once as the engine decides now
// (goroutine relay, where concurrent appends share one fsync).
//
//	go test ./gateway/postgres -run '^$' -bench FsyncAlwaysEventLoop -benchtime 1x
func BenchmarkFsyncAlwaysEventLoop(b *testing.B) {
	pg := postgresServer(b)
	initPgbench(b, pg)
	seconds := max(1, testenv.BenchSeconds(b, 20)/2)
	tps := map[bool]float64{}
	for _, inLoop := range []bool{true, false} {
		cfg := benchConfig(b, pg, true)
		one := 1
		cfg.Postgres.EventLoops = &one
		g := startGatewayWith(b, cfg, func(o *Options) {
			o.Recorder = claimRecorder{Recorder: benchrec.SpoolRecorder(b, spool.FsyncAlways), claim: !inLoop}
			o.Logger = slog.New(slog.DiscardHandler)
		})
		tg := pgbenchTarget{name: "gateway", host: g.host, port: g.port, user: testUser, password: testPassword}
		tps[inLoop] = tg.tps(b, "simple", 8, seconds)
		if got := loopsStarted(g.engine); got != inLoop {
			b.Fatalf("sessions relayed by the event loop = %v, want %v", got, inLoop)
		}
		g.shutdown()
	}
	b.ReportMetric(tps[true], "tps_fsync_always_in_loop")
	b.ReportMetric(tps[false], "tps_fsync_always_goroutines")
	b.ReportMetric(tps[false]/tps[true], "ratio_goroutines_over_loop")
	fmt.Printf("\nspool.fsync: always, pgbench -S, 8 clients, one event loop, %ds per run, %d CPUs\n", seconds, runtime.NumCPU())
	fmt.Printf("  sessions kept in the event loop  %8.0f tps (each fsync holds up the loop's other sessions)\n", tps[true])
	fmt.Printf("  goroutine relay (the engine now) %8.0f tps (concurrent appends share an fsync)\n", tps[false])
	fmt.Printf("  goroutines / loop                %8.2f\n", tps[false]/tps[true])
}
