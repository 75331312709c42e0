package recorder

import (
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pamtrail/pamtrail/gateway/chain"
	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// record builds one OTLP LogRecord directly in protobuf wire format. The
// recorder runs once per statement on the proxy's hot path; encoding by hand
// into a pooled buffer, with each session's constant attributes encoded once,
// costs a fraction of building and marshalling the generated structs. The
// output is ordinary OTLP: tests and the uploader decode it with the
// generated types.
type record struct {
	b []byte
	// canon is the record's canonical form (gateway/chain), built from the
	// values as they are encoded when chained is set, so chaining never
	// reads the encoded record back.
	canon   chain.Canon
	chained bool
	// repaired lists the fields whose invalid UTF-8 was replaced: protobuf
	// strings must be UTF-8, and a record that does not decode would reach
	// Elasticsearch without its session attributes.
	repaired []string
	// lossy is set when the engine reported undecodable text.
	lossy bool
}

// LogRecord field numbers (opentelemetry/proto/logs/v1/logs.proto).
const (
	fieldTime         = 1
	fieldSeverityNum  = 2
	fieldSeverityText = 3
	fieldBody         = 5
	fieldAttributes   = 6
	fieldObserved     = 11
	fieldEventName    = 12
)

// AnyValue field numbers (common.proto).
const (
	anyString = 1
	anyBool   = 2
	anyInt    = 3
	anyDouble = 4
	anyArray  = 5
	anyBytes  = 7
)

// Severity numbers (logs.proto SeverityNumber).
const (
	severityInfo = 9
	severityWarn = 13
)

var recordPool = sync.Pool{New: func() any { return &record{b: make([]byte, 0, 1024)} }}

func newRecord() *record {
	r := recordPool.Get().(*record)
	r.b, r.repaired, r.lossy, r.chained = r.b[:0], r.repaired[:0], false, false
	r.canon.Reset(chain.Current)
	return r
}

func (r *record) release() {
	if cap(r.b) <= 64<<10 { // do not keep huge buffers alive (canon's grow with b)
		recordPool.Put(r)
	}
}

// header writes the fields every record has.
func (r *record) header(event string, ts, observed time.Time, warn bool, body string) {
	b := r.b
	b = protowire.AppendTag(b, fieldTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(ts.UnixNano()))
	b = protowire.AppendTag(b, fieldObserved, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(observed.UnixNano()))
	sevNum, sevText := uint64(severityInfo), "INFO"
	if warn {
		sevNum, sevText = severityWarn, "WARN"
	}
	b = protowire.AppendTag(b, fieldSeverityNum, protowire.VarintType)
	b = protowire.AppendVarint(b, sevNum)
	b = protowire.AppendTag(b, fieldSeverityText, protowire.BytesType)
	b = protowire.AppendString(b, sevText)
	b = protowire.AppendTag(b, fieldEventName, protowire.BytesType)
	b = protowire.AppendString(b, event)
	body = r.valid("body", body)
	if r.chained {
		r.canon.Header(event, body, sevText, unixMillis(ts), unixMillis(observed))
	}
	// body: AnyValue{string_value}
	b = protowire.AppendTag(b, fieldBody, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(stringValueSize(body)))
	b = appendStringValue(b, body)
	r.b = b
}

// unixMillis is a time as the chain covers it: the milliseconds of the
// unsigned nanoseconds OTLP carries.
func unixMillis(t time.Time) int64 { return int64(uint64(t.UnixNano()) / 1e6) }

func stringValueSize(v string) int {
	return protowire.SizeTag(anyString) + protowire.SizeBytes(len(v))
}

func appendStringValue(b []byte, v string) []byte {
	b = protowire.AppendTag(b, anyString, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// kv writes one attribute whose AnyValue has valueSize bytes, using fill to
// write the AnyValue's content.
func (r *record) kv(key string, valueSize int, fill func([]byte) []byte) {
	kvSize := protowire.SizeTag(1) + protowire.SizeBytes(len(key)) + protowire.SizeTag(2) + protowire.SizeBytes(valueSize)
	b := protowire.AppendTag(r.b, fieldAttributes, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kvSize))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(valueSize))
	r.b = fill(b)
}

// valid returns v, or v with each invalid UTF-8 sequence replaced by
// U+FFFD, noting key as repaired.
func (r *record) valid(key, v string) string {
	if utf8.ValidString(v) {
		return v
	}
	r.repaired = append(r.repaired, key)
	return strings.ToValidUTF8(v, "\uFFFD")
}

func (r *record) str(key, v string) {
	v = r.valid(key, v)
	if r.chained {
		r.canon.String(key, v)
	}
	r.encodeStr(key, v)
}

// encodeStr writes a string attribute into the record only. Every
// attribute of a chained record goes into its canonical form through str,
// except the checkpoint signature, which the chain leaves out
// (schema.ChainExcluded): the chain tests recompute each link with
// ChainExcluded, so a key left out on one side only fails them.
func (r *record) encodeStr(key, v string) {
	r.kv(key, stringValueSize(v), func(b []byte) []byte { return appendStringValue(b, v) })
}

func (r *record) int(key string, v int64) {
	if r.chained {
		r.canon.Int(key, v)
	}
	size := protowire.SizeTag(anyInt) + protowire.SizeVarint(uint64(v))
	r.kv(key, size, func(b []byte) []byte {
		b = protowire.AppendTag(b, anyInt, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(v))
	})
}

func (r *record) float(key string, v float64) {
	if r.chained {
		r.canon.Double(key, v)
	}
	size := protowire.SizeTag(anyDouble) + protowire.SizeFixed64()
	r.kv(key, size, func(b []byte) []byte {
		b = protowire.AppendTag(b, anyDouble, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(v))
	})
}

func (r *record) bool(key string, v bool) {
	if r.chained {
		r.canon.Bool(key, v)
	}
	size := protowire.SizeTag(anyBool) + protowire.SizeVarint(protowire.EncodeBool(v))
	r.kv(key, size, func(b []byte) []byte {
		b = protowire.AppendTag(b, anyBool, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeBool(v))
	})
}

func (r *record) strs(key string, vs []string) {
	for i, v := range vs {
		if !utf8.ValidString(v) {
			vs = append([]string(nil), vs...) // never modify the caller's slice
			for j := i; j < len(vs); j++ {
				vs[j] = strings.ToValidUTF8(vs[j], "\uFFFD")
			}
			r.repaired = append(r.repaired, key)
			break
		}
	}
	if r.chained {
		r.canon.Strings(key, vs)
	}
	arraySize := 0
	for _, v := range vs {
		arraySize += protowire.SizeTag(1) + protowire.SizeBytes(stringValueSize(v))
	}
	size := protowire.SizeTag(anyArray) + protowire.SizeBytes(arraySize)
	r.kv(key, size, func(b []byte) []byte {
		b = protowire.AppendTag(b, anyArray, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(arraySize))
		for _, v := range vs {
			b = protowire.AppendTag(b, 1, protowire.BytesType) // ArrayValue.values
			b = protowire.AppendVarint(b, uint64(stringValueSize(v)))
			b = appendStringValue(b, v)
		}
		return b
	})
}

// raw appends attributes encoded earlier (a session's constant ones). The
// record's canonical form leaves them out: its link covers their digest.
func (r *record) raw(encoded []byte) { r.b = append(r.b, encoded...) }

// policy adds the attributes of a policy match: the rule, and whether the
// action was blocked (enforce) or only flagged (audit).
func (r *record) policy(m *policy.Match) {
	if m == nil {
		return
	}
	r.bool(schema.AttrBlocked, m.Blocks())
	r.str(schema.AttrPolicyName, m.Policy)
	r.str(schema.AttrPolicyRule, m.Rule)
	r.str(schema.AttrPolicyMode, m.Mode)
}
