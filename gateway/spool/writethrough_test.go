package spool

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// TestBacklogReached: the channel closes exactly when the asked number of
// written, unacknowledged records is reached, counting from the
// acknowledged position.
func TestBacklogReached(t *testing.T) {
	s := openT(t, t.TempDir(), Options{Fsync: FsyncAlways}) // Append returns once written
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	next := 0
	// Each step: acknowledge ack records, ask for a backlog of 3, then
	// append one record at a time; want says after which appends the
	// channel is closed.
	for _, step := range []struct {
		ack  int
		want []bool
	}{
		{0, []bool{false, false, true}},
		{2, []bool{false, true}}, // one record is still pending
		{0, nil},                 // three pending: closed at once
	} {
		if step.ack > 0 {
			b, err := s.ReadBatch(step.ack, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Ack(b.Cursor); err != nil {
				t.Fatal(err)
			}
		}
		ch := s.BacklogReached(3)
		if step.want == nil && !closed(ch) {
			t.Fatal("a backlog already there must close the channel at once")
		}
		for i, want := range step.want {
			appendN(t, s, next, 1)
			next++
			if closed(ch) != want {
				t.Fatalf("after acknowledging %d and appending %d: closed=%v, want %v", step.ack, i+1, !want, want)
			}
		}
	}
}

// TestAppendedRecordsAreInTheKernel: what a killed gateway leaves on disk
// (a copy of its files, taken while it still runs) holds every record whose
// Append returned under the interval policy, even when the flusher has not
// run; under none they may still be buffered.
func TestAppendedRecordsAreInTheKernel(t *testing.T) {
	for _, tt := range []struct {
		fsync   FsyncPolicy
		wantAll bool
	}{
		{FsyncInterval, true},
		{FsyncNone, false},
	} {
		t.Run(string(tt.fsync), func(t *testing.T) {
			ring := testenv.Keyring(t, 1)
			dir := t.TempDir()
			s := openT(t, dir, Options{Keys: ring, Fsync: tt.fsync, FsyncInterval: time.Hour})
			appendN(t, s, 0, 10)
			left := t.TempDir()
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Name() == "lock" {
					continue
				}
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(left, e.Name()), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			copyOf := openT(t, left, Options{Keys: ring})
			b, err := copyOf.ReadBatch(100, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.Len(); (got == 10) != tt.wantAll {
				t.Fatalf("fsync %s: the files held %d of 10 appended records", tt.fsync, got)
			}
		})
	}
}
