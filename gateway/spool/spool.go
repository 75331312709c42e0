// Package spool is the gateway's durable, encrypted, append-only record store.
//
// A record counts as recorded once Append has accepted it. Records live in a
// directory of segment files, each record sealed with AES-256-GCM and framed
// with a length and a CRC32C (see format.go). A reader (the uploader) takes
// batches from the acknowledged position onward and acknowledges them once
// delivered; fully acknowledged segments are deleted only after the
// acknowledgement is durable. On Open the tail segment is verified: a torn
// tail is cut off (after a copy to <segment>.broken) and a damaged segment is
// rewritten with every record that still decodes (the damaged file kept as
// <segment>.corrupt), with lost records counted exactly and logged.
//
// The spool knows bytes and durability only; it knows nothing of OTel.
package spool

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrSpoolFull is returned by Append when the spool has reached MaxBytes
// under OverflowRefuse, or when the filesystem is out of space. The gateway
// can refuse new sessions on it.
var ErrSpoolFull = errors.New("spool: full")

// ErrClosed is returned by operations on a closed spool.
var ErrClosed = errors.New("spool: closed")

// Position identifies an appended record.
type Position struct {
	Segment uint64
	Offset  int64
	Seq     uint64
}

// writeThreshold is the buffered size at which Append hands frames to the
// OS itself instead of waiting for the background flusher; it bounds memory
// and keeps each write syscall amortised over many records.
const writeThreshold = 1 << 20

// Spool is safe for concurrent use. Append, WaitDurable and Stats may be
// called from any goroutine; ReadBatch and Ack are meant for one reader.
type Spool struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File // held flock: one process per spool directory

	// readMu serialises the reader side (ReadBatch, Ack, salvage).
	readMu sync.Mutex

	// mu guards the append side and the segment list.
	mu         sync.Mutex
	segs       []*segment // by id; the last one may be live
	live       *liveSegment
	buf        []byte // frames appended but not yet written to live.f
	scratch    frameScratch
	retired    []*os.File // rotated-out files, fsynced and closed by the flusher
	dirDirty   bool       // a segment file was created since the last dir fsync
	nextSeq    uint64
	nextSegID  uint64
	bytes      int64 // all segments, including buffered frames
	writtenSeq uint64
	durableSeq uint64
	durableCh  chan struct{} // closed and replaced whenever durableSeq moves
	// backlogCh is closed once writtenSeq reaches backlogAt: the reader
	// asked to hear when a full batch is waiting (BacklogReached).
	backlogCh chan struct{}
	backlogAt uint64
	writeErr  error // last failed write; Append refuses while set
	fatalErr  error // failed fsync: durability can no longer be promised
	closed    bool
	prealloc  bool

	// ackMu guards the acknowledged position. Lock order: readMu, mu, ackMu.
	ackMu sync.Mutex
	ack   ackRecord
	gen   uint64 // bumped by every repair that rewrites a segment

	gapsReported map[uint64]bool // guarded by readMu

	appended      atomic.Uint64
	dropped       atomic.Uint64
	recoveredLost atomic.Uint64
	tornBytes     atomic.Int64

	syncReq   chan struct{}
	forceSync atomic.Bool
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// segment describes one segment file.
type segment struct {
	id      uint64
	path    string
	hdr     segmentHeader
	hdrErr  error // the header did not parse; records are unreadable
	size    int64 // logical size (for the live segment: including buffer)
	lastSeq uint64
}

// liveSegment is the segment being appended to.
type liveSegment struct {
	seg      *segment
	f        *os.File
	aead     cipher.AEAD
	written  int64 // bytes handed to the OS
	allocEnd int64 // bytes reserved with fallocate
}

