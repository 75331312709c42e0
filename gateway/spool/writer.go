package spool

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// preallocChunk is how much disk space is reserved ahead of the data. Space
// is reserved synchronously in Append, so that running out of disk surfaces
// as ErrSpoolFull on the record that does not fit instead of as a failed
// background write of records already accepted.
const preallocChunk = 4 << 20

// flushLoop is the background group commit: every interval (or when asked)
// it writes buffered frames and fsyncs them, so concurrent appenders share
// one fsync. Under FsyncInterval nothing is buffered (Append writes through)
// and it only fsyncs; under FsyncNone it only writes.
func (s *Spool) flushLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		case <-s.syncReq:
		}
		forced := s.forceSync.Swap(false)
		s.flush(s.opts.Fsync != FsyncNone || forced)
	}
}

// flush writes the buffer and, when doSync, fsyncs retired files, the
// directory and the live segment, then publishes the new durable position.
func (s *Spool) flush(doSync bool) {
	s.mu.Lock()
	_ = s.writeBufLocked() // a failure is sticky in writeErr and retried next time
	retired := s.retired
	s.retired = nil
	var live *os.File
	if s.live != nil {
		live = s.live.f
	}
	target := s.writtenSeq
	dirDirty := s.dirDirty
	s.dirDirty = false
	s.mu.Unlock()

	var errs []error
	for _, f := range retired {
		if doSync {
			errs = append(errs, f.Sync())
		}
		errs = append(errs, f.Close())
	}
	if doSync {
		if dirDirty {
			errs = append(errs, syncDir(s.dir))
		}
		if live != nil {
			// Only the flusher (or Close, after it stopped) closes files, so
			// live is still open even if Append rotated meanwhile.
			errs = append(errs, live.Sync())
		}
	}
	err := errors.Join(errs...)

	s.mu.Lock()
	defer s.mu.Unlock()
	if !doSync && dirDirty {
		s.dirDirty = true
	}
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages;
		// retrying would report success for data that is gone. Stop
		// promising durability instead.
		if s.fatalErr == nil {
			s.fatalErr = fmt.Errorf("spool: fsync failed, records after sequence %d may not be durable: %w", s.durableSeq, err)
			s.log.Error("spool fsync failed; appends are refused until restart", "dir", s.dir, "error", err)
			s.wakeWaitersLocked()
		}
		return
	}
	if doSync {
		s.markDurableLocked(target)
	}
}

// writeBufLocked hands the buffered frames to the OS. On failure the file is
// cut back to its previous size so that no partial frame stays behind, the
// frames stay buffered, and the error is kept in writeErr.
func (s *Spool) writeBufLocked() error {
	if len(s.buf) == 0 || s.live == nil {
		return nil
	}
	n, err := s.live.f.WriteAt(s.buf, s.live.written)
	if err != nil {
		terr := s.live.f.Truncate(s.live.written)
		wrapped := mapWriteErr(fmt.Errorf("spool: writing %d bytes to %s (wrote %d): %w", len(s.buf), s.live.seg.path, n, err))
		if s.writeErr == nil {
			s.log.Error("spool write failed; appends are refused until it succeeds", "segment", s.live.seg.path, "error", err, "truncate_error", terr)
		}
		s.writeErr = wrapped
		s.wakeWaitersLocked()
		return wrapped
	}
	if s.writeErr != nil {
		s.log.Info("spool writes recovered", "segment", s.live.seg.path)
		s.writeErr = nil
	}
	s.live.written += int64(n)
	s.writtenSeq = s.nextSeq - 1
	s.buf = s.buf[:0]
	s.wakeBacklogLocked()
	return nil
}

// mapWriteErr turns "no space" into ErrSpoolFull so callers see one error
// for a full quota and a full disk.
func mapWriteErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrSpoolFull, err)
	}
	return err
}

