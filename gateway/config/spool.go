package config

import (
	"log/slog"

	"github.com/pamtrail/pamtrail/gateway/spool"
)

// SpoolMaxRecordBytes is the largest record the gateway spools. It is not a
// setting: the recording limits (recording.max_text_bytes, preview_bytes,
// max_param_bytes) keep records far below it, and spool.segment_bytes must
// leave room for it.
const SpoolMaxRecordBytes = 16 << 20

// minSegmentBytes is the smallest spool.segment_bytes: the largest record
// and a margin for the segment header, the frame header and the cipher's
// overhead.
const minSegmentBytes = SpoolMaxRecordBytes + 1<<20

// Options are the spool's options from this validated section: the spool
// has no defaults of its own, so every value comes from here. keys seal
// and open the segments; log receives recovery reports and I/O errors.
func (s Spool) Options(keys spool.Keyring, log *slog.Logger) spool.Options {
	return spool.Options{
		Keys:           keys,
		SegmentBytes:   int64(s.SegmentBytes),
		MaxBytes:       int64(s.MaxBytes),
		Overflow:       s.Overflow,
		Fsync:          s.Fsync,
		FsyncInterval:  s.FsyncInterval.D(),
		MaxRecordBytes: SpoolMaxRecordBytes,
		Logger:         log,
	}
}
