package uploader

import (
	"fmt"
	"math"
	"sync"
	"unicode/utf8"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// logsCodec is the gRPC codec of the uploader's connection. It encodes
// otlploggrpc's export requests with code written for their message types,
// to the same bytes protobuf's generic marshaller produces, and hands every
// other message (the responses, anything it does not cover) to gRPC's
// protobuf codec. In a drain, the generic marshaller was 43 % of the
// gateway's CPU (perf): it sizes each oneof AnyValue through reflection and
// a map lookup, and walks every message twice.
//
// A request it does not cover falls back whole: string or key indexes
// (profiles' dictionary fields, which logs never set), a resource's entity
// references, nil list elements or oneof members, and any string that is
// not UTF-8, for which the fallback returns protobuf's own error. Unknown
// fields are not encoded: otlploggrpc builds every request from SDK
// records, never from decoded bytes, so none carries any.
type logsCodec struct{ fallback encoding.CodecV2 }

func newLogsCodec() logsCodec { return logsCodec{fallback: encoding.GetCodecV2("proto")} }

// Name is protobuf's: the collector decodes these bytes as it would any
// protobuf request.
func (logsCodec) Name() string { return "proto" }

func (c logsCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.fallback.Unmarshal(data, v)
}

func (c logsCodec) Marshal(v any) (mem.BufferSlice, error) {
	req, ok := v.(*collogspb.ExportLogsServiceRequest)
	if !ok || req == nil {
		return c.fallback.Marshal(v)
	}
	e := encoders.Get().(*logsEncoder)
	defer encoders.Put(e)
	pool := mem.DefaultBufferPool()
	var pooled *[]byte
	b, ok, err := e.encode(req, func(size int) []byte {
		if mem.IsBelowBufferPoolingThreshold(size) {
			return make([]byte, 0, size)
		}
		pooled = pool.Get(size)
		return (*pooled)[:0]
	})
	switch {
	case !ok:
		return c.fallback.Marshal(v)
	case err != nil:
		if pooled != nil {
			pool.Put(pooled)
		}
		return nil, err
	case pooled == nil:
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return mem.BufferSlice{mem.NewBuffer(pooled, pool)}, nil
}

// encoders keep their size lists from request to request: a 2,000-record
// request has about 70,000 sizes.
var encoders = sync.Pool{New: func() any { return new(logsEncoder) }}

// encode sizes req and appends it to the empty buffer alloc returns for
// that size; ok is false where the codec falls back to protobuf's.
func (e *logsEncoder) encode(req *collogspb.ExportLogsServiceRequest, alloc func(size int) []byte) (b []byte, ok bool, err error) {
	size, ok := e.sizeRequest(req)
	if !ok {
		return nil, false, nil
	}
	b = e.appendRequest(alloc(size), req)
	if len(b) != size {
		return nil, true, fmt.Errorf("uploader: encoded %d bytes of a %d-byte export request", len(b), size)
	}
	return b, true, nil
}

// logsEncoder sizes a request, then appends it. The sizing pass keeps the
// size of every message it meets (resources, scopes, records, attributes,
// values), in the order the append pass writes their lengths, so that each
// is computed once.
type logsEncoder struct {
	sizes []int
	next  int
}

// sizeOfLen is the size of a length-delimited field holding n bytes.
func sizeOfLen(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// sizeOfString is that of a proto3 string field: nothing when empty.
func sizeOfString(s string) (int, bool) {
	if s == "" {
		return 0, true
	}
	return sizeOfLen(len(s)), utf8.ValidString(s)
}

func sizeOfVarint(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

// reserve keeps a place for the size of a message whose content the sizing
// pass is about to walk: it is taken before that content's own sizes.
func (e *logsEncoder) reserve() int {
	e.sizes = append(e.sizes, 0)
	return len(e.sizes) - 1
}

// take is the next size the sizing pass kept.
func (e *logsEncoder) take() int {
	n := e.sizes[e.next]
	e.next++
	return n
}

// sized records at's message size n and returns its size as a field.
func (e *logsEncoder) sized(at, n int) int {
	e.sizes[at] = n
	return sizeOfLen(n)
}

func (e *logsEncoder) sizeRequest(req *collogspb.ExportLogsServiceRequest) (int, bool) {
	e.sizes, e.next = e.sizes[:0], 0
	n := 0
	for _, rl := range req.ResourceLogs {
		s, ok := e.sizeResourceLogs(rl)
		if !ok {
			return 0, false
		}
		n += s
	}
	return n, true
}

func (e *logsEncoder) sizeResourceLogs(rl *logspb.ResourceLogs) (int, bool) {
	if rl == nil {
		return 0, false
	}
	at := e.reserve()
	n, ok := sizeOfString(rl.SchemaUrl)
	if !ok {
		return 0, false
	}
	if r := rl.Resource; r != nil {
		if len(r.EntityRefs) > 0 {
			return 0, false
		}
		rat := e.reserve()
		attrs, ok := e.sizeKeyValues(r.Attributes)
		if !ok {
			return 0, false
		}
		n += e.sized(rat, attrs+sizeOfVarint(uint64(r.DroppedAttributesCount)))
	}
	for _, sl := range rl.ScopeLogs {
		s, ok := e.sizeScopeLogs(sl)
		if !ok {
			return 0, false
		}
		n += s
	}
	return e.sized(at, n), true
}

func (e *logsEncoder) sizeScopeLogs(sl *logspb.ScopeLogs) (int, bool) {
	if sl == nil {
		return 0, false
	}
	at := e.reserve()
	n, ok := sizeOfString(sl.SchemaUrl)
	if !ok {
		return 0, false
	}
	if sc := sl.Scope; sc != nil {
		sat := e.reserve()
		name, ok1 := sizeOfString(sc.Name)
		version, ok2 := sizeOfString(sc.Version)
		attrs, ok3 := e.sizeKeyValues(sc.Attributes)
		if !ok1 || !ok2 || !ok3 {
			return 0, false
		}
		n += e.sized(sat, name+version+attrs+sizeOfVarint(uint64(sc.DroppedAttributesCount)))
	}
	for _, lr := range sl.LogRecords {
		s, ok := e.sizeLogRecord(lr)
		if !ok {
			return 0, false
		}
		n += s
	}
	return e.sized(at, n), true
}

func (e *logsEncoder) sizeLogRecord(lr *logspb.LogRecord) (int, bool) {
	if lr == nil {
		return 0, false
	}
	at := e.reserve()
	n := 0
	if lr.TimeUnixNano != 0 {
		n += 1 + 8
	}
	n += sizeOfVarint(uint64(int64(lr.SeverityNumber)))
	text, ok := sizeOfString(lr.SeverityText)
	if !ok {
		return 0, false
	}
	n += text
	if lr.Body != nil {
		s, ok := e.sizeAnyValue(lr.Body)
		if !ok {
			return 0, false
		}
		n += s
	}
	attrs, ok := e.sizeKeyValues(lr.Attributes)
	if !ok {
		return 0, false
	}
	n += attrs + sizeOfVarint(uint64(lr.DroppedAttributesCount))
	if lr.Flags != 0 {
		n += 1 + 4
	}
	if len(lr.TraceId) > 0 {
		n += sizeOfLen(len(lr.TraceId))
	}
	if len(lr.SpanId) > 0 {
		n += sizeOfLen(len(lr.SpanId))
	}
	if lr.ObservedTimeUnixNano != 0 {
		n += 1 + 8
	}
	event, ok := sizeOfString(lr.EventName)
	if !ok {
		return 0, false
	}
	return e.sized(at, n+event), true
}

// sizeKeyValues is the size of a repeated KeyValue field's entries.
func (e *logsEncoder) sizeKeyValues(kvs []*commonpb.KeyValue) (int, bool) {
	n := 0
	for _, kv := range kvs {
		if kv == nil || kv.KeyStrindex != 0 {
			return 0, false
		}
		at := e.reserve()
		s, ok := sizeOfString(kv.Key)
		if !ok {
			return 0, false
		}
		if kv.Value != nil {
			vs, ok := e.sizeAnyValue(kv.Value)
			if !ok {
				return 0, false
			}
			s += vs
		}
		n += e.sized(at, s)
	}
	return n, true
}

// sizeAnyValues is the size of an ArrayValue's entries.
func (e *logsEncoder) sizeAnyValues(values []*commonpb.AnyValue) (int, bool) {
	n := 0
	for _, v := range values {
		if v == nil {
			return 0, false
		}
		s, ok := e.sizeAnyValue(v)
		if !ok {
			return 0, false
		}
		n += s
	}
	return n, true
}

// sizeAnyValue is the size of v as a field. A oneof member is written even
// when it holds its zero value.
func (e *logsEncoder) sizeAnyValue(v *commonpb.AnyValue) (int, bool) {
	at := e.reserve()
	n, ok := 0, true
	switch x := v.Value.(type) {
	case nil:
	case *commonpb.AnyValue_StringValue:
		if x == nil {
			return 0, false
		}
		n, ok = sizeOfLen(len(x.StringValue)), utf8.ValidString(x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		n, ok = 1+1, x != nil
	case *commonpb.AnyValue_IntValue:
		if x == nil {
			return 0, false
		}
		n = 1 + protowire.SizeVarint(uint64(x.IntValue))
	case *commonpb.AnyValue_DoubleValue:
		n, ok = 1+8, x != nil
	case *commonpb.AnyValue_BytesValue:
		if x == nil {
			return 0, false
		}
		n = sizeOfLen(len(x.BytesValue))
	case *commonpb.AnyValue_ArrayValue:
		if x == nil || x.ArrayValue == nil {
			return 0, false
		}
		lat := e.reserve()
		var items int
		items, ok = e.sizeAnyValues(x.ArrayValue.Values)
		n = e.sized(lat, items)
	case *commonpb.AnyValue_KvlistValue:
		if x == nil || x.KvlistValue == nil {
			return 0, false
		}
		lat := e.reserve()
		var items int
		items, ok = e.sizeKeyValues(x.KvlistValue.Values)
		n = e.sized(lat, items)
	default: // string_value_strindex, or a member newer than this code
		return 0, false
	}
	return e.sized(at, n), ok
}

// appendLen writes a length-delimited field's tag and length. Tags here
// are one byte, and most lengths one or two: protowire.AppendVarint is too
// large to be inlined.
func appendLen(b []byte, field protowire.Number, n int) []byte {
	tag := byte(field)<<3 | byte(protowire.BytesType)
	switch {
	case n < 1<<7:
		return append(b, tag, byte(n))
	case n < 1<<14:
		return append(b, tag, byte(n)|0x80, byte(n>>7))
	}
	return protowire.AppendVarint(append(b, tag), uint64(n))
}

func appendString(b []byte, field protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return append(appendLen(b, field, len(s)), s...)
}

func appendVarint(b []byte, field protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, field, protowire.VarintType), v)
}

func appendFixed64(b []byte, field protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendFixed64(protowire.AppendTag(b, field, protowire.Fixed64Type), v)
}

// appendRequest writes req in field-number order, as protobuf's marshaller
// does, taking each message's size in the order sizeRequest kept them. It
// runs only after sizeRequest accepted req.
func (e *logsEncoder) appendRequest(b []byte, req *collogspb.ExportLogsServiceRequest) []byte {
	for _, rl := range req.ResourceLogs {
		b = appendLen(b, fieldResourceLogs, e.take())
		if r := rl.Resource; r != nil {
			b = appendLen(b, fieldRLResource, e.take())
			b = e.appendKeyValues(b, fieldResourceAttributes, r.Attributes)
			b = appendVarint(b, fieldResourceDropped, uint64(r.DroppedAttributesCount))
		}
		for _, sl := range rl.ScopeLogs {
			b = e.appendScopeLogs(b, sl)
		}
		b = appendString(b, fieldRLSchemaURL, rl.SchemaUrl)
	}
	return b
}

func (e *logsEncoder) appendScopeLogs(b []byte, sl *logspb.ScopeLogs) []byte {
	b = appendLen(b, fieldRLScopeLogs, e.take())
	if sc := sl.Scope; sc != nil {
		b = appendLen(b, fieldSLScope, e.take())
		b = appendString(b, fieldScopeName, sc.Name)
		b = appendString(b, fieldScopeVersion, sc.Version)
		b = e.appendKeyValues(b, fieldScopeAttributes, sc.Attributes)
		b = appendVarint(b, fieldScopeDropped, uint64(sc.DroppedAttributesCount))
	}
	for _, lr := range sl.LogRecords {
		b = e.appendLogRecord(appendLen(b, fieldSLLogRecords, e.take()), lr)
	}
	return appendString(b, fieldSLSchemaURL, sl.SchemaUrl)
}

func (e *logsEncoder) appendLogRecord(b []byte, lr *logspb.LogRecord) []byte {
	b = appendFixed64(b, fieldTime, lr.TimeUnixNano)
	b = appendVarint(b, fieldSeverityNumber, uint64(int64(lr.SeverityNumber)))
	b = appendString(b, fieldSeverityText, lr.SeverityText)
	if lr.Body != nil {
		b = e.appendAnyValue(b, fieldBody, lr.Body)
	}
	b = e.appendKeyValues(b, fieldAttributes, lr.Attributes)
	b = appendVarint(b, fieldDropped, uint64(lr.DroppedAttributesCount))
	if lr.Flags != 0 {
		b = protowire.AppendFixed32(protowire.AppendTag(b, fieldFlags, protowire.Fixed32Type), lr.Flags)
	}
	if len(lr.TraceId) > 0 {
		b = append(appendLen(b, fieldTraceID, len(lr.TraceId)), lr.TraceId...)
	}
	if len(lr.SpanId) > 0 {
		b = append(appendLen(b, fieldSpanID, len(lr.SpanId)), lr.SpanId...)
	}
	b = appendFixed64(b, fieldObservedTime, lr.ObservedTimeUnixNano)
	return appendString(b, fieldEventName, lr.EventName)
}

func (e *logsEncoder) appendKeyValues(b []byte, field protowire.Number, kvs []*commonpb.KeyValue) []byte {
	for _, kv := range kvs {
		b = appendLen(b, field, e.take())
		b = appendString(b, fieldKVKey, kv.Key)
		if kv.Value != nil {
			b = e.appendAnyValue(b, fieldKVValue, kv.Value)
		}
	}
	return b
}

// appendAnyValue writes v as field: the one member set, zero or not.
func (e *logsEncoder) appendAnyValue(b []byte, field protowire.Number, v *commonpb.AnyValue) []byte {
	b = appendLen(b, field, e.take())
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		return append(appendLen(b, fieldAnyString, len(x.StringValue)), x.StringValue...)
	case *commonpb.AnyValue_BoolValue:
		return protowire.AppendVarint(protowire.AppendTag(b, fieldAnyBool, protowire.VarintType), protowire.EncodeBool(x.BoolValue))
	case *commonpb.AnyValue_IntValue:
		return protowire.AppendVarint(protowire.AppendTag(b, fieldAnyInt, protowire.VarintType), uint64(x.IntValue))
	case *commonpb.AnyValue_DoubleValue:
		return protowire.AppendFixed64(protowire.AppendTag(b, fieldAnyDouble, protowire.Fixed64Type), math.Float64bits(x.DoubleValue))
	case *commonpb.AnyValue_BytesValue:
		return append(appendLen(b, fieldAnyBytes, len(x.BytesValue)), x.BytesValue...)
	case *commonpb.AnyValue_ArrayValue:
		b = appendLen(b, fieldAnyArray, e.take())
		for _, item := range x.ArrayValue.Values {
			b = e.appendAnyValue(b, fieldListValues, item)
		}
		return b
	case *commonpb.AnyValue_KvlistValue:
		return e.appendKeyValues(appendLen(b, fieldAnyKVList, e.take()), fieldListValues, x.KvlistValue.Values)
	}
	return b
}
