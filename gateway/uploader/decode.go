package uploader

import (
	"errors"
	"math"
	"time"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Why a wire-level decoder: decoding a spooled OTLP LogRecord into the
// generated structs and then copying it into a log.Record cost about half
// of the uploader's CPU per record (BenchmarkConvert). decodeRecord reads
// the wire format straight into the SDK record that is exported, its
// strings and bytes pointing into the payload rather than copied. It handles
// what the recorder writes; anything else (a field it does not know, a
// field repeated that should not be, invalid UTF-8, deep nesting) makes it
// give up with errSlowPath, and the record goes through proto.Unmarshal and
// recordFromProto instead, so both paths always agree
// (FuzzDecodeRecordMatchesProto).

// errSlowPath asks for the generated decoder.
var errSlowPath = errors.New("uploader: record needs the generated decoder")

// maxValueDepth bounds nested arrays and maps on the fast path.
const maxValueDepth = 32

// decodeRecord fills r, a copy of the converter's template (resource, scope
// and limits set), from an OTLP LogRecord in wire format, exactly as
// proto.Unmarshal followed by recordFromProto would. The strings and bytes
// of r point into b, which must stay unchanged as long as r is in use (a
// spooled payload is never modified). attrs is scratch space, reused from
// record to record.
func decodeRecord(b []byte, r *sdklog.Record, attrs *[]log.KeyValue) error {
	var seen [fieldEventName + 1]bool
	*attrs = (*attrs)[:0]
	var traceID, spanID []byte
	var flags uint32
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > fieldEventName || (seen[num] && num != fieldAttributes) {
			return errSlowPath
		}
		seen[num] = true
		b = b[n:]
		var err error
		switch {
		case (num == fieldTime || num == fieldObservedTime) && typ == protowire.Fixed64Type:
			var v uint64
			v, b, err = consumeFixed64(b)
			if v != 0 && num == fieldTime {
				r.SetTimestamp(time.Unix(0, int64(v)))
			} else if v != 0 {
				r.SetObservedTimestamp(time.Unix(0, int64(v)))
			}
		case num == fieldSeverityNumber && typ == protowire.VarintType:
			var v uint64
			v, b, err = consumeVarint(b)
			r.SetSeverity(log.Severity(int32(v)))
		case (num == fieldSeverityText || num == fieldEventName) && typ == protowire.BytesType:
			var s string
			s, b, err = consumeString(b)
			if num == fieldSeverityText {
				r.SetSeverityText(s)
			} else {
				r.SetEventName(s)
			}
		case num == fieldBody && typ == protowire.BytesType:
			var raw []byte
			raw, b, err = consumeBytes(b)
			if err == nil {
				var v log.Value
				v, err = decodeAnyValue(raw, 0)
				r.SetBody(v)
			}
		case num == fieldAttributes && typ == protowire.BytesType:
			var raw []byte
			raw, b, err = consumeBytes(b)
			if err == nil {
				var kv log.KeyValue
				kv, err = decodeKeyValue(raw, 0)
				*attrs = append(*attrs, kv)
			}
		case num == fieldDropped && typ == protowire.VarintType:
			_, b, err = consumeVarint(b)
		case num == fieldFlags && typ == protowire.Fixed32Type:
			flags, n = protowire.ConsumeFixed32(b)
			b, err = advance(b, n)
		case (num == fieldTraceID || num == fieldSpanID) && typ == protowire.BytesType:
			var raw []byte
			raw, b, err = consumeBytes(b)
			if num == fieldTraceID {
				traceID = raw
			} else {
				spanID = raw
			}
		default:
			return errSlowPath
		}
		if err != nil {
			return err
		}
	}
	if len(*attrs) > 0 {
		r.SetAttributes(*attrs...)
	}
	setTrace(r, traceID, spanID, flags)
	return nil
}

// setTrace sets a record's trace context as the SDK sets it from a
// context: only with a valid trace id, and then the span id and the low 8
// bits of the flags as they are.
func setTrace(r *sdklog.Record, traceID, spanID []byte, flags uint32) {
	var tid trace.TraceID
	if copy(tid[:], traceID) != len(tid) || !tid.IsValid() {
		return
	}
	var sid trace.SpanID
	copy(sid[:], spanID)
	r.SetTraceID(tid)
	r.SetSpanID(sid)
	r.SetTraceFlags(trace.TraceFlags(flags & 0xff))
}

