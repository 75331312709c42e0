package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		err := runKillChild(dir, os.Getenv("PAMTRAIL_SPOOL_CHILD_KEYS"))
		fmt.Fprintln(os.Stderr, "spool writer child:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

// testLogger captures spool log output for assertions.
type testLogger = testenv.SyncBuffer

// testOptions fills the options a test leaves zero with the values the
// gateway's config defaults to, so each test names only the options it is
// about. The spool has no defaults of its own, and its tests cannot import
// gateway/config, which imports the spool.
func testOptions(opts Options) Options {
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = 64 << 20
	}
	if opts.MaxRecordBytes == 0 {
		opts.MaxRecordBytes = 16 << 20
	}
	if opts.Overflow == "" {
		opts.Overflow = OverflowRefuse
	}
	if opts.Fsync == "" {
		opts.Fsync = FsyncInterval
	}
	if opts.FsyncInterval == 0 {
		opts.FsyncInterval = 100 * time.Millisecond
	}
	return opts
}

// openT opens a spool with testOptions, and a new key unless opts has one.
func openT(t testing.TB, dir string, opts Options) *Spool {
	t.Helper()
	if opts.Keys == nil {
		opts.Keys = testenv.Keyring(t, 1)
	}
	s, err := Open(dir, testOptions(opts))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func payload(i int) []byte {
	return fmt.Appendf(nil, "record-%06d-%s", i, strings.Repeat("x", i%97))
}

func appendN(t testing.TB, s *Spool, from, n int) []Position {
	t.Helper()
	pos := make([]Position, 0, n)
	for i := from; i < from+n; i++ {
		p, err := s.Append(payload(i))
		if err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
		pos = append(pos, p)
	}
	return pos
}

// drain reads and acks everything pending, returning the payloads.
func drain(t testing.TB, s *Spool, batch int) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		b, err := s.ReadBatch(batch, 1<<20)
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		if b.Len() == 0 {
			return out
		}
		out = append(out, b.Records...)
		if err := s.Ack(b.Cursor); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
}

func wantPayloads(t testing.TB, got [][]byte, from, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d records, want %d", len(got), n)
	}
	for i, p := range got {
		if want := payload(from + i); !bytes.Equal(p, want) {
			t.Fatalf("record %d = %q, want %q", i, p, want)
		}
	}
}

func TestAppendReadAckAcrossSegments(t *testing.T) {
	tests := []struct {
		name         string
		segmentBytes int64
		n, batch     int
	}{
		{"one segment", 0, 50, 7},
		{"many small segments", 2048, 300, 13},
		{"batch larger than backlog", 4096, 40, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{SegmentBytes: tt.segmentBytes, MaxRecordBytes: 1024})
			appendN(t, s, 0, tt.n)
			wantPayloads(t, drain(t, s, tt.batch), 0, tt.n)
			st := s.Stats()
			if st.RecordsPending != 0 || st.AckedSeq != uint64(tt.n)+1 {
				t.Fatalf("stats after drain: %+v", st)
			}
			if st.Segments != 1 {
				t.Fatalf("fully acked sealed segments should be deleted; %d remain", st.Segments)
			}
		})
	}
}

