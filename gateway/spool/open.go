package spool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const lockFileName = "lock"

// Open opens (creating if needed) the spool in dir and recovers it: the tail
// segment is verified by CRC, a torn tail is cut off and a damaged segment is
// salvaged. Only the tail is read, so Open stays fast with a large backlog;
// damage in older segments is found and repaired when they are read.
//
// Open fails (without changing anything) when a segment was sealed with a
// key missing from opts.Keys, or when the ack file is unreadable: both need
// an operator, and guessing would lose or duplicate data.
func Open(dir string, opts Options) (*Spool, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("spool: creating %s: %w", dir, err)
		}
		// Make the new directory entry itself durable.
		if err := syncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: restricting %s to its owner: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := lockDir(lock); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("spool: %s is in use by another process: %w", dir, err)
	}
	s := &Spool{
		dir:       dir,
		opts:      opts,
		log:       opts.Logger.With("component", "spool"),
		lock:      lock,
		durableCh: make(chan struct{}),
		syncReq:   make(chan struct{}, 1),
		done:      make(chan struct{}),
		nextSeq:   1,
		nextSegID: 1,

		gapsReported: make(map[uint64]bool),
	}
	if err := s.recover(); err != nil {
		_ = lock.Close()
		return nil, err
	}
	s.prealloc = true
	s.wg.Add(1)
	go s.flushLoop()
	return s, nil
}

func (s *Spool) recover() error {
	_ = os.Remove(filepath.Join(s.dir, ackTmpFileName)) // an interrupted ack write; the old ack stands
	segs, err := s.loadSegments()
	if err != nil {
		return err
	}
	s.segs = segs
	ack, hasAck, err := readAckFile(s.dir)
	if err != nil {
		return err
	}
	if err := s.recoverTail(ack.seq); err != nil {
		return err
	}
	s.bytes = 0
	for _, seg := range s.segs {
		s.bytes += seg.size
	}
	if n := len(s.segs); n > 0 {
		last := s.segs[n-1]
		s.nextSeq = max(s.nextSeq, last.hdr.firstSeq, last.lastSeq+1)
	}
	if !hasAck {
		// No ack yet: everything present is pending. Re-uploading is safe,
		// since the collector deduplicates by document id.
		ack = ackRecord{seq: 1}
		if len(s.segs) > 0 {
			first := s.segs[0]
			ack = ackRecord{seq: max(first.hdr.firstSeq, 1), segment: first.id, offset: segmentHeaderSize}
		}
	} else if ack, err = s.resolveAck(ack); err != nil {
		return err
	}
	// Records acknowledged but lost from the tail in a crash must not have
	// their sequence numbers reused: they would count as acknowledged.
	s.nextSeq = max(s.nextSeq, ack.seq)
	s.ack = ack
	s.writtenSeq = s.nextSeq - 1
	s.durableSeq = s.nextSeq - 1
	return nil
}

// loadSegments lists the segment files and reads their headers. A segment
// whose key is not in the ring fails Open with every such segment named.
func (s *Spool) loadSegments() ([]*segment, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("spool: listing %s: %w", s.dir, err)
	}
	var segs []*segment
	var missing []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, salvageTmpExt) {
			_ = os.Remove(filepath.Join(s.dir, name)) // an interrupted salvage; the damaged original is still in place
			continue
		}
		id, ok := parseSegmentName(name)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		seg, err := s.loadSegment(id)
		if err != nil {
			return nil, err
		}
		// Never reuse an id, even of a segment set aside below.
		s.nextSegID = max(s.nextSegID, id+1)
		if seg.hdrErr == nil {
			if _, ok := s.opts.Keys.AEAD(seg.hdr.keyID); !ok {
				missing = append(missing, fmt.Sprintf("%s (key id %s)", name, seg.hdr.keyID))
			}
		}
		segs = append(segs, seg)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("spool: %d segment(s) in %s were sealed with keys not in the keyring: %s; add the key(s) back to the keyring (nothing was changed or discarded)",
			len(missing), s.dir, strings.Join(missing, ", "))
	}
	slices.SortFunc(segs, func(a, b *segment) int { return compareUint64(a.id, b.id) })
	return segs, nil
}

func (s *Spool) loadSegment(id uint64) (*segment, error) {
	path := filepath.Join(s.dir, segmentFileName(id))
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	seg := &segment{id: id, path: path, size: info.Size()}
	buf := make([]byte, segmentHeaderSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("spool: reading %s: %w", path, err)
	}
	seg.hdr, seg.hdrErr = parseSegmentHeader(buf[:n])
	if seg.hdrErr == nil && seg.hdr.id != id {
		seg.hdrErr = fmt.Errorf("%w: header names segment %d", errBadHeader, seg.hdr.id)
	}
	return seg, nil
}

func parseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(base) != 20 {
		return 0, false
	}
	id, err := strconv.ParseUint(base, 10, 64)
	return id, err == nil
}

func compareUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// recoverTail verifies the last segment, the only one a crash can have left
// half-written (older ones were fsynced before the next was started, and are
// checked when read). Trailing segments with a torn header are set aside.
func (s *Spool) recoverTail(ackSeq uint64) error {
	maxSealed := s.maxSealed()
	for len(s.segs) > 0 {
		tail := s.segs[len(s.segs)-1]
		if tail.hdrErr == nil {
			return s.recoverTailFrames(tail, ackSeq, maxSealed)
		}
		// A header torn at creation: nothing in the file can be decrypted.
		data, err := os.ReadFile(tail.path)
		if err != nil {
			return fmt.Errorf("spool: reading %s: %w", tail.path, err)
		}
		var lost uint64
		if len(data) > segmentHeaderSize {
			lost = tornFrames(data[segmentHeaderSize:], maxSealed)
		}
		aside := freePath(tail.path + brokenExt)
		if err := os.Rename(tail.path, aside); err != nil {
			return fmt.Errorf("spool: setting aside %s: %w", tail.path, err)
		}
		s.recoveredLost.Add(lost)
		s.log.Warn("spool recovery: last segment has a torn header; moved aside",
			"segment", tail.path, "moved_to", aside, "bytes", len(data), "lost_records", lost, "header_error", tail.hdrErr)
		s.segs = s.segs[:len(s.segs)-1]
		if err := syncDir(s.dir); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) recoverTailFrames(tail *segment, ackSeq uint64, maxSealed uint32) error {
	data, err := os.ReadFile(tail.path)
	if err != nil {
		return fmt.Errorf("spool: reading %s: %w", tail.path, err)
	}
	res := scanFrames(data, &tail.hdr, maxSealed, nil, ackSeq)
	tail.lastSeq = res.nextSeq - 1
	tail.size = int64(len(data))
	if res.damaged {
		// Not explainable by a torn write: rewrite the segment with what
		// decodes and keep the damaged file for inspection.
		return s.salvageSegment(tail, data, ackSeq, true)
	}
	if res.tailAt == int64(len(data)) {
		return nil
	}
	// A torn tail: keep a copy of any discarded bytes, then cut.
	tornBytes := int64(len(data)) - res.tailAt
	lost := tornFrames(data[res.tailAt:], maxSealed)
	copyPath := "none (all-zero tail)"
	if lost > 0 {
		copyPath = freePath(tail.path + brokenExt)
		if err := writeFileSync(copyPath, data); err != nil {
			return err
		}
	} else {
		s.tornBytes.Add(tornBytes)
	}
	if err := truncateSync(tail.path, res.tailAt); err != nil {
		return err
	}
	tail.size = res.tailAt
	s.recoveredLost.Add(lost)
	s.log.Warn("spool recovery: truncated torn tail",
		"segment", tail.path, "offset", res.tailAt, "bytes_cut", tornBytes, "lost_records", lost, "copy", copyPath)
	return nil
}

// maxSealed is the largest sealed length a valid frame can have.
func (s *Spool) maxSealed() uint32 {
	_, aead := s.opts.Keys.CurrentAEAD()
	return uint32(s.opts.MaxRecordBytes + aead.Overhead())
}

// readAckFile returns the stored ack. A missing file means nothing was
// acknowledged yet; an unreadable one is an error, never a silent reset.
func readAckFile(dir string) (ackRecord, bool, error) {
	path := filepath.Join(dir, ackFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ackRecord{}, false, nil
	}
	if err != nil {
		return ackRecord{}, false, fmt.Errorf("spool: reading ack file %s: %w", path, err)
	}
	a, err := parseAck(data)
	if err != nil {
		return ackRecord{}, false, fmt.Errorf("spool: ack file %s is unreadable (%v); refusing to guess the acknowledged position. "+
			"Removing it re-uploads every record still in the spool (safe: the collector deduplicates)", path, err)
	}
	return a, true, nil
}

// resolveAck checks the stored ack's segment and offset hint against the
// files and fixes it up when a segment was salvaged or removed.
func (s *Spool) resolveAck(a ackRecord) (ackRecord, error) {
	i, found := slices.BinarySearchFunc(s.segs, a.segment, func(seg *segment, id uint64) int { return compareUint64(seg.id, id) })
	if !found {
		if i == len(s.segs) {
			return a, nil // everything acknowledged and deleted; new segments come after
		}
		first := s.segs[i]
		if first.hdrErr == nil && first.hdr.firstSeq > a.seq {
			lost := first.hdr.firstSeq - a.seq
			s.recoveredLost.Add(lost)
			s.log.Warn("spool recovery: segments after the acknowledged position are missing",
				"acked_seq", a.seq, "oldest_segment", first.path, "its_first_seq", first.hdr.firstSeq, "lost_records", lost)
		}
		return ackRecord{seq: max(a.seq, first.hdr.firstSeq), segment: first.id, offset: segmentHeaderSize}, nil
	}
	seg := s.segs[i]
	if seg.hdrErr != nil || a.offset == segmentHeaderSize || a.offset == seg.size {
		return ackRecord{seq: a.seq, segment: seg.id, offset: min(max(a.offset, segmentHeaderSize), seg.size)}, nil
	}
	off, err := s.offsetOfSeq(seg, a.seq, a.offset)
	if err != nil {
		return a, err
	}
	return ackRecord{seq: a.seq, segment: seg.id, offset: off}, nil
}

// offsetOfSeq returns the offset of the first frame in seg with a sequence
// number of at least seq, trusting hint if a good frame with such a number
// starts there, and otherwise walking the frame headers.
func (s *Spool) offsetOfSeq(seg *segment, seq uint64, hint int64) (int64, error) {
	f, err := os.Open(seg.path)
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	maxSealed := s.maxSealed()
	var hdr [frameHeaderSize]byte
	if hint > segmentHeaderSize && hint+frameHeaderSize <= seg.size {
		if _, err := f.ReadAt(hdr[:], hint); err == nil {
			fh := parseFrameHeader(hdr[:])
			if fh.seq >= seq && fh.length > 0 && fh.length <= maxSealed && hint+frameHeaderSize+int64(fh.length) <= seg.size {
				return hint, nil
			}
		}
	}
	off := int64(segmentHeaderSize)
	for off+frameHeaderSize <= seg.size {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return 0, fmt.Errorf("spool: reading %s: %w", seg.path, err)
		}
		fh := parseFrameHeader(hdr[:])
		if fh.seq >= seq || fh.length == 0 || fh.length > maxSealed {
			return off, nil // a damaged frame: the reader will salvage from here
		}
		off += frameHeaderSize + int64(fh.length)
	}
	return min(off, seg.size), nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("spool: writing %s: %w", path, err)
	}
	if err := syncClose(f); err != nil {
		return fmt.Errorf("spool: syncing %s: %w", path, err)
	}
	return nil
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return fmt.Errorf("spool: truncating %s: %w", path, err)
	}
	if err := syncClose(f); err != nil {
		return fmt.Errorf("spool: syncing %s: %w", path, err)
	}
	return nil
}

