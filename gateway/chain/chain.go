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
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"unsafe"
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
	// V3 links as V2 does over a smaller canonical form: the attribute
	// keys are covered by the digest of the record's key list (its shape,
	// the same for every record built by the same code, so computed once
	// and reused), not spelled out in every record; and a string attribute
	// equal to the record's body is a reference to it, not a second copy
	// (a statement's text is its body and db.query.text). A pgbench
	// statement hashes about 330 bytes instead of 530.
	V3 Version = 3
	// Current is the version the recorder writes.
	Current = V3
)

// Versions lists the versions a verifier accepts, newest first.
var Versions = []Version{V3, V2, V1}

const (
	genesisDomain    = "pamtrail chain genesis v"
	sessionDomain    = "pamtrail session constants v2\x00"
	shapeDomain      = "pamtrail record shape v3\x00"
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
	typeBody    = '=' // (V3) a string equal to the record's body: no value follows
)

// headerNames name the record fields outside the attributes, in their
// order, in versions before 3 (version 3 fixes the order and leaves the
// names out). "@" cannot start an attribute key pamtrail writes, so they
// never collide.
var headerNames = [...]string{"@event_name", "@body", "@severity_text", "@time_ms", "@observed_ms"}

// Canon accumulates the canonical form of one record. Header fields are
// written first in a fixed order; attributes may come in any order and are
// sorted by key when the link is computed. A Canon is reused record after
// record (Reset); it is not safe for concurrent use.
type Canon struct {
	version Version // 0 is Current
	body    string  // the header's body, for typeBody
	head    []byte  // the header's values, each type ‖ value
	// headEnds are where each header field's value ends in head.
	headEnds [len(headerNames)]int32
	attrs    []byte // each attribute's type ‖ value, in arrival order
	spans    []span // attribute entries in attrs, in arrival order
	// order indexes spans by key. It outlives Reset: records built by the
	// same code arrive with the same keys in the same order, so the last
	// order usually fits the next record, which is then checked in one
	// pass instead of sorted.
	order []int32
	// shapeKeys are the sorted keys whose digest is shape; they too
	// outlive Reset, as the next record usually has the same keys.
	shapeKeys []string
	shape     Hash
	shapeSet  bool // shape is the digest of shapeKeys
	shapeBuf  []byte
	out       []byte
}

// span is one attribute: its key and where its type ‖ value is in attrs (a
// record is far below 2 GiB: texts are cut to recording.max_text_bytes,
// documents to Elasticsearch's request limit).
type span struct {
	prefix     uint64 // the key's first 8 bytes, big-endian, zero-padded: most comparisons end here
	key        string
	start, end int32
}

// Reset empties c for the next record, to be linked in version v.
func (c *Canon) Reset(v Version) {
	c.version, c.body = v, ""
	c.head, c.attrs, c.spans = c.head[:0], c.attrs[:0], c.spans[:0]
}

// shaped reports whether c is linked in a version with shape digests and
// body references (V3 on).
func (c *Canon) shaped() bool { return c.version == 0 || c.version >= V3 }

// refersToBody reports whether string value v is written as a reference to
// the body.
func (c *Canon) refersToBody(v string) bool {
	return c.shaped() && len(v) == len(c.body) && v != "" && v == c.body
}

// Header writes the fields every record has. Times are Unix milliseconds:
// the exporter writes @timestamp as "<ms>.<ns remainder>" without zero
// padding, so only the milliseconds survive exactly.
// c keeps their values (type ‖ value); versions before 3 also name them.
func (c *Canon) Header(eventName, body, severityText string, timeMs, observedMs int64) {
	b := c.head
	b = appendString(append(b, typeString), eventName)
	c.headEnds[0] = int32(len(b))
	b = appendString(append(b, typeString), body)
	c.headEnds[1] = int32(len(b))
	c.body = body
	b = appendString(append(b, typeString), severityText)
	c.headEnds[2] = int32(len(b))
	b = binary.BigEndian.AppendUint64(append(b, typeInt), uint64(timeMs))
	c.headEnds[3] = int32(len(b))
	b = binary.BigEndian.AppendUint64(append(b, typeInt), uint64(observedMs))
	c.headEnds[4] = int32(len(b))
	c.head = b
}

