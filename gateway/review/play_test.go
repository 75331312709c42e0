package review_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/review/reviewtest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// fakeClock records the pauses a replay takes instead of taking them.
type fakeClock struct {
	now    time.Time
	pauses []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.pauses = append(c.pauses, d)
	c.now = c.now.Add(d)
	return nil
}

// TestReplay plays the sample SSH session, indexed as the collector writes
// it: the pauses between chunks are the recorded ones, scaled by speed and
// capped by the idle limit; --from draws the earlier chunks at once; the
// sizes are reported; no string sequence (the OSC title, the OSC 52
// clipboard write) reaches the output.
func TestReplay(t *testing.T) {
	f, c := newClient(t)
	id := reviewtest.UniqueID("s-")
	m, events, doc := reviewtest.SampleSSHSession(id, reviewtest.UniqueID("u"), schema.StatusEnded)
	f.PutSession(doc)
	f.IndexEvents(m, events...)
	pgID := reviewtest.UniqueID("s-")
	m, pgEvents, pgDoc := reviewtest.SampleSession(pgID, "alice", schema.StatusEnded)
	f.PutSession(pgDoc)
	f.IndexEvents(m, pgEvents...)

	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	// Output chunks at 150, 1900, 2000, 3000 and 6000 ms; resizes at 100
	// and 5000 ms (the pause before a resize is taken too).
	tests := []struct {
		name  string
		opts  review.PlayOptions
		want  []time.Duration
		sizes []review.Size
	}{
		{"recorded pace", review.PlayOptions{}, ms(50, 1750, 100, 1000, 2000, 1000), []review.Size{{80, 24}, {100, 30}}},
		{"twice as fast", review.PlayOptions{Speed: 2}, ms(25, 875, 50, 500, 1000, 500), []review.Size{{80, 24}, {100, 30}}},
		{"idle limit", review.PlayOptions{IdleLimit: time.Second}, ms(50, 1000, 100, 1000, 1000, 1000), []review.Size{{80, 24}, {100, 30}}},
		{"from 2.5 s", review.PlayOptions{From: 2500 * time.Millisecond}, ms(2000, 1000), []review.Size{{80, 24}, {100, 30}}},
		{"from a time", review.PlayOptions{FromTime: reviewtest.SampleSSHStart.Add(4 * time.Second)}, ms(1000), []review.Size{{80, 24}, {100, 30}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1e9, 0)}
			var sizes []review.Size
			opts := tt.opts
			opts.Now, opts.Sleep = clock.Now, clock.Sleep
			opts.OnResize = func(s review.Size) { sizes = append(sizes, s) }
			var out bytes.Buffer
			if err := c.Replay(testContext(t), id, &out, opts); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(clock.pauses, tt.want) {
				t.Errorf("pauses %v, want %v", clock.pauses, tt.want)
			}
			if !slices.Equal(sizes, tt.sizes) {
				t.Errorf("sizes %v, want %v", sizes, tt.sizes)
			}
			got := out.String()
			if strings.Contains(got, "\x1b]") || strings.Contains(got, "cm0gLXJmIH4K") {
				t.Errorf("a string sequence reached the output: %q", got)
			}
			for _, want := range []string{"\x1b[01;34mreports\x1b[0m  notes.txt", "secret plan \x1b[31mB\x1b[0m", "rm -rf /tmp/payroll_archive"} {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q: %q", want, got)
				}
			}
		})
	}
	t.Run("postgres session", func(t *testing.T) {
		err := c.Replay(testContext(t), pgID, &bytes.Buffer{}, review.PlayOptions{})
		if !errors.Is(err, review.ErrNoTerminal) || !strings.Contains(err.Error(), "postgres session") {
			t.Errorf("Replay of a PostgreSQL session = %v, want ErrNoTerminal naming it", err)
		}
	})
	t.Run("from past the end", func(t *testing.T) {
		err := c.Replay(testContext(t), id, &bytes.Buffer{}, review.PlayOptions{From: time.Hour})
		if err == nil || !strings.Contains(err.Error(), "past its end") {
			t.Errorf("Replay from past the end = %v", err)
		}
	})
}

// TestReplayFollowsLiveSession: playing an active session plays what is
// recorded, then what arrives, and returns when the session ends.
func TestReplayFollowsLiveSession(t *testing.T) {
	f, c := newClient(t)
	id := reviewtest.UniqueID("s-")
	m, events, doc := reviewtest.SampleSSHSession(id, reviewtest.UniqueID("u"), schema.StatusActive)
	f.PutSession(doc)
	f.IndexEvents(m, events[:5]...)
	out := &testenv.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- c.Replay(testContext(t), id, out, review.PlayOptions{Speed: 1000, Interval: 50 * time.Millisecond})
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("replay output lacks %q: %q", want, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("notes.txt")
	f.IndexEvents(m, events[5:]...)
	waitFor("secret plan")
	_, _, ended := reviewtest.SampleSSHSession(id, m.User, schema.StatusEnded)
	f.PutSession(ended)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("replay did not stop after the session ended")
	}
	if n := strings.Count(out.String(), "secret plan"); n != 1 {
		t.Errorf("a chunk played %d times, want once", n)
	}
}