func TestReadBatchWithoutAckRepeats(t *testing.T) {
	s := openT(t, t.TempDir(), Options{SegmentBytes: 2048, MaxRecordBytes: 1024})
	appendN(t, s, 0, 30)
	a, err := s.ReadBatch(10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ReadBatch(10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 10 || b.Len() != 10 || a.Seqs[0] != b.Seqs[0] || a.Seqs[9] != b.Seqs[9] {
		t.Fatalf("un-acked batches differ: %v vs %v", a.Seqs, b.Seqs)
	}
	wantPayloads(t, b.Records, 0, 10)
}

func TestReadBatchLimits(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	big := bytes.Repeat([]byte("b"), 1000)
	for range 5 {
		if _, err := s.Append(big); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		maxRecords, maxBytes, want int
	}{
		{10, 2500, 2},
		{10, 10, 1}, // always at least one record
		{3, 1 << 20, 3},
		{10, 1 << 20, 5},
	}
	for _, tt := range tests {
		b, err := s.ReadBatch(tt.maxRecords, tt.maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		if b.Len() != tt.want {
			t.Errorf("ReadBatch(%d, %d) = %d records, want %d", tt.maxRecords, tt.maxBytes, b.Len(), tt.want)
		}
	}
	if _, err := s.ReadBatch(0, 1); err == nil || !strings.Contains(err.Error(), "maxRecords") {
		t.Errorf("ReadBatch(0, 1) error = %v, want one naming maxRecords", err)
	}
}

func TestRestartResumesAtAck(t *testing.T) {
	dir := t.TempDir()
	ring := testenv.Keyring(t, 1)
	opts := Options{Keys: ring, SegmentBytes: 4096, MaxRecordBytes: 1024}
	s := openT(t, dir, opts)
	appendN(t, s, 0, 100)
	b, err := s.ReadBatch(37, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(b.Cursor); err != nil {
		t.Fatal(err)
	}
	unacked, err := s.ReadBatch(5, 1<<20) // read but never acked: must come back
	if err != nil || unacked.Len() != 5 {
		t.Fatalf("ReadBatch: %d, %v", unacked.Len(), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir, opts)
	appendN(t, s, 100, 10)
	wantPayloads(t, drain(t, s, 16), 37, 73)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir, opts)
	if got := drain(t, s, 16); len(got) != 0 {
		t.Fatalf("after a full ack and restart, %d records came back", len(got))
	}
}

func TestMissingAckFileReuploadsEverything(t *testing.T) {
	dir := t.TempDir()
	ring := testenv.Keyring(t, 1)
	s := openT(t, dir, Options{Keys: ring})
	appendN(t, s, 0, 10)
	b, _ := s.ReadBatch(4, 1<<20)
	if err := s.Ack(b.Cursor); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, ackFileName)); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{Keys: ring})
	wantPayloads(t, drain(t, s, 100), 0, 10)
}

func TestUnreadableAckFileIsAnError(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not an ack file at all, not at all!!!!!!")},
		{"bad checksum", func() []byte { b := (ackRecord{seq: 5, segment: 1, offset: 64}).marshal(); b[10] ^= 1; return b }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ring := testenv.Keyring(t, 1)
			s := openT(t, dir, Options{Keys: ring})
			appendN(t, s, 0, 3)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, ackFileName), tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir, testOptions(Options{Keys: ring}))
			if err == nil || !strings.Contains(err.Error(), "ack file") || !strings.Contains(err.Error(), "refusing to guess") {
				t.Fatalf("Open with %s ack file: err = %v", tt.name, err)
			}
		})
	}
}

