package spool

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"os"
	"path/filepath"
	"testing"
)

// fixedKeyring is a one-key ring with a constant key, so that fuzz inputs
// stay decryptable across runs.
type fixedKeyring struct {
	id   string
	aead cipher.AEAD
}

func newFixedKeyring(t testing.TB) *fixedKeyring {
	block, err := aes.NewCipher([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return &fixedKeyring{id: "f1xedk3y", aead: a}
}

func (k *fixedKeyring) CurrentAEAD() (string, cipher.AEAD) { return k.id, k.aead }

func (k *fixedKeyring) AEAD(id string) (cipher.AEAD, bool) {
	if id != k.id {
		return nil, false
	}
	return k.aead, true
}

// seedSegment returns the bytes of a real segment holding payloads.
func seedSegment(t testing.TB, ring Keyring, payloads ...string) []byte {
	dir := t.TempDir()
	s, err := Open(dir, testOptions(Options{Keys: ring, MaxRecordBytes: 1024, SegmentBytes: 1 << 20}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range payloads {
		if _, err := s.Append([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, segmentFileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func addSeeds(f *testing.F, ring Keyring) {
	good := seedSegment(f, ring, "first", "second record", "third, a bit longer record")
	f.Add(good)
	f.Add(good[:segmentHeaderSize])
	f.Add(good[:len(good)-5])
	f.Add(append(append([]byte(nil), good...), make([]byte, 600)...))
	flipped := append([]byte(nil), good...)
	flipped[segmentHeaderSize+frameHeaderSize+1] ^= 0x40
	f.Add(flipped)
	f.Add([]byte{})
	f.Add([]byte(segmentMagic))
}

// FuzzDecodeSegment feeds arbitrary bytes to the segment and frame decoders
// (header parsing, CRC scan with resynchronisation, authentication) and
// checks the scan's invariants.
func FuzzDecodeSegment(f *testing.F) {
	ring := newFixedKeyring(f)
	addSeeds(f, ring)
	f.Fuzz(func(t *testing.T, data []byte) {
		hdr, err := parseSegmentHeader(data)
		if err != nil {
			if tornFrames(data, 1<<20) > uint64(len(data)) {
				t.Fatal("tornFrames counted more frames than bytes")
			}
			return
		}
		verify := func(off int64, fh frameHeader, sealed []byte) ([]byte, bool) {
			plain, err := openFrame(nil, ring.aead, &hdr, off, fh.seq, sealed)
			return plain, err == nil
		}
		for _, v := range []verifyFunc{nil, verify} {
			res := scanFrames(data, &hdr, 1<<20, v, 0)
			prevEnd, prevSeq := int64(segmentHeaderSize), uint64(0)
			for i, fr := range res.frames {
				if fr.off < prevEnd || fr.end() > int64(len(data)) {
					t.Fatalf("frame %d at [%d,%d) overlaps or exceeds the data (%d bytes)", i, fr.off, fr.end(), len(data))
				}
				if i > 0 && fr.fh.seq <= prevSeq {
					t.Fatalf("frame %d: sequence %d after %d", i, fr.fh.seq, prevSeq)
				}
				prevEnd, prevSeq = fr.end(), fr.fh.seq
			}
			if res.tailAt < prevEnd || res.tailAt > int64(len(data)) {
				t.Fatalf("tailAt %d outside [%d,%d]", res.tailAt, prevEnd, len(data))
			}
		}
	})
}

// FuzzRecoverSegment writes arbitrary bytes as a spool's only segment and
// runs the whole recovery path: Open must not fail or panic, every record it
// returns must have authenticated, and a second Open must find nothing more
// to repair.
func FuzzRecoverSegment(f *testing.F) {
	ring := newFixedKeyring(f)
	addSeeds(f, ring)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentFileName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		opts := testOptions(Options{Keys: ring, MaxRecordBytes: 1024, SegmentBytes: 1 << 20})
		s, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("Open of a damaged segment failed: %v", err)
		}
		for {
			b, err := s.ReadBatch(100, 1<<20)
			if err != nil {
				_ = s.Close()
				t.Fatalf("ReadBatch: %v", err)
			}
			if b.Len() == 0 {
				break
			}
			if err := s.Ack(b.Cursor); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(dir, opts)
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer s.Close()
		b, err := s.ReadBatch(100, 1<<20)
		if err != nil || b.Len() != 0 || s.Stats().RecoveredLost != 0 {
			t.Fatalf("second Open: %d records, lost %d, err %v: recovery did not converge", b.Len(), s.Stats().RecoveredLost, err)
		}
	})
}

// FuzzParseAck checks that the ack decoder accepts exactly what marshal
// produces (round trip) and never panics on anything else.
func FuzzParseAck(f *testing.F) {
	f.Add((ackRecord{seq: 42, segment: 3, offset: 4096}).marshal())
	f.Add([]byte(ackMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := parseAck(data)
		if err != nil {
			return
		}
		if !bytes.Equal(a.marshal()[:36], data[:36]) {
			t.Fatalf("accepted ack %x does not round-trip (%+v)", data, a)
		}
	})
}
