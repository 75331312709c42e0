//go:build linux

package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// TestOutOfSpace fills a real, tiny tmpfs. With preallocation, Append sees
// ENOSPC synchronously; without it, the background write fails, the file is
// cut back, and Append refuses until space returns (under FsyncAlways, the
// Append waiting for that write fails instead of blocking). Either way
// nothing accepted is lost or corrupted.
func TestOutOfSpace(t *testing.T) {
	for _, tt := range []struct {
		prealloc bool
		fsync    FsyncPolicy
		failsIn  string // the step that must hit ENOSPC
		// maybeLands: the failed Append's record was already buffered and
		// may still be written once space returns.
		maybeLands bool
	}{
		{true, FsyncInterval, "reserving space", false},
		{false, FsyncInterval, "writing", false},
		{false, FsyncAlways, "not durable", true},
	} {
		prealloc := tt.prealloc
		t.Run(fmt.Sprintf("prealloc=%v/fsync=%s", prealloc, tt.fsync), func(t *testing.T) {
			mnt := smallTmpfs(t, 2<<20)
			filler := filepath.Join(mnt, "filler")
			if err := os.WriteFile(filler, make([]byte, 1<<20+512<<10), 0o600); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(mnt, "spool")
			ring := testenv.Keyring(t, 1)
			// Segments larger than the free space: the disk fills up in the
			// middle of a segment, not while creating one.
			opts := Options{Keys: ring, SegmentBytes: 1 << 20, MaxRecordBytes: 2048, FsyncInterval: 2 * time.Millisecond, Fsync: tt.fsync}
			s := openT(t, dir, opts)
			if !prealloc {
				s.mu.Lock()
				s.prealloc = false
				s.mu.Unlock()
			}
			rec := bytes.Repeat([]byte("z"), 1900)
			accepted := 0
			deadline := time.Now().Add(20 * time.Second)
			var err error
			for time.Now().Before(deadline) {
				if _, err = s.Append(append(payload(accepted), rec...)); err != nil {
					break
				}
				accepted++
			}
			if !errors.Is(err, ErrSpoolFull) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Append on a full disk = %v, want ErrSpoolFull wrapping ENOSPC", err)
			}
			if !strings.Contains(err.Error(), tt.failsIn) {
				t.Fatalf("ENOSPC hit another step than %q: %v", tt.failsIn, err)
			}
			if accepted == 0 {
				t.Fatal("the disk was full before the test started")
			}
			// Space comes back: appends resume and nothing was lost.
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			afterFree := append([]byte("after-free-"), rec...)
			if _, err := s.Append(afterFree); err != nil {
				t.Fatalf("Append after space was freed: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, dir, opts)
			got := drain(t, s, 100)
			if n := len(got); n > 0 && bytes.Equal(got[n-1], afterFree) {
				got = got[:n-1]
			} else {
				t.Fatal("the record appended after space was freed is missing")
			}
			if tt.maybeLands && len(got) == accepted+1 {
				accepted++
			}
			if len(got) != accepted {
				t.Fatalf("after reopen: %d records, %d accepted", len(got), accepted)
			}
			for i, p := range got {
				if !bytes.HasPrefix(p, payload(i)) {
					t.Fatalf("record %d = %.20q", i, p)
				}
			}
			if lost := s.Stats().RecoveredLost; lost != 0 {
				t.Fatalf("RecoveredLost = %d: the full disk corrupted a segment", lost)
			}
		})
	}
}

// smallTmpfs mounts a tmpfs of the given size under a temporary directory.
// It needs root (CI runs as root); anything else fails with a clear message
// rather than skipping.
func smallTmpfs(t *testing.T, size int) string {
	t.Helper()
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("mounting a %d-byte tmpfs at %s to create a real out-of-space condition: %v (this test needs root, as in CI)", size, mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmounting %s: %v", mnt, err)
		}
	})
	return mnt
}
