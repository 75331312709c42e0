package spool

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/keys"
)

// Crash-consistency tests in the style of etcd's WAL tests: build a spool,
// damage its files the way crashes and bad disks do, reopen, and check that
// every intact record comes back, that the loss is counted exactly, that
// appending works again and that a second reopen finds nothing new to
// repair (no error loop).

// fixture is a closed spool with known content.
type fixture struct {
	dir  string
	ring *keys.Ring
	opts Options
	n    int         // records appended: payload(0) .. payload(n-1)
	segs []segLayout // by id
	log  *testLogger // of the reopened spool
}

// segLayout is where the frames of one segment file are.
type segLayout struct {
	path   string
	frames []frameLoc
}

type frameLoc struct {
	off, end int64
	payload  int // index passed to payload()
}

func (l segLayout) last() frameLoc { return l.frames[len(l.frames)-1] }

// newFixture appends n records (with bigLast, the last one is 3000 bytes)
// into segments of segmentBytes and closes the spool.
func newFixture(t *testing.T, n int, segmentBytes int64, bigLast bool) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), ring: testenv.Keyring(t, 1), n: n}
	f.opts = testOptions(Options{Keys: f.ring, SegmentBytes: segmentBytes, MaxRecordBytes: 512})
	if bigLast {
		f.opts.MaxRecordBytes = 4096
	}
	s, err := Open(f.dir, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		p := payload(i)
		if bigLast && i == n-1 {
			p = append(p, bytes.Repeat([]byte("L"), 3000)...)
		}
		if _, err := s.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	next := 0
	for _, path := range segmentFiles(t, f.dir) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		l := segLayout{path: path}
		for off := int64(segmentHeaderSize); off < int64(len(data)); {
			fh := parseFrameHeader(data[off:])
			end := off + frameHeaderSize + int64(fh.length)
			l.frames = append(l.frames, frameLoc{off: off, end: end, payload: next})
			next++
			off = end
		}
		f.segs = append(f.segs, l)
	}
	if next != n {
		t.Fatalf("fixture layout found %d frames, want %d", next, n)
	}
	return f
}

func (f *fixture) tail() segLayout { return f.segs[len(f.segs)-1] }

