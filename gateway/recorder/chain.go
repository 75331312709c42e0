package recorder

import (
	"encoding/base64"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pamtrail/pamtrail/gateway/chain"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Signer signs a session's checkpoints: the gateway's Ed25519 signing key
// (keys.SigningKey).
type Signer interface {
	KeyID() string
	Sign(msg []byte) []byte
}

// Checkpoint signs the chain head of every live session that recorded
// something since its last checkpoint. The uploader calls it once per
// upload interval, so what is uploaded is covered by a signature at most an
// interval later; an idle session costs nothing.
func (r *OTel) Checkpoint() {
	if r.opts.Signer == nil {
		return
	}
	r.active.Range(func(_, v any) bool {
		s := v.(*otelSession)
		s.mu.Lock()
		var err error
		if s.dirty {
			err = s.checkpointLocked(false)
		}
		s.mu.Unlock()
		if err != nil {
			_ = r.recordFailure(s, schema.EventCheckpoint, err)
		}
		return true
	})
}

// Cycle is what the uploader runs before each upload: heartbeats, then
// checkpoints.
func (r *OTel) Cycle() {
	r.Heartbeat()
	r.Checkpoint()
}

// appendChained numbers the record, links it into the session's chain and
// spools it, all under the session lock, so that sequence numbers, chain
// order and spool order agree: a crash can lose a suffix of a session, never
// a record in the middle. A record that fails to spool takes no number and
// no link, so it leaves no gap for a verifier to mistake for a deletion (the
// session end counts it in pam.recording.errors).
func (s *otelSession) appendChained(event string, rec *record) error {
	defer rec.release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.appendLocked(event, rec); err != nil {
		return err
	}
	if s.sealed && event != schema.EventCheckpoint {
		// A channel raced the session's end: seal again, so nothing
		// follows the last final checkpoint unsigned.
		return s.checkpointLocked(true)
	}
	return nil
}

// appendUnchained spools a heartbeat: it repeats the latest event's seq and
// is not part of the chain (it never reaches the events index).
func (s *otelSession) appendUnchained(rec *record) error {
	defer rec.release()
	s.mu.Lock()
	defer s.mu.Unlock()
	flagRepaired(rec)
	rec.int(schema.AttrSeq, max(s.next-1, 0))
	return s.spool(rec.b)
}

func (s *otelSession) appendLocked(event string, rec *record) error {
	flagRepaired(rec)
	rec.int(schema.AttrSeq, s.next)
	link := s.head
	if rec.chained {
		link = rec.canon.Link(s.head, s.constants)
		rec.link(link)
	}
	if err := s.spool(rec.b); err != nil {
		return err
	}
	s.next++
	s.head = link
	if event != schema.EventCheckpoint {
		s.dirty = true
	}
	return nil
}

// checkpointLocked appends a signed checkpoint covering every record so far.
func (s *otelSession) checkpointLocked(final bool) error {
	signer := s.r.opts.Signer
	if signer == nil || s.next == 0 || s.r.opts.DisableChainForBenchmark {
		return nil
	}
	cp := chain.Checkpoint{
		SessionID: s.info.ID, GatewayID: s.r.opts.GatewayID, KeyID: signer.KeyID(),
		From: s.signedTo + 1, To: s.next - 1, Head: s.head, Final: final,
	}
	sig := signer.Sign(cp.Message())
	rec := s.begin(schema.EventCheckpoint, s.r.opts.Now(), false,
		fmt.Sprintf("checkpoint: seq %d-%d signed by key %s", cp.From, cp.To, cp.KeyID))
	defer rec.release()
	rec.int(schema.AttrCheckpointFrom, cp.From)
	rec.int(schema.AttrCheckpointTo, cp.To)
	rec.str(schema.AttrCheckpointHead, cp.Head.String())
	rec.str(schema.AttrCheckpointKeyID, cp.KeyID)
	rec.bool(schema.AttrCheckpointFinal, final)
	rec.encodeStr(schema.AttrCheckpointSignature, base64.StdEncoding.EncodeToString(sig))
	if err := s.appendLocked(schema.EventCheckpoint, rec); err != nil {
		return err
	}
	s.signedTo = cp.To
	s.dirty = false
	if final {
		s.sealed = true
	}
	return nil
}

// seal records the final checkpoint after the session's end record.
func (s *otelSession) seal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpointLocked(true)
}

// link writes the record's own chain link (pam.chain), which its canonical
// form leaves out, as its 32 bytes: the Elasticsearch exporter writes a
// bytes value as lowercase hex, the form SCHEMA.md specifies and verifiers
// read, and the record carries half as many bytes as with the hex itself.
func (r *record) link(h chain.Hash) {
	size := protowire.SizeTag(anyBytes) + protowire.SizeBytes(len(h))
	r.kv(schema.AttrChain, size, func(b []byte) []byte {
		b = protowire.AppendTag(b, anyBytes, protowire.BytesType)
		return protowire.AppendBytes(b, h[:])
	})
}