// begin starts an attribute entry; end closes it after its value.
func (c *Canon) begin(key string) {
	c.spans = append(c.spans, span{prefix: keyPrefix(key), key: key, start: int32(len(c.attrs))})
}

// keyPrefix is key's first 8 bytes, big-endian, zero-padded.
func keyPrefix(key string) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(unsafe.Slice(unsafe.StringData(key), 8))
	}
	var p [8]byte
	copy(p[:], key)
	return binary.BigEndian.Uint64(p[:])
}

func (c *Canon) end() { c.spans[len(c.spans)-1].end = int32(len(c.attrs)) }

// String adds a string attribute.
func (c *Canon) String(key, v string) {
	c.begin(key)
	if c.refersToBody(v) {
		c.attrs = append(c.attrs, typeBody)
	} else {
		c.attrs = appendString(append(c.attrs, typeString), v)
	}
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
// H("pamtrail session constants v2\x00" ‖ named entries). The recorder
// computes it once per session; every link of versions 2 and 3 covers it.
func (c *Canon) SessionDigest() Hash {
	c.sort()
	c.out = c.appendNamed(append(c.out[:0], sessionDomain...))
	return sha256.Sum256(c.out)
}

// Link returns the record's pam.chain in versions 2 and 3: H(prev ‖ session
// ‖ canonical record), session being the SessionDigest of the session's
// constant attributes, which c leaves out.
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

// appendCanonical appends the header, then the attributes sorted by key:
// in version 3 the header's values, the shape digest and each attribute's
// type ‖ value; before it every header field and attribute as name ‖ type ‖
// value.
func (c *Canon) appendCanonical(out []byte) []byte {
	c.sort()
	if !c.shaped() {
		if len(c.head) > 0 {
			start := int32(0)
			for k, name := range headerNames {
				out = append(appendName(out, name), c.head[start:c.headEnds[k]]...)
				start = c.headEnds[k]
			}
		}
		return c.appendNamed(out)
	}
	out = append(out, c.head...)
	shape := c.shapeDigest()
	out = append(out, shape[:]...)
	for _, i := range c.order {
		s := c.spans[i]
		out = append(out, c.attrs[s.start:s.end]...)
	}
	return out
}

// appendNamed appends the sorted attributes as name ‖ type ‖ value entries.
func (c *Canon) appendNamed(out []byte) []byte {
	for _, i := range c.order {
		s := c.spans[i]
		out = appendName(out, s.key)
		out = append(out, c.attrs[s.start:s.end]...)
	}
	return out
}

// shapeDigest is H("pamtrail record shape v3\x00" ‖ each sorted key as
// uvarint(len) ‖ key), reused while records keep the same keys.
func (c *Canon) shapeDigest() Hash {
	if c.shapeSet && len(c.shapeKeys) == len(c.order) {
		same := true
		for k, i := range c.order {
			if c.shapeKeys[k] != c.spans[i].key {
				same = false
				break
			}
		}
		if same {
			return c.shape
		}
	}
	c.shapeKeys = c.shapeKeys[:0]
	b := append(c.shapeBuf[:0], shapeDomain...)
	for _, i := range c.order {
		key := c.spans[i].key
		c.shapeKeys = append(c.shapeKeys, key)
		b = appendName(b, key)
	}
	c.shapeBuf = b
	c.shape, c.shapeSet = sha256.Sum256(b), true
	return c.shape
}

// sort orders the attribute entries by key bytes, keeping the previous
// record's order when it still sorts this one (insertion sort otherwise:
// stable, and few moves on records that arrive nearly sorted).
func (c *Canon) sort() {
	n := len(c.spans)
	if len(c.order) == n {
		sorted := true
		for k := 1; k < n; k++ {
			if !c.less(c.order[k-1], c.order[k]) {
				sorted = false
				break
			}
		}
		if sorted {
			return
		}
	}
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
	return a.key < b.key
}
func appendName(b []byte, name string) []byte {
	return appendString(b, name)
}

func appendString(b []byte, v string) []byte {
	if len(v) < 0x80 { // the uvarint is one byte
		return append(append(b, byte(len(v))), v...)
	}
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
