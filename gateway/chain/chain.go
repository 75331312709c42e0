// Package chain defines the tamper-evidence of a session: the canonical form
// of a record, the hash chain over a session's records, and the message a
// checkpoint signs. The recorder builds the chain as it records; the verifier
// (gateway/verify) rebuilds it from the documents in Elasticsearch. Both feed
// the same Canon, so the two sides cannot drift apart.
//
// The byte layout is specified in gateway/schema/SCHEMA.md ("Hash chain and
// checkpoints"), so that a third party can verify without this code.
package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
)

// Hash is one link of a chain: SHA-256.
type Hash [sha256.Size]byte

// String is the lowercase hex form stored in pam.chain.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash decodes the hex form.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, errors.New("chain: a link is 64 hex characters")
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, errors.New("chain: a link is 64 hex characters")
	}
	return h, nil
}

// Version is a chain format (SCHEMA.md, "Canonical form"); the genesis
// link names it, so a verifier tells a session's version from its links.
type Version int

const (
	// V1 chained every record's session constants in its own canonical
	// form: link = H(prev ‖ canonical record).
	V1 Version = 1
	// V2 leaves the session constants out of each record's canonical form
	// and chains their digest instead, computed once per session:
	// link = H(prev ‖ SessionDigest ‖ canonical record).
	V2 Version = 2
	// Current is the version the recorder writes.
	Current = V2
)

// Versions lists the versions a verifier accepts, newest first.
var Versions = []Version{V2, V1}

const (
	genesisDomain    = "pamtrail chain genesis v"
	sessionDomain    = "pamtrail session constants v2\x00"
	checkpointDomain = "pamtrail checkpoint v1\x00"
)

// Genesis is the link before seq 0 of a session chained in version v.
func Genesis(v Version, sessionID string) Hash {
	return sha256.Sum256([]byte(genesisDomain + strconv.Itoa(int(v)) + "\x00" + sessionID))
}

// Value types of a canonical entry.
const (
	typeString  = 's'
	typeInt     = 'i'
	typeDouble  = 'd'
	typeBool    = 'b'
	typeStrings = 'a'
	typeNull    = 'n' // a double that is NaN or infinite: the exporter writes null
)

// Names of the record fields outside the attributes. "@" cannot start an
// attribute key pamtrail writes, so they never collide.
const (
	nameEventName  = "@event_name"
	nameBody       = "@body"
	nameSeverity   = "@severity_text"
	nameTimeMs     = "@time_ms"
	nameObservedMs = "@observed_ms"
)

// Canon accumulates the canonical form of one record. Header fields are
// written first in a fixed order; attributes may come in any order and are
// sorted by key when the link is computed. A Canon is reused record after
// record (Reset); it is not safe for concurrent use.
type Canon struct {
	head  []byte
	attrs []byte
	spans []span // attribute entries in attrs, in arrival order
	// order indexes spans by key. It outlives Reset: records built by the
	// same code arrive with the same keys in the same order, so the last
	// order usually fits the next record, which is then checked in one
	// pass instead of sorted.
	order []int32
	out   []byte
}

// span locates one entry in attrs; a record is far below 2 GiB (texts are
// cut to recording.max_text_bytes, documents to Elasticsearch's request
// limit).
type span struct {
	prefix                       uint64 // the key's first 8 bytes, big-endian, zero-padded: most comparisons end here
	start, keyStart, keyEnd, end int32
}

// Reset empties c for the next record.
func (c *Canon) Reset() {
	c.head, c.attrs, c.spans = c.head[:0], c.attrs[:0], c.spans[:0]
}

// Header writes the fields every record has. Times are Unix milliseconds:
// the exporter writes @timestamp as "<ms>.<ns remainder>" without zero
// padding, so only the milliseconds survive exactly.
func (c *Canon) Header(eventName, body, severityText string, timeMs, observedMs int64) {
	b := c.head
	b = appendName(b, nameEventName)
	b = appendString(append(b, typeString), eventName)
	b = appendName(b, nameBody)
	b = appendString(append(b, typeString), body)
	b = appendName(b, nameSeverity)
	b = appendString(append(b, typeString), severityText)
	b = appendName(b, nameTimeMs)
	b = binary.BigEndian.AppendUint64(append(b, typeInt), uint64(timeMs))
	b = appendName(b, nameObservedMs)
	b = binary.BigEndian.AppendUint64(append(b, typeInt), uint64(observedMs))
	c.head = b
}

// begin starts an attribute entry; end closes it after its value.
func (c *Canon) begin(key string) {
	start := len(c.attrs)
	c.attrs = appendName(c.attrs, key)
	var p [8]byte
	copy(p[:], key)
	c.spans = append(c.spans, span{start: int32(start), keyStart: int32(len(c.attrs) - len(key)), keyEnd: int32(len(c.attrs)), prefix: binary.BigEndian.Uint64(p[:])})
}

func (c *Canon) end() { c.spans[len(c.spans)-1].end = int32(len(c.attrs)) }

// String adds a string attribute.
func (c *Canon) String(key, v string) {
	c.begin(key)
	c.attrs = appendString(append(c.attrs, typeString), v)
	c.end()
}

