package spool

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

func TestQuotaRefuse(t *testing.T) {
	dir := t.TempDir()
	ring := testenv.Keyring(t, 1)
	opts := Options{Keys: ring, SegmentBytes: 8 << 10, MaxBytes: 32 << 10, MaxRecordBytes: 1024}
	s := openT(t, dir, opts)
	rec := bytes.Repeat([]byte("q"), 1000)
	accepted := 0
	var err error
	for range 1000 {
		if _, err = s.Append(rec); err != nil {
			break
		}
		accepted++
	}
	if !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("Append past the quota = %v, want ErrSpoolFull", err)
	}
	if st := s.Stats(); st.BytesOnDisk > opts.MaxBytes || st.Dropped != 0 {
		t.Fatalf("stats at quota: %+v", st)
	}
	// Nothing accepted was lost, and uploading frees the space again.
	if got := drain(t, s, 1000); len(got) != accepted {
		t.Fatalf("drained %d, accepted %d", len(got), accepted)
	}
	if _, err := s.Append(rec); err != nil {
		t.Fatalf("Append after the backlog was acknowledged: %v", err)
	}
}

func TestQuotaDropOldest(t *testing.T) {
	dir := t.TempDir()
	ring := testenv.Keyring(t, 1)
	opts := Options{Keys: ring, SegmentBytes: 8 << 10, MaxBytes: 32 << 10, MaxRecordBytes: 1024, Overflow: OverflowDropOldest}
	s := openT(t, dir, opts)
	const n = 200
	for i := range n {
		if _, err := s.Append(append(payload(i), bytes.Repeat([]byte("d"), 900)...)); err != nil {
			t.Fatalf("Append %d under drop-oldest: %v", i, err)
		}
	}
	st := s.Stats()
	if st.Dropped == 0 || st.BytesOnDisk > opts.MaxBytes {
		t.Fatalf("stats: %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// After a restart the survivors are exactly the newest records, with
	// nothing reported lost: the drop moved the ack forward durably.
	s = openT(t, dir, opts)
	got := drain(t, s, 64)
	if uint64(len(got))+st.Dropped != n {
		t.Fatalf("%d survivors + %d dropped != %d appended", len(got), st.Dropped, n)
	}
	first := int(st.Dropped)
	for i, p := range got {
		if !bytes.HasPrefix(p, payload(first+i)) {
			t.Fatalf("survivor %d = %.20q, want payload %d", i, p, first+i)
		}
	}
	if lost := s.Stats().RecoveredLost; lost != 0 {
		t.Fatalf("RecoveredLost = %d after drops; drops are not losses to recover", lost)
	}
}