// freePath returns path, or path with the first free ".N" suffix, so that a
// second repair never overwrites the evidence of the first.
func freePath(path string) string {
	candidate := path
	for i := 1; ; i++ {
		if _, err := os.Lstat(candidate); errors.Is(err, fs.ErrNotExist) {
			return candidate
		}
		candidate = path + "." + strconv.Itoa(i)
	}
}

// SegmentKeyIDs returns how many files in a spool directory were sealed with
// each key id: segments, and the copies recovery keeps (.broken, .corrupt),
// which need their key to be inspected. It does not need the keys.
//
// It fails while a gateway has the spool open: a running gateway keeps
// sealing new segments with the key that was current when it started, even
// after a rotation, so "unused" cannot be decided until it stops.
func SegmentKeyIDs(dir string) (map[string]int, error) {
	lock, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR, 0)
	switch {
	case err == nil:
		defer lock.Close()
		if err := lockDir(lock); err != nil {
			return nil, fmt.Errorf("spool: %s is in use by a running gateway; stop it first (it may still seal new segments with an older key)", dir)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("spool: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: listing %s: %w", dir, err)
	}
	used := make(map[string]int)
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.Contains(e.Name(), segmentExt) {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted after an ack meanwhile
			}
			return nil, fmt.Errorf("spool: %w", err)
		}
		buf := make([]byte, segmentHeaderSize)
		n, _ := io.ReadFull(f, buf)
		_ = f.Close()
		if h, err := parseSegmentHeader(buf[:n]); err == nil {
			used[h.keyID]++
		}
	}
	return used, nil
}
