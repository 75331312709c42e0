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
	// statement hashes about 310 bytes instead of 590.
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
// sorted by key when the link is computed. Each value is encoded as it is
// added, while the caller has it at hand, so linking only concatenates
// bytes already written (on the proxy, the link runs once per statement
// with caches mostly cold, and walking values by type there cost more than
// the copies it saved), and a caller may reuse its buffers at once. A Canon
// is reused record after record (Reset); it is not safe for concurrent use.
type Canon struct {
	version Version // 0 is Current
	body    string  // the header's body, which a version 3 string may reference
	hdr     []byte  // the header fields, encoded (Header)
	spans   []span  // attribute entries, in arrival order
	vals    []byte  // each attribute's type ‖ value, in arrival order
	// order indexes spans by key. It outlives Reset: records built by the
	// same code arrive with the same keys in the same order, so the last
	// order usually fits the next record, which is then checked in one
	// pass instead of sorted.
	order []int32
	// sortedKeys are the keys in order; they too outlive Reset, as the
	// next record usually has the same keys.
	sortedKeys []string
	prefixes   []uint64 // each span's keyPrefix, while sorting
	shape      Hash
	shapeSet   bool // shape is the digest of sortedKeys
	shapeBuf   []byte
	out        []byte
}

// span is one attribute: its key and where its encoded type ‖ value is in
// vals.
type span struct {
	key        string
	start, end int
}

// Reset empties c for the next record, to be linked in version v.
func (c *Canon) Reset(v Version) {
	c.version, c.body = v, ""
	c.hdr, c.spans, c.vals = c.hdr[:0], c.spans[:0], c.vals[:0]
}

// shaped reports whether c is linked in a version with shape digests and
// body references (V3 on).
func (c *Canon) shaped() bool { return c.version == 0 || c.version >= V3 }

// Header writes the fields every record has, each type ‖ value, preceded by
// its name in versions before 3. Times are Unix milliseconds: the exporter
// writes @timestamp as "<ms>.<ns remainder>" without zero padding, so only
// the milliseconds survive exactly.
func (c *Canon) Header(eventName, body, severityText string, timeMs, observedMs int64) {
	c.body = body
	h, named := c.hdr[:0], !c.shaped()
	for k, v := range [...]string{eventName, body, severityText} {
		if named {
			h = appendName(h, headerNames[k])
		}
		h = appendString(append(h, typeString), v)
	}
	for k, v := range [...]int64{timeMs, observedMs} {
		if named {
			h = appendName(h, headerNames[3+k])
		}
		h = binary.BigEndian.AppendUint64(append(h, typeInt), uint64(v))
	}
	c.hdr = h
}

// added records the attribute whose value was appended to vals from start.
func (c *Canon) added(key string, start int) {
	c.spans = append(c.spans, span{key: key, start: start, end: len(c.vals)})
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

// String adds a string attribute. In version 3 a value equal to the body is
// a reference to it.
func (c *Canon) String(key, v string) {
	start := len(c.vals)
	if c.shaped() && len(v) == len(c.body) && v != "" && v == c.body {
		c.vals = append(c.vals, typeBody)
	} else {
		c.vals = appendString(append(c.vals, typeString), v)
	}
	c.added(key, start)
}

// Int adds an integer attribute.
func (c *Canon) Int(key string, v int64) { c.number(key, typeInt, uint64(v)) }

// Double adds a floating-point attribute. NaN and infinities reach
// Elasticsearch as null, so they are canonical nulls.
func (c *Canon) Double(key string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		c.Null(key)
		return
	}
	c.number(key, typeDouble, math.Float64bits(v))
}

// number adds an int or a double as type ‖ its 8 bytes, big-endian.
func (c *Canon) number(key string, typ byte, bits uint64) {
	start := len(c.vals)
	c.vals = binary.BigEndian.AppendUint64(append(c.vals, typ), bits)
	c.added(key, start)
}

// Null adds an attribute whose value is null.
func (c *Canon) Null(key string) {
	start := len(c.vals)
	c.vals = append(c.vals, typeNull)
	c.added(key, start)
}

// Bool adds a boolean attribute.
func (c *Canon) Bool(key string, v bool) {
	start := len(c.vals)
	b := byte(0)
	if v {
		b = 1
	}
	c.vals = append(c.vals, typeBool, b)
	c.added(key, start)
}

// Strings adds a string-array attribute: uvarint count ‖ entries.
func (c *Canon) Strings(key string, vs []string) {
	start := len(c.vals)
	c.vals = binary.AppendUvarint(append(c.vals, typeStrings), uint64(len(vs)))
	for _, v := range vs {
		c.vals = appendString(c.vals, v)
	}
	c.added(key, start)
}

// value is an attribute's encoded type ‖ value.
func (c *Canon) value(s *span) []byte { return c.vals[s.start:s.end] }

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
	out = append(out, c.hdr...)
	if !c.shaped() {
		return c.appendNamed(out)
	}
	shape := c.shapeDigest()
	out = append(out, shape[:]...)
	for _, i := range c.order {
		out = append(out, c.value(&c.spans[i])...)
	}
	return out
}

// appendNamed appends the sorted attributes as name ‖ type ‖ value entries.
func (c *Canon) appendNamed(out []byte) []byte {
	for _, i := range c.order {
		s := &c.spans[i]
		out = append(appendName(out, s.key), c.value(s)...)
	}
	return out
}

// shapeDigest is H("pamtrail record shape v3\x00" ‖ each sorted key as
// uvarint(len) ‖ key), reused while records keep the same keys (sort).
func (c *Canon) shapeDigest() Hash {
	if c.shapeSet {
		return c.shape
	}
	b := append(c.shapeBuf[:0], shapeDomain...)
	for _, key := range c.sortedKeys {
		b = appendName(b, key)
	}
	c.shapeBuf = b
	c.shape, c.shapeSet = sha256.Sum256(b), true
	return c.shape
}

// sort orders the attribute entries by key bytes. A record built by the
// same code as the previous one has the same keys at the same positions:
// the previous order then still sorts it, which one pass comparing its keys
// with the previous sorted keys shows (mostly by pointer, the keys being
// the same constants), and the shape digest is still valid. Otherwise an
// insertion sort: stable, and few moves on records that arrive nearly
// sorted.
func (c *Canon) sort() {
	n := len(c.spans)
	if len(c.order) == n && len(c.sortedKeys) == n {
		same := true
		for k, i := range c.order {
			if c.spans[i].key != c.sortedKeys[k] {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	c.order, c.prefixes = c.order[:0], c.prefixes[:0]
	for i := range n {
		c.order = append(c.order, int32(i))
		c.prefixes = append(c.prefixes, keyPrefix(c.spans[i].key))
	}
	for i := 1; i < n; i++ {
		for j := i; j > 0 && c.less(c.order[j], c.order[j-1]); j-- {
			c.order[j], c.order[j-1] = c.order[j-1], c.order[j]
		}
	}
	c.sortedKeys = c.sortedKeys[:0]
	for _, i := range c.order {
		c.sortedKeys = append(c.sortedKeys, c.spans[i].key)
	}
	c.shapeSet = false
}

// less compares two attributes' keys, most often by their first 8 bytes.
func (c *Canon) less(i, j int32) bool {
	if a, b := c.prefixes[i], c.prefixes[j]; a != b {
		return a < b
	}
	return c.spans[i].key < c.spans[j].key
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