// reopen opens the damaged spool, logging to f.log.
func (f *fixture) reopen(t *testing.T) *Spool {
	t.Helper()
	f.log = &testLogger{}
	opts := f.opts
	opts.Logger = slog.New(slog.NewTextHandler(f.log, nil))
	s, err := Open(f.dir, opts)
	if err != nil {
		t.Fatalf("reopen after damage: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// expectAll returns the payload indexes 0..n-1 except the given ones.
func (f *fixture) expectAll(except ...int) []int {
	skip := map[int]bool{}
	for _, e := range except {
		skip[e] = true
	}
	var out []int
	for i := range f.n {
		if !skip[i] {
			out = append(out, i)
		}
	}
	return out
}

// check reopens, drains, and verifies the survivors and the loss count, then
// appends, and reopens once more to prove recovery converged.
func (f *fixture) check(t *testing.T, wantPayloads []int, wantLost uint64) {
	t.Helper()
	s := f.reopen(t)
	got := drain(t, s, 7)
	if len(got) != len(wantPayloads) {
		t.Fatalf("recovered %d records, want %d (log: %s)", len(got), len(wantPayloads), f.log)
	}
	for i, idx := range wantPayloads {
		want := payload(idx)
		if !bytes.HasPrefix(got[i], want) {
			t.Fatalf("record %d = %.40q, want payload %d %.40q", i, got[i], idx, want)
		}
	}
	if lost := s.Stats().RecoveredLost; lost != wantLost {
		t.Fatalf("RecoveredLost = %d, want %d (log: %s)", lost, wantLost, f.log)
	}
	if wantLost > 0 && !strings.Contains(f.log.String(), "lost_records="+strconv.FormatUint(wantLost, 10)) {
		t.Fatalf("the loss of %d records was not logged: %s", wantLost, f.log)
	}
	if _, err := s.Append([]byte("after-recovery")); err != nil {
		t.Fatalf("Append after recovery: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = f.reopen(t)
	defer s.Close()
	after := drain(t, s, 7)
	if len(after) != 1 || string(after[0]) != "after-recovery" {
		t.Fatalf("second reopen returned %q, want only the record appended after recovery", after)
	}
	if lost := s.Stats().RecoveredLost; lost != 0 {
		t.Fatalf("second reopen found %d more lost records: recovery did not converge (log: %s)", lost, f.log)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestTruncateAtEveryOffsetOfLastFrame cuts the tail segment at each byte of
// its last frame: a partial frame is one lost record, a cut at a frame
// boundary loses nothing.
func TestTruncateAtEveryOffsetOfLastFrame(t *testing.T) {
	base := newFixture(t, 5, 0, false)
	last := base.tail().last()
	for cut := last.off; cut <= last.end; cut++ {
		f := newFixture(t, 5, 0, false)
		path := f.tail().path
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		switch cut {
		case last.off:
			f.check(t, f.expectAll(4), 0)
		case last.end:
			f.check(t, f.expectAll(), 0)
		default:
			f.check(t, f.expectAll(4), 1)
			if !exists(path + brokenExt) {
				t.Fatalf("cut at %d: no %s copy kept", cut, brokenExt)
			}
		}
		if t.Failed() {
			t.Fatalf("failed at cut offset %d (frame %d..%d)", cut, last.off, last.end)
		}
	}
}

func TestTailDamage(t *testing.T) {
	tests := []struct {
		name     string
		bigLast  bool
		damage   func(t *testing.T, f *fixture)
		except   []int
		wantLost uint64
		// wantCopy is the side file recovery must keep ("" for none).
		wantCopy string
	}{
		{
			name: "torn last record: header and half the body, rest zero",
			damage: func(t *testing.T, f *fixture) {
				last := f.tail().last()
				data := readFile(t, f.tail().path)
				mid := last.off + frameHeaderSize + (last.end-last.off-frameHeaderSize)/2
				clear(data[mid:])
				writeFile(t, f.tail().path, data)
			},
			except: []int{-1}, wantLost: 1, wantCopy: brokenExt,
		},
		{
			name:    "zeroed final 512-byte sector inside the last record",
			bigLast: true,
			damage: func(t *testing.T, f *fixture) {
				data := readFile(t, f.tail().path)
				clear(data[len(data)-512:])
				writeFile(t, f.tail().path, data)
			},
			except: []int{-1}, wantLost: 1, wantCopy: brokenExt,
		},
		{
			name: "file extended by zeros that never got data (torn write)",
			damage: func(t *testing.T, f *fixture) {
				data := readFile(t, f.tail().path)
				writeFile(t, f.tail().path, append(data, make([]byte, 4096)...))
			},
			wantLost: 0,
		},
		{
			name: "garbage appended after the last record",
			damage: func(t *testing.T, f *fixture) {
				data := readFile(t, f.tail().path)
				writeFile(t, f.tail().path, append(data, bytes.Repeat([]byte{0xA5}, 100)...))
			},
			wantLost: 1, wantCopy: brokenExt,
		},
		{
			name: "flipped byte in the last record's length",
			damage: func(t *testing.T, f *fixture) {
				flipByte(t, f.tail().path, int(f.tail().last().off)+1)
			},
			except: []int{-1}, wantLost: 1, wantCopy: brokenExt,
		},
		{
			name: "flipped byte in the last record's CRC",
			damage: func(t *testing.T, f *fixture) {
				flipByte(t, f.tail().path, int(f.tail().last().off)+5)
			},
			except: []int{-1}, wantLost: 1, wantCopy: brokenExt,
		},
		{
			name: "flipped byte in the last record's ciphertext",
			damage: func(t *testing.T, f *fixture) {
				flipByte(t, f.tail().path, -1)
			},
			except: []int{-1}, wantLost: 1, wantCopy: brokenExt,
		},
		{
			name: "flipped byte in a middle record",
			damage: func(t *testing.T, f *fixture) {
				flipByte(t, f.tail().path, int(f.tail().frames[4].off)+frameHeaderSize+2)
			},
			except: []int{4}, wantLost: 1, wantCopy: corruptExt,
		},
		{
			name: "flipped byte in the first record's sequence number",
			damage: func(t *testing.T, f *fixture) {
				flipByte(t, f.tail().path, int(f.tail().frames[0].off)+12)
			},
			except: []int{0}, wantLost: 1, wantCopy: corruptExt,
		},
		{
			name: "zeroed 512-byte sector across three middle records",
			damage: func(t *testing.T, f *fixture) {
				fr := f.tail().frames
				data := readFile(t, f.tail().path)
				// Start inside record 3; records 3..k overlap the sector.
				start := fr[3].off + 10
				clear(data[start : start+512])
				writeFile(t, f.tail().path, data)
			},
			except:   nil, // filled in below from the layout
			wantCopy: corruptExt,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 30, 0, tt.bigLast)
			tt.damage(t, f)
			var except []int
			for _, e := range tt.except {
				if e < 0 {
					e = f.n - 1 // the last record
				}
				except = append(except, e)
			}
			wantLost := tt.wantLost
			if tt.name == "zeroed 512-byte sector across three middle records" {
				start := f.tail().frames[3].off + 10
				for _, fr := range f.tail().frames {
					if fr.end > start && fr.off < start+512 {
						except = append(except, fr.payload)
					}
				}
				wantLost = uint64(len(except))
				if wantLost < 3 || except[len(except)-1] == f.n-1 {
					t.Fatalf("fixture records too large for this case: sector hits %v", except)
				}
			}
			f.check(t, f.expectAll(except...), wantLost)
			if tt.wantCopy != "" && !exists(f.tail().path+tt.wantCopy) {
				t.Fatalf("no %s file kept", tt.wantCopy)
			}
			if tt.wantCopy == "" {
				if exists(f.tail().path+brokenExt) || exists(f.tail().path+corruptExt) {
					t.Fatal("a copy was kept for a tail that lost nothing")
				}
				if tb := f.reopenStatsTornBytes(t); tb != 0 {
					t.Fatalf("torn bytes counted again on a later open: %d", tb)
				}
			}
		})
	}
}

// reopenStatsTornBytes reopens the spool and returns its TornBytes.
func (f *fixture) reopenStatsTornBytes(t *testing.T) int64 {
	s := f.reopen(t)
	defer s.Close()
	return s.Stats().TornBytes
}

// TestDamageInOlderSegments covers damage that Open does not look for (it
// reads only the tail) and the reader finds.
func TestDamageInOlderSegments(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, f *fixture) (except []int)
	}{
		{
			name: "flipped byte in a record of the first segment",
			damage: func(t *testing.T, f *fixture) []int {
				fr := f.segs[0].frames[2]
				flipByte(t, f.segs[0].path, int(fr.off)+frameHeaderSize+1)
				return []int{fr.payload}
			},
		},
		{
			name: "first segment lost its last two records at a frame boundary",
			damage: func(t *testing.T, f *fixture) []int {
				fr := f.segs[0].frames
				if err := os.Truncate(f.segs[0].path, fr[len(fr)-2].off); err != nil {
					t.Fatal(err)
				}
				return []int{fr[len(fr)-2].payload, fr[len(fr)-1].payload}
			},
		},
		{
			name: "second segment's header is garbage",
			damage: func(t *testing.T, f *fixture) []int {
				data := readFile(t, f.segs[1].path)
				copy(data, "NOTASEGMENTHEADER")
				writeFile(t, f.segs[1].path, data)
				var lost []int
				for _, fr := range f.segs[1].frames {
					lost = append(lost, fr.payload)
				}
				return lost
			},
		},
		{
			name: "second segment torn in the middle of a record",
			damage: func(t *testing.T, f *fixture) []int {
				fr := f.segs[1].frames
				if err := os.Truncate(f.segs[1].path, fr[1].off+30); err != nil {
					t.Fatal(err)
				}
				var lost []int
				for _, x := range fr[1:] {
					lost = append(lost, x.payload)
				}
				return lost
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 40, 1024, false)
			if len(f.segs) < 4 {
				t.Fatalf("fixture has %d segments, want at least 4", len(f.segs))
			}
			except := tt.damage(t, f)
			f.check(t, f.expectAll(except...), uint64(len(except)))
		})
	}
}

// TestTornSegmentHeader covers a crash while a new segment was being
// created: its header is incomplete, so nothing in it can be decrypted.
func TestTornSegmentHeader(t *testing.T) {
	tests := []struct {
		name     string
		keep     int // bytes of the tail segment that survive
		wantLost uint64
	}{
		{"empty file", 0, 0},
		{"half a header", segmentHeaderSize / 2, 0},
		{"header checksum broken, records after it", -1, 0 /* set below */},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 40, 1024, false)
			tail := f.tail()
			data := readFile(t, tail.path)
			var except []int
			wantLost := tt.wantLost
			if tt.keep >= 0 {
				data = data[:tt.keep]
				for _, fr := range tail.frames {
					except = append(except, fr.payload)
				}
				// Records written after a torn header cannot be there: the
				// header goes first. The fixture's records in the tail are
				// therefore "never written", not lost.
				f.n -= len(tail.frames)
				except = nil
			} else {
				data[40] ^= 0xff
				for _, fr := range tail.frames {
					except = append(except, fr.payload)
				}
				wantLost = uint64(len(except))
			}
			writeFile(t, tail.path, data)
			f.check(t, f.expectAll(except...), wantLost)
			if !exists(tail.path + brokenExt) {
				t.Fatalf("torn segment not kept as %s", brokenExt)
			}
		})
	}
}

func TestLeftoverTempFilesAreIgnored(t *testing.T) {
	f := newFixture(t, 5, 0, false)
	writeFile(t, filepath.Join(f.dir, ackTmpFileName), []byte("half an ack"))
	writeFile(t, f.tail().path+salvageTmpExt, []byte("half a salvage"))
	f.check(t, f.expectAll(), 0)
	if exists(filepath.Join(f.dir, ackTmpFileName)) || exists(f.tail().path+salvageTmpExt) {
		t.Fatal("leftover temporary files were not removed")
	}
}