func TestConcurrentAppenders(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNone} {
		t.Run(string(policy), func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{Fsync: policy, FsyncInterval: 5 * time.Millisecond, SegmentBytes: 64 << 10, MaxRecordBytes: 1024})
			const writers, each = 8, 200
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						if _, err := s.Append(fmt.Appendf(nil, "w%d-%d", w, i)); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			// Read concurrently with the writers; per writer, records must
			// come out in append order, each exactly once.
			seen := map[string]bool{}
			next := make([]int, writers)
			deadline := time.Now().Add(20 * time.Second)
			for len(seen) < writers*each {
				if time.Now().After(deadline) {
					t.Fatalf("only %d of %d records readable", len(seen), writers*each)
				}
				b, err := s.ReadBatch(100, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range b.Records {
					if seen[string(r)] {
						t.Fatalf("record %s read twice after ack", r)
					}
					seen[string(r)] = true
					var w, i int
					if _, err := fmt.Sscanf(string(r), "w%d-%d", &w, &i); err != nil || i != next[w] {
						t.Fatalf("record %s out of order (want w%d-%d): %v", r, w, next[w], err)
					}
					next[w]++
				}
				if b.Len() > 0 {
					if err := s.Ack(b.Cursor); err != nil {
						t.Fatal(err)
					}
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

func TestWaitDurable(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNone} {
		t.Run(string(policy), func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{Fsync: policy, FsyncInterval: 20 * time.Millisecond})
			pos := appendN(t, s, 0, 10)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.WaitDurable(ctx, pos[9]); err != nil {
				t.Fatal(err)
			}
			if d := s.Stats().DurableSeq; d < pos[9].Seq {
				t.Fatalf("DurableSeq %d < %d after WaitDurable", d, pos[9].Seq)
			}
		})
	}
}

func TestWaitDurableHonoursContext(t *testing.T) {
	s := openT(t, t.TempDir(), Options{Fsync: FsyncInterval, FsyncInterval: time.Hour})
	pos := appendN(t, s, 0, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.WaitDurable(ctx, pos[0]); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitDurable with cancelled ctx = %v", err)
	}
}

func TestCloseIsIdempotentAndRefusesAppends(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	appendN(t, s, 0, 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Append([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := s.ReadBatch(1, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadBatch after Close = %v, want ErrClosed", err)
	}
}

func TestSecondOpenOfSameDirFails(t *testing.T) {
	dir := t.TempDir()
	ring := testenv.Keyring(t, 1)
	openT(t, dir, Options{Keys: ring})
	if s, err := Open(dir, testOptions(Options{Keys: ring})); err == nil {
		_ = s.Close()
		t.Fatal("a second Open of a spool in use succeeded")
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	ring := testenv.Keyring(t, 1)
	s := openT(t, dir, Options{Keys: ring, SegmentBytes: 4096, MaxRecordBytes: 1024})
	appendN(t, s, 0, 100)
	b, _ := s.ReadBatch(10, 1<<20)
	if err := s.Ack(b.Cursor); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, dir)
	flipByte(t, segs[len(segs)-1], -3) // make recovery write a .broken copy
	s = openT(t, dir, Options{Keys: ring, SegmentBytes: 4096, MaxRecordBytes: 1024})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("spool dir mode %#o, want 0700", perm)
	}
	entries, _ := os.ReadDir(dir)
	var kinds []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, e.Name())
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", e.Name(), perm)
		}
	}
	joined := strings.Join(kinds, " ")
	for _, want := range []string{segmentExt, brokenExt, ackFileName, lockFileName} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %s file checked among %v", want, kinds)
		}
	}
}

// TestOptionsValidation: the spool has no defaults, so a missing option
// is an error naming it, as is an invalid one; nothing is created.
func TestOptionsValidation(t *testing.T) {
	ring := testenv.Keyring(t, 1)
	tests := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no keys", func(o *Options) { o.Keys = nil }, "Keys is required"},
		{"no segment size", func(o *Options) { o.SegmentBytes = 0 }, "SegmentBytes is required"},
		{"no record size", func(o *Options) { o.MaxRecordBytes = 0 }, "MaxRecordBytes is required"},
		{"no overflow policy", func(o *Options) { o.Overflow = "" }, "Overflow is required"},
		{"no fsync policy", func(o *Options) { o.Fsync = "" }, "Fsync is required"},
		{"no fsync interval", func(o *Options) { o.FsyncInterval = 0 }, "FsyncInterval is required"},
		{"bad fsync", func(o *Options) { o.Fsync = "sometimes" }, "Fsync"},
		{"bad overflow", func(o *Options) { o.Overflow = "explode" }, "Overflow"},
		{"negative fsync interval", func(o *Options) { o.FsyncInterval = -time.Second }, "FsyncInterval"},
		{"negative record size", func(o *Options) { o.MaxRecordBytes = -1 }, "MaxRecordBytes"},
		{"quota below two segments", func(o *Options) { o.SegmentBytes, o.MaxBytes, o.MaxRecordBytes = 1<<20, 1<<20, 1024 }, "MaxBytes"},
		{"segment below record", func(o *Options) { o.SegmentBytes, o.MaxRecordBytes = 1000, 4096 }, "SegmentBytes"},
		{"negative quota", func(o *Options) { o.MaxBytes = -1 }, "MaxBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(Options{Keys: ring})
			tt.change(&opts)
			dir := filepath.Join(t.TempDir(), "spool")
			_, err := Open(dir, opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open(%+v) = %v, want an error naming %s", opts, err, tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused Open left %s behind (stat: %v)", dir, err)
			}
		})
	}
	s := openT(t, t.TempDir(), Options{Keys: ring, MaxRecordBytes: 10})
	if _, err := s.Append(make([]byte, 11)); err == nil || !strings.Contains(err.Error(), "MaxRecordBytes") {
		t.Fatalf("oversized Append = %v", err)
	}
}