// Int adds an integer attribute.
func (c *Canon) Int(key string, v int64) {
	c.begin(key)
	c.attrs = binary.BigEndian.AppendUint64(append(c.attrs, typeInt), uint64(v))
	c.end()
}

// Double adds a floating-point attribute. NaN and infinities reach
// Elasticsearch as null, so they are canonical nulls.
func (c *Canon) Double(key string, v float64) {
	c.begin(key)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		c.attrs = append(c.attrs, typeNull)
	} else {
		c.attrs = binary.BigEndian.AppendUint64(append(c.attrs, typeDouble), math.Float64bits(v))
	}
	c.end()
}

// Null adds an attribute whose value is null.
func (c *Canon) Null(key string) {
	c.begin(key)
	c.attrs = append(c.attrs, typeNull)
	c.end()
}

// Bool adds a boolean attribute.
func (c *Canon) Bool(key string, v bool) {
	c.begin(key)
	b := byte(0)
	if v {
		b = 1
	}
	c.attrs = append(c.attrs, typeBool, b)
	c.end()
}

// Strings adds a string-array attribute.
func (c *Canon) Strings(key string, vs []string) {
	c.begin(key)
	c.attrs = binary.AppendUvarint(append(c.attrs, typeStrings), uint64(len(vs)))
	for _, v := range vs {
		c.attrs = appendString(c.attrs, v)
	}
	c.end()
}

// SessionDigest is the digest of a session's constant attributes
// (schema.SessionConstant), c holding their entries and no header:
// H("pamtrail session constants v2\x00" ‖ canonical entries). The recorder
// computes it once per session; every link of version 2 covers it.
func (c *Canon) SessionDigest() Hash {
	c.out = c.appendCanonical(append(c.out[:0], sessionDomain...))
	return sha256.Sum256(c.out)
}

// Link returns H(prev ‖ session ‖ canonical record): the record's pam.chain
// (version 2), session being the SessionDigest of the session's constant
// attributes, which c leaves out.
func (c *Canon) Link(prev, session Hash) Hash {
	c.out = append(append(c.out[:0], prev[:]...), session[:]...)
	c.out = c.appendCanonical(c.out)
	return sha256.Sum256(c.out)
}

// LinkV1 returns H(prev ‖ canonical record): the link of version 1, whose
// records held the session constants among their own attributes.
func (c *Canon) LinkV1(prev Hash) Hash {
	c.out = c.appendCanonical(append(c.out[:0], prev[:]...))
	return sha256.Sum256(c.out)
}

// Bytes returns the canonical form (without the previous link), for tests
// and for anyone who wants to inspect what is hashed.
func (c *Canon) Bytes() []byte {
	return c.appendCanonical(nil)
}

func (c *Canon) appendCanonical(out []byte) []byte {
	out = append(out, c.head...)
	if len(c.order) == len(c.spans) {
		// Copy in the previous record's order while checking that it
		// still sorts this one.
		mark := len(out)
		sorted := true
		for k, i := range c.order {
			if k > 0 && !c.less(c.order[k-1], i) {
				sorted = false
				break
			}
			s := c.spans[i]
			out = append(out, c.attrs[s.start:s.end]...)
		}
		if sorted {
			return out
		}
		out = out[:mark]
	}
	c.sort()
	for _, i := range c.order {
		s := c.spans[i]
		out = append(out, c.attrs[s.start:s.end]...)
	}
	return out
}

// sort orders the attribute entries by key bytes (insertion sort: stable,
// and few moves on records that arrive nearly sorted).
func (c *Canon) sort() {
	n := len(c.spans)
	c.order = c.order[:0]
	for i := range n {
		c.order = append(c.order, int32(i))
	}
	for i := 1; i < n; i++ {
		for j := i; j > 0 && c.less(c.order[j], c.order[j-1]); j-- {
			c.order[j], c.order[j-1] = c.order[j-1], c.order[j]
		}
	}
}

func (c *Canon) less(i, j int32) bool {
	a, b := &c.spans[i], &c.spans[j]
	if a.prefix != b.prefix {
		return a.prefix < b.prefix
	}
	return bytes.Compare(c.attrs[a.keyStart:a.keyEnd], c.attrs[b.keyStart:b.keyEnd]) < 0
}

func appendName(b []byte, name string) []byte {
	b = binary.AppendUvarint(b, uint64(len(name)))
	return append(b, name...)
}

func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// Checkpoint is what a checkpoint event states and signs.
type Checkpoint struct {
	SessionID string
	GatewayID string
	KeyID     string
	From, To  int64 // seq range this checkpoint adds to the signed part
	Head      Hash  // pam.chain of seq To
	Final     bool  // the session had ended
}

// Message is the byte string the gateway signs (Ed25519) for c.
func (c Checkpoint) Message() []byte {
	b := make([]byte, 0, 128+len(c.SessionID)+len(c.GatewayID)+len(c.KeyID))
	b = append(b, checkpointDomain...)
	b = appendString(b, c.SessionID)
	b = appendString(b, c.GatewayID)
	b = appendString(b, c.KeyID)
	b = binary.BigEndian.AppendUint64(b, uint64(c.From))
	b = binary.BigEndian.AppendUint64(b, uint64(c.To))
	b = append(b, c.Head[:]...)
	if c.Final {
		return append(b, 1)
	}
	return append(b, 0)
}