// rotateLocked seals the live segment (if any) and starts a new one sealed
// with the current key.
func (s *Spool) rotateLocked() error {
	if s.live != nil {
		if err := s.writeBufLocked(); err != nil {
			return err
		}
		// Release the space reserved beyond the data; the flusher fsyncs and
		// closes the file.
		_ = s.live.f.Truncate(s.live.written)
		s.retired = append(s.retired, s.live.f)
		s.live = nil
	}
	keyID, aead := s.opts.Keys.CurrentAEAD()
	hdr := segmentHeader{id: s.nextSegID, firstSeq: s.nextSeq, created: time.Now(), keyID: keyID}
	if _, err := rand.Read(hdr.nonceBase[:]); err != nil {
		return fmt.Errorf("spool: nonce base: %w", err)
	}
	path := filepath.Join(s.dir, segmentFileName(hdr.id))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return mapWriteErr(fmt.Errorf("spool: creating segment: %w", err))
	}
	if _, err := f.Write(hdr.marshal(nil)); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return mapWriteErr(fmt.Errorf("spool: writing segment header %s: %w", path, err))
	}
	s.nextSegID++
	seg := &segment{id: hdr.id, path: path, hdr: hdr, size: segmentHeaderSize}
	s.segs = append(s.segs, seg)
	s.live = &liveSegment{seg: seg, f: f, aead: aead, written: segmentHeaderSize, allocEnd: segmentHeaderSize}
	s.bytes += segmentHeaderSize
	s.dirDirty = true
	return nil
}

// reserveLocked makes room for a frame: it enforces the quota and reserves
// disk space ahead of the write.
func (s *Spool) reserveLocked(frameLen int64) error {
	for s.opts.MaxBytes > 0 && s.bytes+frameLen > s.opts.MaxBytes {
		if s.opts.Overflow != OverflowDropOldest {
			return fmt.Errorf("%w: %d of %d bytes used (MaxBytes)", ErrSpoolFull, s.bytes, s.opts.MaxBytes)
		}
		if err := s.dropOldestLocked(); err != nil {
			return err
		}
	}
	if !s.prealloc {
		return nil
	}
	live := s.live
	need := live.seg.size + frameLen
	if need <= live.allocEnd {
		return nil
	}
	end := min(max(live.allocEnd+preallocChunk, need), max(s.opts.SegmentBytes, need))
	err := fallocate(live.f, live.allocEnd, end-live.allocEnd)
	if errors.Is(err, syscall.ENOSPC) && end > need {
		// Not room for a whole chunk; maybe for this frame.
		end = need
		err = fallocate(live.f, live.allocEnd, end-live.allocEnd)
	}
	switch {
	case err == nil:
		live.allocEnd = end
	case errors.Is(err, errPreallocUnsupported):
		s.prealloc = false
	default:
		return mapWriteErr(fmt.Errorf("spool: reserving space in %s: %w", live.seg.path, err))
	}
	return nil
}

// dropOldestLocked deletes the oldest sealed segment, moving the
// acknowledged position past it first so that a crash in between never
// leaves an ack pointing into a deleted segment.
func (s *Spool) dropOldestLocked() error {
	if len(s.segs) < 2 || s.segs[0] == s.live.seg {
		return fmt.Errorf("%w: MaxBytes %d reached and no sealed segment to drop", ErrSpoolFull, s.opts.MaxBytes)
	}
	old, next := s.segs[0], s.segs[1]
	s.ackMu.Lock()
	ack := s.ack
	var lost uint64
	if ack.seq < next.hdr.firstSeq {
		lost = next.hdr.firstSeq - max(ack.seq, old.hdr.firstSeq)
		newAck := ackRecord{seq: next.hdr.firstSeq, segment: next.id, offset: segmentHeaderSize}
		if err := writeAckFile(s.dir, newAck); err != nil {
			s.ackMu.Unlock()
			return mapWriteErr(err)
		}
		s.ack = newAck
	}
	s.ackMu.Unlock()
	if err := os.Remove(old.path); err != nil {
		return fmt.Errorf("spool: dropping %s: %w", old.path, err)
	}
	s.segs = s.segs[1:]
	s.bytes -= old.size
	s.dropped.Add(lost)
	s.log.Warn("spool full: dropped oldest segment", "segment", old.path, "records_dropped", lost, "max_bytes", s.opts.MaxBytes)
	return nil
}

// writeAckFile persists an ack atomically: temp file, fsync, rename, dir
// fsync.
func writeAckFile(dir string, a ackRecord) error {
	tmp := filepath.Join(dir, ackTmpFileName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: writing ack: %w", err)
	}
	if _, err := f.Write(a.marshal()); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: writing ack: %w", err)
	}
	if err := syncClose(f); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: syncing ack: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ackFileName)); err != nil {
		return fmt.Errorf("spool: replacing ack: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: syncing directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: syncing directory %s: %w", dir, err)
	}
	return nil
}
