package uploader

import (
	"context"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

func TestServerRejectsFirstRequests(t *testing.T) {
	tests := []struct {
		name             string
		fail, partial    int
		wantAtLeastTries int
	}{
		{"unavailable once", 1, 0, 2},
		{"unavailable 4 times", 4, 0, 5},
		{"partial success twice", 0, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startOTLPServer(t, "127.0.0.1:0", nil)
			srv.set(func(s *otlpServer) { s.failNext, s.partialNext = tt.fail, tt.partial })
			sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
			u := newUploader(t, sp, fastConfig(srv.addr))
			appendRecords(t, sp, "s", 0, 25)
			if err := u.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "spool drained", 10*time.Second, func() bool { st := u.Stats(); return st.Pending == 0 && st.Uploaded == 25 })
			if n := srv.requestCount(); n < tt.wantAtLeastTries {
				t.Fatalf("%d requests, want at least %d", n, tt.wantAtLeastTries)
			}
			got := seqsBySession(srv.snapshot())["s"]
			// Rejected requests stored nothing; partially successful ones were
			// stored and sent again (the collector dedupes by doc id), after
			// a failure starting with a one-record probe. Either way the last
			// 25 arrivals are the complete session in order.
			sizes := srv.requestSizes()
			stored := 0
			for _, n := range sizes[tt.fail:] {
				stored += n
			}
			if len(got) != stored {
				t.Fatalf("%d records arrived, want %d (requests of %v records, the first %d rejected): %v", len(got), stored, sizes, tt.fail, got)
			}
			wantExactlyOnceInOrder(t, map[string][]int64{"s": got[len(got)-25:]}, "s", 25)
			if st := u.Stats(); st.Failures != uint64(tt.fail+tt.partial) {
				t.Fatalf("Failures = %d, want %d", st.Failures, tt.fail+tt.partial)
			}
		})
	}
}

// TestRetryAfterFailureIsAProbe: after a failed request the uploader sends
// one record alone, and full requests again once that one is accepted, so
// retrying against a collector that refuses costs next to nothing.
func TestRetryAfterFailureIsAProbe(t *testing.T) {
	tests := []struct {
		name          string
		fail, partial int
	}{
		{"rejected three times", 3, 0},
		{"partial success twice", 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startOTLPServer(t, "127.0.0.1:0", nil)
			srv.set(func(s *otlpServer) { s.failNext, s.partialNext = tt.fail, tt.partial })
			sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
			cfg := fastConfig(srv.addr)
			// One request at a time, so the server's refusals meet the
			// requests in order.
			cfg.MaxBatchRecords, cfg.MaxInFlight = 100, 1
			u := newUploader(t, sp, cfg)
			appendRecords(t, sp, "s", 0, 1000)
			if err := u.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "spool drained", 10*time.Second, func() bool { return u.Stats().Pending == 0 })
			sizes := srv.requestSizes()
			failed := tt.fail + tt.partial
			// A full request fails; each failed probe is followed by
			// another, the accepted one by full requests.
			if len(sizes) < 1+failed || sizes[0] != 100 {
				t.Fatalf("requests of %v records: want a full request of 100 first, then probes of %d", sizes, probeRecords)
			}
			probes := sizes[1 : 1+failed]
			for i, n := range probes {
				if n != probeRecords {
					t.Fatalf("request %d after the first failure has %d records, want a probe of %d (all: %v)", i, n, probeRecords, sizes)
				}
			}
			if rest := sizes[1+failed:]; len(rest) < 9 || rest[0] != 100 && rest[0] != 99 {
				t.Fatalf("after the probes: requests of %v records, want full requests again", rest)
			}
			// The partially accepted records arrive twice.
			wantEachArrived(t, srv.snapshot(), "s", 1000)
		})
	}
}

// TestBacklogMovesSoonAfterCollectorReturns: after a long outage (a backoff
// that would have grown well past the wait it is capped at), the first
// retry after the collector is back comes within the cap (2 s, or the
// interval if shorter), and the backlog follows in full requests.
func TestBacklogMovesSoonAfterCollectorReturns(t *testing.T) {
	tests := []struct {
		name                    string
		interval, initial       time.Duration
		failures                uint64
		records, recordsPerSend int
	}{
		// Nine failures: uncapped, the next wait would be 20 ms × 2^9 ≈ 10 s.
		{"interval below the cap", time.Second, 20 * time.Millisecond, 9, 10, 2000},
		// Seven failures: capped by the interval alone, the next wait would
		// be 100 ms × 2^7 = 12.8 s, jittered to 6.4-12.8 s.
		{"interval above the cap", 30 * time.Second, 100 * time.Millisecond, 7, 5000, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startOTLPServer(t, "127.0.0.1:0", nil)
			addr := srv.addr
			srv.stop()
			sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
			cfg := fastConfig(addr)
			cfg.Interval, cfg.InitialBackoff, cfg.MaxBackoff, cfg.MaxBatchRecords = tt.interval, tt.initial, time.Minute, tt.recordsPerSend
			u := newUploader(t, sp, cfg)
			if err := u.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			appendRecords(t, sp, "s1", 0, tt.records)
			waitFor(t, "upload failures while the collector is down", 30*time.Second, func() bool { return u.Stats().Failures >= tt.failures })
			srv.listen(t, addr, nil)
			back := time.Now()
			var failuresAtFirstAck uint64
			deadline := time.Now().Add(30 * time.Second)
			for u.Stats().Uploaded == 0 {
				if time.Now().After(deadline) {
					t.Fatal("nothing acknowledged 30 s after the collector came back")
				}
				failuresAtFirstAck = u.Stats().Failures
				time.Sleep(time.Millisecond)
			}
			waitFor(t, "the backlog acknowledged after the collector came back", 30*time.Second, func() bool { return u.Stats().Uploaded == uint64(tt.records) })
			if waited, limit := time.Since(back), min(tt.interval, maxRetryDelay)+maxReconnectDelay+time.Second; waited > limit {
				t.Fatalf("the backlog was acknowledged %v after the collector came back, want within %v", waited.Round(time.Millisecond), limit)
			}
			// The probe found the connection ready, and the full requests
			// after it went out on that same connection.
			if n := u.Stats().Failures - failuresAtFirstAck; n != 0 {
				t.Fatalf("%d upload failures after the first acknowledgement: requests after the probe met a connection not yet back", n)
			}
			// Requests in flight at once arrive in any order.
			wantEachArrived(t, srv.snapshot(), "s1", tt.records)
		})
	}
}

// wantEachArrived checks that records 0..n-1 of session sid each arrived
// at least once.
func wantEachArrived(t *testing.T, recs []receivedLog, sid string, n int) {
	t.Helper()
	arrived := map[int64]bool{}
	for _, seq := range seqsBySession(recs)[sid] {
		arrived[seq] = true
	}
	for seq := range int64(n) {
		if !arrived[seq] {
			t.Fatalf("session %s: record %d never arrived (%d distinct of %d did)", sid, seq, len(arrived), n)
		}
	}
}