func decodeKeyValue(b []byte, depth int) (log.KeyValue, error) {
	var kv log.KeyValue
	var seenKey, seenValue bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return kv, errSlowPath
		}
		b = b[n:]
		var err error
		switch {
		case num == fieldKVKey && !seenKey:
			seenKey = true
			kv.Key, b, err = consumeString(b)
		case num == fieldKVValue && !seenValue:
			seenValue = true
			var raw []byte
			if raw, b, err = consumeBytes(b); err == nil {
				kv.Value, err = decodeAnyValue(raw, depth+1)
			}
		default:
			return kv, errSlowPath
		}
		if err != nil {
			return kv, err
		}
	}
	return kv, nil
}

// decodeAnyValue decodes an AnyValue; an empty one is the empty value.
func decodeAnyValue(b []byte, depth int) (log.Value, error) {
	if depth > maxValueDepth {
		return log.Value{}, errSlowPath
	}
	var v log.Value
	for set := false; len(b) > 0; set = true {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || set { // a second member of the oneof: proto keeps the last
			return v, errSlowPath
		}
		b = b[n:]
		var err error
		switch {
		case num == fieldAnyString && typ == protowire.BytesType:
			var s string
			s, b, err = consumeString(b)
			v = log.StringValue(s)
		case num == fieldAnyBool && typ == protowire.VarintType:
			var x uint64
			x, b, err = consumeVarint(b)
			v = log.BoolValue(x != 0)
		case num == fieldAnyInt && typ == protowire.VarintType:
			var x uint64
			x, b, err = consumeVarint(b)
			v = log.Int64Value(int64(x))
		case num == fieldAnyDouble && typ == protowire.Fixed64Type:
			var x uint64
			x, b, err = consumeFixed64(b)
			v = log.Float64Value(math.Float64frombits(x))
		case num == fieldAnyBytes && typ == protowire.BytesType:
			var raw []byte
			raw, b, err = consumeBytes(b)
			v = log.BytesValue(raw)
		case (num == fieldAnyArray || num == fieldAnyKVList) && typ == protowire.BytesType:
			var raw []byte
			if raw, b, err = consumeBytes(b); err == nil {
				v, err = decodeList(raw, num == fieldAnyKVList, depth)
			}
		default:
			return v, errSlowPath
		}
		if err != nil {
			return v, err
		}
	}
	return v, nil
}

// decodeList decodes an ArrayValue or a KeyValueList.
func decodeList(b []byte, kvs bool, depth int) (log.Value, error) {
	var vals []log.Value
	var pairs []log.KeyValue
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != fieldListValues || typ != protowire.BytesType {
			return log.Value{}, errSlowPath
		}
		raw, rest, err := consumeBytes(b[n:])
		if err != nil {
			return log.Value{}, err
		}
		b = rest
		if kvs {
			kv, err := decodeKeyValue(raw, depth+1)
			if err != nil {
				return log.Value{}, err
			}
			pairs = append(pairs, kv)
			continue
		}
		v, err := decodeAnyValue(raw, depth+1)
		if err != nil {
			return log.Value{}, err
		}
		vals = append(vals, v)
	}
	if kvs {
		return log.MapValue(pairs...), nil
	}
	return log.SliceValue(vals...), nil
}

func advance(b []byte, n int) ([]byte, error) {
	if n < 0 {
		return b, errSlowPath
	}
	return b[n:], nil
}

func consumeVarint(b []byte) (uint64, []byte, error) {
	v, n := protowire.ConsumeVarint(b)
	rest, err := advance(b, n)
	return v, rest, err
}

func consumeFixed64(b []byte) (uint64, []byte, error) {
	v, n := protowire.ConsumeFixed64(b)
	rest, err := advance(b, n)
	return v, rest, err
}

func consumeBytes(b []byte) ([]byte, []byte, error) {
	v, n := protowire.ConsumeBytes(b)
	rest, err := advance(b, n)
	return v, rest, err
}

// consumeString is consumeBytes for a proto3 string, which must be UTF-8.
// The string points into b: no copy per key or value.
func consumeString(b []byte) (string, []byte, error) {
	raw, rest, err := consumeBytes(b)
	if err != nil || !utf8.Valid(raw) {
		return "", rest, errSlowPath
	}
	return unsafe.String(unsafe.SliceData(raw), len(raw)), rest, nil
}
