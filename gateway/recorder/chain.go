package recorder

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"unsafe"

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
// something since its last checkpoint. The uploader
// calls it once per upload cycle, so what is uploaded is, cycle after
// cycle, covered by a signature; an idle session costs nothing.
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
	mark := len(rec.b)
	rec.int(schema.AttrSeq, s.next)
	if err := canonical(&s.canon, rec.b); err != nil {
		rec.b = rec.b[:mark]
		return err
	}
	link := s.canon.Link(s.head)
	rec.hash(schema.AttrChain, link)
	if err := s.spool(rec.b); err != nil {
		rec.b = rec.b[:mark]
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
	if signer == nil || s.next == 0 {
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
	rec.hash(schema.AttrCheckpointHead, cp.Head)
	rec.str(schema.AttrCheckpointKeyID, cp.KeyID)
	rec.bool(schema.AttrCheckpointFinal, final)
	rec.str(schema.AttrCheckpointSignature, base64.StdEncoding.EncodeToString(sig))
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

// hash writes a chain link as a hex string attribute without allocating.
func (r *record) hash(key string, h chain.Hash) {
	var buf [2 * len(chain.Hash{})]byte
	hex.Encode(buf[:], h[:])
	size := protowire.SizeTag(anyString) + protowire.SizeBytes(len(buf))
	r.kv(key, size, func(b []byte) []byte {
		b = protowire.AppendTag(b, anyString, protowire.BytesType)
		return protowire.AppendBytes(b, buf[:])
	})
}

var errBadRecord = errors.New("recorder: record is not a well-formed OTLP LogRecord")

// canonical reads an encoded LogRecord back into c: the exact bytes that are
// spooled are what the chain covers.
func canonical(c *chain.Canon, b []byte) error {
	c.Reset()
	var timeNs, observedNs uint64
	var event, body, severity string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errBadRecord
		}
		b = b[n:]
		switch {
		case (num == fieldTime || num == fieldObserved) && typ == protowire.Fixed64Type:
			v, m := protowire.ConsumeFixed64(b)
			if m < 0 {
				return errBadRecord
			}
			if num == fieldTime {
				timeNs = v
			} else {
				observedNs = v
			}
			n = m
		case (num == fieldSeverityText || num == fieldEventName || num == fieldBody || num == fieldAttributes) && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return errBadRecord
			}
			var err error
			switch num {
			case fieldSeverityText:
				severity = view(v)
			case fieldEventName:
				event = view(v)
			case fieldBody:
				body, err = stringValue(v)
			default:
				err = canonicalAttribute(c, v)
			}
			if err != nil {
				return err
			}
			n = m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errBadRecord
			}
		}
		b = b[n:]
	}
	c.Header(event, body, severity, int64(timeNs/1e6), int64(observedNs/1e6))
	return nil
}

// canonicalAttribute adds one KeyValue to c, unless schema leaves it out.
func canonicalAttribute(c *chain.Canon, kv []byte) error {
	var key string
	var value []byte
	for len(kv) > 0 {
		num, typ, n := protowire.ConsumeTag(kv)
		if n < 0 || typ != protowire.BytesType {
			return errBadRecord
		}
		v, m := protowire.ConsumeBytes(kv[n:])
		if m < 0 {
			return errBadRecord
		}
		switch num {
		case 1:
			key = view(v)
		case 2:
			value = v
		}
		kv = kv[n+m:]
	}
	if schema.ChainExcluded(key) {
		return nil
	}
	num, typ, n := protowire.ConsumeTag(value)
	if n < 0 {
		c.Null(key) // an empty AnyValue
		return nil
	}
	value = value[n:]
	switch {
	case num == anyString && typ == protowire.BytesType:
		v, m := protowire.ConsumeBytes(value)
		if m < 0 {
			return errBadRecord
		}
		c.String(key, view(v))
	case num == anyInt && typ == protowire.VarintType:
		v, m := protowire.ConsumeVarint(value)
		if m < 0 {
			return errBadRecord
		}
		c.Int(key, int64(v))
	case num == anyBool && typ == protowire.VarintType:
		v, m := protowire.ConsumeVarint(value)
		if m < 0 {
			return errBadRecord
		}
		c.Bool(key, v != 0)
	case num == anyDouble && typ == protowire.Fixed64Type:
		v, m := protowire.ConsumeFixed64(value)
		if m < 0 {
			return errBadRecord
		}
		c.Double(key, math.Float64frombits(v))
	case num == anyArray && typ == protowire.BytesType:
		arr, m := protowire.ConsumeBytes(value)
		if m < 0 {
			return errBadRecord
		}
		return canonicalStrings(c, key, arr)
	default:
		return fmt.Errorf("recorder: attribute %s has a value type the chain does not cover", key)
	}
	return nil
}

// canonicalStrings adds an ArrayValue of strings: two passes, so the count
// comes first without building a slice.
func canonicalStrings(c *chain.Canon, key string, arr []byte) error {
	count := 0
	for rest := arr; len(rest) > 0; count++ {
		_, _, n := protowire.ConsumeField(rest)
		if n < 0 {
			return errBadRecord
		}
		rest = rest[n:]
	}
	c.StringsStart(key, count)
	for len(arr) > 0 {
		_, _, n := protowire.ConsumeTag(arr)
		v, m := protowire.ConsumeBytes(arr[n:])
		if m < 0 {
			return errBadRecord
		}
		s, err := stringValue(v)
		if err != nil {
			return err
		}
		c.StringsElem(s)
		arr = arr[n+m:]
	}
	c.StringsEnd()
	return nil
}

// stringValue decodes an AnyValue that holds a string.
func stringValue(v []byte) (string, error) {
	if len(v) == 0 {
		return "", nil
	}
	num, typ, n := protowire.ConsumeTag(v)
	if n < 0 || num != anyString || typ != protowire.BytesType {
		return "", errBadRecord
	}
	s, m := protowire.ConsumeBytes(v[n:])
	if m < 0 {
		return "", errBadRecord
	}
	return view(s), nil
}

// view reads bytes as a string without copying; Canon copies what it
// keeps before the record buffer can change.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
