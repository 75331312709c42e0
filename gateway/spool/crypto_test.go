package spool

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/keys"
)

// TestCanaryNeverOnDisk appends records holding a marker string and checks
// that no file in the spool directory (segments, ack, copies made by
// recovery) contains it.
func TestCanaryNeverOnDisk(t *testing.T) {
	dir := t.TempDir()
	ring := testenv.Keyring(t, 1)
	const canary = "CANARY-s3cr3t-p4ssw0rd-DO-NOT-STORE"
	s := openT(t, dir, Options{Keys: ring, SegmentBytes: 4096, MaxRecordBytes: 1024})
	for i := range 200 {
		if _, err := s.Append(fmt.Appendf(nil, "%d %s %d", i, canary, i)); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := s.ReadBatch(50, 1<<20)
	if err := s.Ack(b.Cursor); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Damage the tail and a middle segment so recovery writes its copies and
	// a salvaged segment too.
	segs := segmentFiles(t, dir)
	flipByte(t, segs[len(segs)-1], -10)
	flipByte(t, segs[len(segs)-2], segmentHeaderSize+frameHeaderSize+3)
	s = openT(t, dir, Options{Keys: ring, SegmentBytes: 4096, MaxRecordBytes: 1024})
	if _, err := s.ReadBatch(1000, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(canary)) || bytes.Contains(data, []byte("CANARY")) {
			t.Errorf("plaintext canary found in %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 {
		t.Fatalf("only %d files checked; the test did not exercise recovery copies", files)
	}
}

func TestKeyRotationKeepsOldSegmentsReadable(t *testing.T) {
	dir := t.TempDir()
	old := testenv.Keyring(t, 1)
	s := openT(t, dir, Options{Keys: old})
	appendN(t, s, 0, 20)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	newKey, err := keys.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := old.WithKey(newKey)
	if err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{Keys: rotated})
	appendN(t, s, 20, 20)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	used, err := SegmentKeyIDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if used[old.Current().ID] == 0 || used[newKey.ID] == 0 {
		t.Fatalf("segments by key: %v; want both the old and the new key in use", used)
	}
	s = openT(t, dir, Options{Keys: rotated})
	wantPayloads(t, drain(t, s, 7), 0, 40)
}

func TestSegmentWithMissingKeyFailsOpenClearly(t *testing.T) {
	dir := t.TempDir()
	first := testenv.Keyring(t, 1)
	s := openT(t, dir, Options{Keys: first})
	appendN(t, s, 0, 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := segmentFiles(t, dir)
	other := testenv.Keyring(t, 1)
	_, err := Open(dir, testOptions(Options{Keys: other}))
	if err == nil || !strings.Contains(err.Error(), first.Current().ID) || !strings.Contains(err.Error(), "not in the keyring") {
		t.Fatalf("Open with the wrong key: %v", err)
	}
	if after := segmentFiles(t, dir); len(after) != len(before) {
		t.Fatalf("Open with a missing key changed the segments: %v -> %v", before, after)
	}
	s = openT(t, dir, Options{Keys: first})
	wantPayloads(t, drain(t, s, 10), 0, 5)
}

// TestMovedRecordFailsAuthentication copies a valid frame over another one
// at a different offset: CRC passes, the AAD does not.
func TestMovedRecordFailsAuthentication(t *testing.T) {
	dir := t.TempDir()
	ring := testenv.Keyring(t, 1)
	log := &testLogger{}
	s := openT(t, dir, Options{Keys: ring})
	for i := range 3 {
		if _, err := s.Append(fmt.Appendf(nil, "same-size-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg := segmentFiles(t, dir)[0]
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	frameLen := (len(data) - segmentHeaderSize) / 3
	f0 := data[segmentHeaderSize : segmentHeaderSize+frameLen]
	f1 := data[segmentHeaderSize+frameLen : segmentHeaderSize+2*frameLen]
	// Replay frame 0's sealed bytes in frame 1's place, keeping frame 1's
	// sequence number and a recomputed CRC: only the AAD can catch it.
	forged := append([]byte(nil), f1...)
	copy(forged[frameHeaderSize:], f0[frameHeaderSize:])
	putCRC(forged)
	copy(data[segmentHeaderSize+frameLen:], forged)
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{Keys: ring, Logger: slog.New(slog.NewTextHandler(log, nil))})
	got := drain(t, s, 10)
	if len(got) != 2 || string(got[0]) != "same-size-0" || string(got[1]) != "same-size-2" {
		t.Fatalf("after forging record 1: got %q", got)
	}
	if lost := s.Stats().RecoveredLost; lost != 1 {
		t.Fatalf("RecoveredLost = %d, want 1", lost)
	}
	if !strings.Contains(log.String(), "salvaged damaged segment") {
		t.Fatalf("salvage not logged: %s", log)
	}
}
