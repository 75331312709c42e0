package spool

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Keyring supplies the ciphers that seal and open records. New segments are
// sealed with the current key; a segment names the key id that sealed it, and
// is readable while that id is in the ring. *keys.Ring implements it.
type Keyring interface {
	CurrentAEAD() (id string, aead cipher.AEAD)
	AEAD(id string) (cipher.AEAD, bool)
}

// FsyncPolicy decides when appended records are forced to stable storage.
type FsyncPolicy string

const (
	// FsyncAlways makes Append return only once the record is fsynced.
	// Concurrent appenders share one fsync (group commit).
	FsyncAlways FsyncPolicy = "always"
	// FsyncInterval fsyncs in the background every Options.FsyncInterval.
	// A crash loses at most about one interval of records; WaitDurable lets
	// a caller wait for a specific record.
	FsyncInterval FsyncPolicy = "interval"
	// FsyncNone writes in the background every interval and leaves flushing
	// to the operating system. WaitDurable still forces an fsync.
	FsyncNone FsyncPolicy = "none"
)

// OverflowPolicy decides what Append does when the spool reaches MaxBytes.
type OverflowPolicy string

const (
	// OverflowRefuse makes Append return ErrSpoolFull (fail closed: the
	// gateway can refuse new sessions).
	OverflowRefuse OverflowPolicy = "refuse"
	// OverflowDropOldest deletes the oldest segment, un-uploaded records
	// included, and counts them in Stats().Dropped.
	OverflowDropOldest OverflowPolicy = "drop-oldest"
)

// Options configure a spool. Every field but MaxBytes and Logger is
// required: the spool has no defaults of its own, so that the gateway's
// validated config (config.Spool.Options) is their one source, and Open
// names the first field that is missing or invalid.
type Options struct {
	// Keys seals new segments and opens old ones.
	Keys Keyring
	// SegmentBytes is the size at which a new segment is started.
	SegmentBytes int64
	// MaxBytes caps the bytes of all segments; 0 means unlimited. It must be
	// at least twice SegmentBytes so that a full spool always has a sealed
	// segment to drop or to wait for.
	MaxBytes int64
	// Overflow decides what happens at MaxBytes.
	Overflow OverflowPolicy
	// Fsync is the durability policy.
	Fsync FsyncPolicy
	// FsyncInterval is the period of the background writer: the group
	// commit of FsyncInterval and the write-back of FsyncNone; under
	// FsyncAlways, where every Append asks for its own fsync, it retries a
	// write that failed.
	FsyncInterval time.Duration
	// MaxRecordBytes is the largest payload Append accepts.
	MaxRecordBytes int
	// Logger receives recovery reports and I/O errors; nil discards them
	// (a library logs only where its caller asks).
	Logger *slog.Logger
}

// validate reports the first invalid field by name.
func (o *Options) validate() error {
	if o.Keys == nil {
		return errors.New("spool: Keys is required")
	}
	id, aead := o.Keys.CurrentAEAD()
	if aead == nil || len(id) != keyIDSize {
		return fmt.Errorf("spool: Keys: current key id %q must be %d characters with a cipher", id, keyIDSize)
	}
	if aead.NonceSize() != nonceSize {
		return fmt.Errorf("spool: Keys: cipher nonce size %d, want %d", aead.NonceSize(), nonceSize)
	}
	for _, f := range []struct {
		name  string
		unset bool
	}{
		{"SegmentBytes", o.SegmentBytes == 0},
		{"MaxRecordBytes", o.MaxRecordBytes == 0},
		{"Overflow", o.Overflow == ""},
		{"Fsync", o.Fsync == ""},
		{"FsyncInterval", o.FsyncInterval == 0},
	} {
		if f.unset {
			return fmt.Errorf("spool: %s is required (the gateway takes it from its config: config.Spool.Options)", f.name)
		}
	}
	if o.MaxRecordBytes <= 0 || o.MaxRecordBytes > 1<<30 {
		return fmt.Errorf("spool: MaxRecordBytes %d out of range (1..1GiB)", o.MaxRecordBytes)
	}
	minSegment := int64(segmentHeaderSize + frameHeaderSize + o.MaxRecordBytes + aead.Overhead())
	if o.SegmentBytes < minSegment {
		return fmt.Errorf("spool: SegmentBytes %d is too small for MaxRecordBytes %d (need at least %d)", o.SegmentBytes, o.MaxRecordBytes, minSegment)
	}
	if o.MaxBytes < 0 {
		return fmt.Errorf("spool: MaxBytes %d must not be negative", o.MaxBytes)
	}
	if o.MaxBytes > 0 && o.MaxBytes < 2*o.SegmentBytes {
		return fmt.Errorf("spool: MaxBytes %d must be 0 (unlimited) or at least twice SegmentBytes (%d)", o.MaxBytes, 2*o.SegmentBytes)
	}
	switch o.Overflow {
	case OverflowRefuse, OverflowDropOldest:
	default:
		return fmt.Errorf("spool: Overflow %q: want %q or %q", o.Overflow, OverflowRefuse, OverflowDropOldest)
	}
	switch o.Fsync {
	case FsyncAlways, FsyncInterval, FsyncNone:
	default:
		return fmt.Errorf("spool: Fsync %q: want %q, %q or %q", o.Fsync, FsyncAlways, FsyncInterval, FsyncNone)
	}
	if o.FsyncInterval <= 0 {
		return fmt.Errorf("spool: FsyncInterval %v must be positive", o.FsyncInterval)
	}
	return nil
}