// Append seals payload and adds it to the spool. Under FsyncAlways it returns
// once the record is on stable storage; otherwise once it is buffered. It
// returns ErrSpoolFull when the quota or the filesystem is full.
func (s *Spool) Append(payload []byte) (Position, error) {
	if len(payload) > s.opts.MaxRecordBytes {
		return Position{}, fmt.Errorf("spool: record of %d bytes exceeds MaxRecordBytes %d", len(payload), s.opts.MaxRecordBytes)
	}
	now := time.Now().UnixNano()
	s.mu.Lock()
	pos, err := s.appendLocked(payload, now)
	s.mu.Unlock()
	if err != nil {
		return Position{}, err
	}
	s.appended.Add(1)
	if s.opts.Fsync == FsyncAlways {
		return pos, s.WaitDurable(context.Background(), pos)
	}
	return pos, nil
}

func (s *Spool) appendLocked(payload []byte, now int64) (Position, error) {
	switch {
	case s.closed:
		return Position{}, ErrClosed
	case s.fatalErr != nil:
		return Position{}, s.fatalErr
	case s.writeErr != nil:
		// Retry the stuck write first: space may have been freed.
		if err := s.writeBufLocked(); err != nil {
			return Position{}, err
		}
	}
	frameLen := int64(frameHeaderSize + len(payload) + s.overhead())
	if s.live == nil || (s.live.seg.size+frameLen > s.opts.SegmentBytes && s.live.seg.lastSeq != 0) {
		if err := s.rotateLocked(); err != nil {
			return Position{}, err
		}
	}
	if err := s.reserveLocked(frameLen); err != nil {
		return Position{}, err
	}
	seg := s.live.seg
	seq := s.nextSeq
	off := seg.size
	s.buf = appendFrame(s.buf, &s.scratch, s.live.aead, &seg.hdr, off, seq, now, payload)
	s.nextSeq++
	seg.size += frameLen
	seg.lastSeq = seq
	s.bytes += frameLen
	// Under FsyncInterval every record is written through: once Append
	// returns it is in the kernel and survives the gateway being killed,
	// however long the write took (dirty-page throttling can hold one for
	// seconds). Otherwise frames wait for the flusher unless the buffer is
	// large. A failed write keeps the frames buffered, to be written with
	// the same bytes (a record's seq and nonce are never reused for other
	// content), and makes later Appends refuse until a write succeeds.
	if s.opts.Fsync == FsyncInterval || len(s.buf) >= writeThreshold {
		_ = s.writeBufLocked()
	}
	return Position{Segment: seg.id, Offset: off, Seq: seq}, nil
}

func (s *Spool) overhead() int {
	_, aead := s.opts.Keys.CurrentAEAD()
	return aead.Overhead()
}

