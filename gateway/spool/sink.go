package spool

import "context"

// RecordSink adapts a Spool to writers that need only an error back, such
// as the recorder's Sink and DurableSink interfaces.
type RecordSink struct{ Spool *Spool }

// Append adds a record (see Spool.Append).
func (r RecordSink) Append(payload []byte) error {
	_, err := r.Spool.Append(payload)
	return err
}

// AppendDurable adds a record and waits until it is on stable storage.
func (r RecordSink) AppendDurable(ctx context.Context, payload []byte) error {
	pos, err := r.Spool.Append(payload)
	if err != nil {
		return err
	}
	return r.Spool.WaitDurable(ctx, pos)
}

// AppendBlocks reports whether Append waits for an fsync (fsync: always).
func (r RecordSink) AppendBlocks() bool { return r.Spool.opts.Fsync == FsyncAlways }
