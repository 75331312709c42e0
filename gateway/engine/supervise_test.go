package engine

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestSupervise: each reason to end a session is reported as itself, with
// the end the engine or the limit gives it, no earlier than it is due; and
// activity or a running statement postpone the idle timeout. The limits
// are short and SuperviseSession's return is awaited, so the test needs no
// fixed sleep; the lower bounds hold however slow the machine is.
func TestSupervise(t *testing.T) {
	const idle = 60 * time.Millisecond
	closed := make(chan struct{})
	close(closed)
	idleEnd := End[string]{Reason: schema.EndIdleTimeout, Message: "no activity for 60ms (idle_timeout)", Notice: "notice 3"}
	tests := []struct {
		name string
		// setup returns the limits and relay channels of one session.
		setup func(start time.Time) (Limits, chan int, chan int)
		want  StopReason
		end   End[string]
		// atLeast is the earliest Supervise may return, from start.
		atLeast time.Duration
	}{
		{
			name: "idle timeout",
			setup: func(start time.Time) (Limits, chan int, chan int) {
				return limitsAt(start, idle, 0), nil, nil
			},
			want: StopIdle, atLeast: idle, end: idleEnd,
		},
		{
			name: "activity postpones the idle timeout",
			setup: func(start time.Time) (Limits, chan int, chan int) {
				l := limitsAt(start, idle, 0)
				l.Activity.Touch(start.Add(idle)) // as if bytes moved at idle
				return l, nil, nil
			},
			want: StopIdle, atLeast: 2 * idle, end: idleEnd,
		},
		{
			name: "a running statement is not idleness",
			setup: func(start time.Time) (Limits, chan int, chan int) {
				l := limitsAt(start, idle, 0)
				var asked atomic.Int32
				l.Busy = func() bool { return asked.Add(1) == 1 } // busy at the first expiry only
				return l, nil, nil
			},
			want: StopIdle, atLeast: 2 * idle, end: idleEnd,
		},
		{
			name: "max duration ends even a busy session",
			setup: func(start time.Time) (Limits, chan int, chan int) {
				l := limitsAt(start, idle, 2*idle)
				l.Busy = func() bool { return true }
				return l, nil, nil
			},
			want: StopMaxDuration, atLeast: 2 * idle,
			end: End[string]{Reason: schema.EndMaxDuration, Message: "session reached its maximum duration of 120ms (max_duration)", Notice: "notice 4"},
		},
		{
			name: "max duration counts from the session's start",
			setup: func(start time.Time) (Limits, chan int, chan int) {
				return limitsAt(start.Add(-time.Hour), 0, time.Minute), nil, nil
			},
			want: StopMaxDuration,
			end:  End[string]{Reason: schema.EndMaxDuration, Message: "session reached its maximum duration of 1m0s (max_duration)", Notice: "notice 4"},
		},
		{
			name: "end request",
			setup: func(start time.Time) (Limits, chan int, chan int) {
				l := limitsAt(start, idle, time.Hour)
				l.EndRequested = closed
				return l, nil, nil
			},
			want: StopRequested, end: End[string]{Reason: schema.EndTerminated},
		},
		{
			name: "client side ends",
			setup: func(start time.Time) (Limits, chan int, chan int) {
				client := make(chan int, 1)
				client <- 7
				return limitsAt(start, time.Hour, time.Hour), client, make(chan int)
			},
			want: StopClient, end: End[string]{Reason: "relay", Message: "7 from client"},
		},
		{
			name: "server side ends",
			setup: func(start time.Time) (Limits, chan int, chan int) {
				server := make(chan int, 1)
				server <- 9
				return limitsAt(start, time.Hour, time.Hour), make(chan int), server
			},
			want: StopServer, end: End[string]{Reason: "relay", Message: "9 from server"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			l, client, server := tt.setup(start)
			end, reason := SuperviseSession[int, string](fakeSession{}, l, client, server)
			took := time.Since(start)
			if reason != tt.want {
				t.Fatalf("SuperviseSession stopped for %d, want %d", reason, tt.want)
			}
			if end != tt.end {
				t.Errorf("end = %+v, want %+v", end, tt.end)
			}
			if took < tt.atLeast {
				t.Errorf("returned after %s, before the limit was due (%s)", took, tt.atLeast)
			}
		})
	}
}

// TestWatchLimits: an engine whose relay reports its end elsewhere gets
// the same limits, and its own end request stops the watch.
func TestWatchLimits(t *testing.T) {
	done := make(chan struct{})
	l := limitsAt(time.Now(), time.Hour, time.Hour)
	l.EndRequested = done
	got := make(chan StopReason, 1)
	go func() { got <- WatchLimits(l) }()
	close(done)
	if r := <-got; r != StopRequested {
		t.Fatalf("WatchLimits = %d, want StopRequested", r)
	}
	if r := WatchLimits(limitsAt(time.Now(), 30*time.Millisecond, 0)); r != StopIdle {
		t.Fatalf("WatchLimits = %d, want StopIdle", r)
	}
}

// fakeSession's ends say which of its methods made them.
type fakeSession struct{}

func (fakeSession) RelayEnded(r int, fromClient bool) End[string] {
	side := "server"
	if fromClient {
		side = "client"
	}
	return End[string]{Reason: "relay", Message: fmt.Sprintf("%d from %s", r, side)}
}

func (fakeSession) LimitNotice(r StopReason) string { return fmt.Sprintf("notice %d", r) }

func (fakeSession) Requested() End[string] { return End[string]{Reason: schema.EndTerminated} }

func limitsAt(start time.Time, idle, maxDuration time.Duration) Limits {
	l := Limits{Idle: idle, Activity: new(Activity), MaxDuration: maxDuration, Start: start}
	l.Activity.Touch(start)
	return l
}