func TestStatsOldestUnacked(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	if st := s.Stats(); !st.OldestUnacked.IsZero() || st.RecordsPending != 0 {
		t.Fatalf("empty spool stats: %+v", st)
	}
	before := time.Now()
	appendN(t, s, 0, 3)
	st := s.Stats()
	if st.RecordsPending != 3 || st.OldestUnacked.Before(before.Add(-time.Second)) || st.OldestUnacked.After(time.Now()) {
		t.Fatalf("stats: %+v (appended after %v)", st, before)
	}
	if st.BytesOnDisk <= segmentHeaderSize {
		t.Fatalf("BytesOnDisk = %d", st.BytesOnDisk)
	}
}

// segmentFiles lists the segment files of dir in order.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return matches
}

// flipByte inverts one byte of a file; a negative offset counts from the end.
func flipByte(t testing.TB, path string, off int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += len(data)
	}
	data[off] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// putCRC recomputes the CRC of a complete frame in place.
func putCRC(frame []byte) {
	fh := parseFrameHeader(frame)
	c := frameCRC(frame, frame[frameHeaderSize:frameHeaderSize+int(fh.length)])
	frame[4], frame[5], frame[6], frame[7] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
}

// TestReadBatchAfterPipelines reads batches ahead of the acknowledged
// position, across segment boundaries, and acknowledges them in order: every
// record is read exactly once, and a cursor behind the ack reads from the ack.
func TestReadBatchAfterPipelines(t *testing.T) {
	tests := []struct {
		name  string
		batch int
		ahead int // batches read before the first ack
	}{
		{name: "one ahead", batch: 7, ahead: 1},
		{name: "four ahead", batch: 7, ahead: 4},
		{name: "whole spool ahead", batch: 10, ahead: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{SegmentBytes: 2048, MaxRecordBytes: 1024})
			appendN(t, s, 0, 95)
			var inFlight []Batch
			var got [][]byte
			var last *Cursor
			for {
				for len(inFlight) < tt.ahead {
					var b Batch
					var err error
					if last == nil {
						b, err = s.ReadBatch(tt.batch, 1<<20)
					} else {
						b, err = s.ReadBatchAfter(*last, tt.batch, 1<<20)
					}
					if err != nil {
						t.Fatal(err)
					}
					if b.Len() == 0 {
						break
					}
					inFlight = append(inFlight, b)
					last = &b.Cursor
				}
				if len(inFlight) == 0 {
					break
				}
				head := inFlight[0]
				inFlight = inFlight[1:]
				got = append(got, head.Records...)
				if err := s.Ack(head.Cursor); err != nil {
					t.Fatal(err)
				}
			}
			wantPayloads(t, got, 0, 95)
			if st := s.Stats(); st.RecordsPending != 0 {
				t.Errorf("%d records pending after acking every batch", st.RecordsPending)
			}
		})
	}
}

func TestReadBatchAfterAnOldCursorReadsFromTheAck(t *testing.T) {
	s := openT(t, t.TempDir(), Options{SegmentBytes: 2048, MaxRecordBytes: 1024})
	appendN(t, s, 0, 30)
	first, err := s.ReadBatch(10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.ReadBatchAfter(first.Cursor, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(second.Cursor); err != nil {
		t.Fatal(err)
	}
	// first's cursor is behind the ack now: reading after it must not
	// return records already acknowledged.
	third, err := s.ReadBatchAfter(first.Cursor, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	wantPayloads(t, third.Records, 20, 10)
}