// WaitDurable returns once the record at pos is on stable storage. Under
// FsyncInterval it waits for the next periodic fsync; otherwise it asks for
// one immediately.
func (s *Spool) WaitDurable(ctx context.Context, pos Position) error {
	for {
		s.mu.Lock()
		durable, ch, fatal, closed := s.durableSeq, s.durableCh, s.fatalErr, s.closed
		var stuck error
		if s.writtenSeq < pos.Seq {
			stuck = s.writeErr
		}
		s.mu.Unlock()
		switch {
		case durable >= pos.Seq:
			return nil
		case fatal != nil:
			return fatal
		case stuck != nil:
			// The record is still buffered behind a failed write (full
			// disk): report it rather than block the caller indefinitely.
			return fmt.Errorf("spool: record %d is not durable: %w", pos.Seq, stuck)
		case closed:
			return ErrClosed
		}
		if s.opts.Fsync != FsyncInterval {
			s.requestSync()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Spool) requestSync() {
	s.forceSync.Store(true)
	select {
	case s.syncReq <- struct{}{}:
	default:
	}
}

// Stats is a snapshot of the spool's state and counters.
type Stats struct {
	BytesOnDisk    int64  // all segment files, including not yet written frames
	Segments       int    // segment files
	RecordsPending uint64 // appended but not acknowledged (an upper bound after losses)
	// OldestUnacked is the append time of the oldest unacknowledged record;
	// zero when nothing is pending.
	OldestUnacked time.Time
	Appended      uint64 // records appended since Open
	DurableSeq    uint64 // highest sequence number known fsynced
	AckedSeq      uint64 // records below this sequence number are acknowledged
	NextSeq       uint64 // sequence number of the next Append
	RecoveredLost uint64 // records found damaged or missing (at Open or when read)
	TornBytes     int64  // bytes cut from torn tails that held no complete record
	Dropped       uint64 // un-uploaded records deleted by OverflowDropOldest
}

// OldestUnackedAge is how long the oldest pending record has waited.
func (st Stats) OldestUnackedAge() time.Duration {
	if st.OldestUnacked.IsZero() {
		return 0
	}
	return time.Since(st.OldestUnacked)
}

// Stats returns a snapshot.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	st := Stats{
		BytesOnDisk: s.bytes,
		Segments:    len(s.segs),
		DurableSeq:  s.durableSeq,
		NextSeq:     s.nextSeq,
	}
	s.mu.Unlock()
	ack := s.currentAck()
	st.AckedSeq = ack.seq
	if st.NextSeq > ack.seq {
		st.RecordsPending = st.NextSeq - ack.seq
		st.OldestUnacked = s.oldestPendingTime(ack)
	}
	st.Appended = s.appended.Load()
	st.RecoveredLost = s.recoveredLost.Load()
	st.TornBytes = s.tornBytes.Load()
	st.Dropped = s.dropped.Load()
	return st
}

func (s *Spool) currentAck() ackRecord {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	return s.ack
}

// Close writes and fsyncs everything buffered, releases the directory and
// stops the background flusher. It is idempotent.
func (s *Spool) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.wg.Wait()

		s.mu.Lock()
		defer s.mu.Unlock()
		var errs []error
		if err := s.writeBufLocked(); err != nil {
			errs = append(errs, fmt.Errorf("spool: %d buffered bytes could not be written at close: %w", len(s.buf), err))
		}
		for _, f := range s.retired {
			errs = append(errs, syncClose(f))
		}
		s.retired = nil
		if s.live != nil {
			f := s.live.f
			// Give back the space reserved beyond the data.
			errs = append(errs, f.Truncate(s.live.written), syncClose(f))
			s.live = nil
		}
		errs = append(errs, syncDir(s.dir))
		if err := errors.Join(errs...); err == nil && s.fatalErr == nil {
			s.markDurableLocked(s.writtenSeq)
		} else {
			s.closeErr = err
		}
		s.closed = true
		s.wakeWaitersLocked() // so that they see closed
		s.closeErr = errors.Join(s.closeErr, s.lock.Close())
	})
	return s.closeErr
}

func syncClose(f *os.File) error {
	return errors.Join(f.Sync(), f.Close())
}

// BacklogReached returns a channel that is closed once at least records
// records are written and not acknowledged, so that the reader can send a
// full batch at once instead of waiting for its next tick. It is meant for
// the one reader: each call replaces the channel of the previous one, which
// then never closes.
func (s *Spool) BacklogReached(records int) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.backlogCh, s.backlogAt = ch, s.currentAck().seq+uint64(max(records, 1))-1
	s.wakeBacklogLocked()
	return ch
}

// wakeBacklogLocked closes the BacklogReached channel once its backlog is
// written.
func (s *Spool) wakeBacklogLocked() {
	if s.backlogCh != nil && s.writtenSeq >= s.backlogAt {
		close(s.backlogCh)
		s.backlogCh = nil
	}
}

// markDurableLocked publishes a new durable sequence number.
func (s *Spool) markDurableLocked(seq uint64) {
	if seq > s.durableSeq {
		s.durableSeq = seq
		s.wakeWaitersLocked()
	}
}

// wakeWaitersLocked makes WaitDurable callers re-check the state.
func (s *Spool) wakeWaitersLocked() {
	close(s.durableCh)
	s.durableCh = make(chan struct{})
}
