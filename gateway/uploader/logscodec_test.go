package uploader

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// exportRequest wraps records as otlploggrpc sends them: one resource with
// the gateway's attributes, one scope.
func exportRequest(records ...*logspb.LogRecord) *collogspb.ExportLogsServiceRequest {
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			kv("service.name", str("pamtrail-gateway")), kv("pam.gateway.id", str("gw-1")), kv("host.name", str("bastion-1")),
		}},
		ScopeLogs: []*logspb.ScopeLogs{{
			Scope:      &commonpb.InstrumentationScope{Name: "github.com/pamtrail/pamtrail/gateway", Version: "1.2.3"},
			LogRecords: records,
		}},
		SchemaUrl: "https://opentelemetry.io/schemas/1.26.0",
	}}}
}

// codecBytes is what logsCodec hands gRPC for v.
func codecBytes(t testing.TB, v any) ([]byte, error) {
	t.Helper()
	data, err := newLogsCodec().Marshal(v)
	if err != nil {
		return nil, err
	}
	defer data.Free()
	return data.Materialize(), nil
}

func TestLogsCodecMatchesProto(t *testing.T) {
	anyOf := func(v any) *commonpb.AnyValue {
		switch x := v.(type) {
		case bool:
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: x}}
		case float64:
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: x}}
		case []byte:
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: x}}
		}
		panic(v)
	}
	// Zero values a oneof member still carries, next to non-zero ones.
	zeroes := &logspb.LogRecord{Attributes: []*commonpb.KeyValue{
		kv("", str("")), kv("false", anyOf(false)), kv("zero", i64(0)), kv("negative", i64(-1)), kv("0.0", anyOf(0.0)),
		kv("nan", anyOf(math.NaN())), kv("nil bytes", anyOf([]byte(nil))), kv("empty", &commonpb.AnyValue{}), {Key: "no value"},
		kv("empty array", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{}}}),
		kv("empty map", &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{}}}),
	}, SeverityNumber: -3, Body: &commonpb.AnyValue{}}
	seeded := seedRecords(t)
	large := make([]*logspb.LogRecord, 3000)
	for i := range large {
		large[i] = sessionRecord("s-large", int64(i))
		large[i].Body = str(strings.Repeat("é", i%300))
	}
	withScopeAttributes := exportRequest(sessionRecord("s", 1))
	withScopeAttributes.ResourceLogs[0].ScopeLogs[0].Scope.Attributes = []*commonpb.KeyValue{kv("a", i64(1<<40))}
	withScopeAttributes.ResourceLogs[0].ScopeLogs[0].Scope.DroppedAttributesCount = 300
	withScopeAttributes.ResourceLogs[0].Resource.DroppedAttributesCount = 1
	withScopeAttributes.ResourceLogs = append(withScopeAttributes.ResourceLogs, &logspb.ResourceLogs{ScopeLogs: []*logspb.ScopeLogs{{}, {SchemaUrl: "s"}}}, &logspb.ResourceLogs{})
	tests := []struct {
		name string
		req  *collogspb.ExportLogsServiceRequest
	}{
		{"empty request", &collogspb.ExportLogsServiceRequest{}},
		{"one statement", exportRequest(sessionRecord("01session", 7))},
		{"every field and nested values", exportRequest(seeded...)},
		{"zero values", exportRequest(zeroes, &logspb.LogRecord{})},
		{"pooled buffer (3,000 records)", exportRequest(large...)},
		{"several resources and scopes", withScopeAttributes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := proto.Marshal(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if b, ok := marshalLogsRequest(tt.req); !ok {
				t.Fatal("the codec fell back to protobuf's")
			} else if !bytes.Equal(b, want) {
				t.Fatalf("the codec wrote %d bytes, protobuf %d: first difference at %d", len(b), len(want), firstDifference(b, want))
			}
			got, err := codecBytes(t, tt.req)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Marshal: %v; equal to protobuf's: %v", err, bytes.Equal(got, want))
			}
		})
	}
}

// TestLogsCodecFallsBack: what the codec does not cover is protobuf's to
// encode, with protobuf's result, error included.
func TestLogsCodecFallsBack(t *testing.T) {
	withEntity := exportRequest(sessionRecord("s", 1))
	withEntity.ResourceLogs[0].Resource.EntityRefs = []*commonpb.EntityRef{{Type: "host", IdKeys: []string{"host.name"}}}
	withKeyIndex := exportRequest(&logspb.LogRecord{Attributes: []*commonpb.KeyValue{{KeyStrindex: 3, Value: str("v")}}})
	withValueIndex := exportRequest(&logspb.LogRecord{Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValueStrindex{StringValueStrindex: 2}}})
	withNilRecord := exportRequest(sessionRecord("s", 1), nil)
	notUTF8 := []*collogspb.ExportLogsServiceRequest{
		exportRequest(&logspb.LogRecord{Body: str("bad \xff")}),
		exportRequest(&logspb.LogRecord{Attributes: []*commonpb.KeyValue{kv("key \xfe", str("v"))}}),
		exportRequest(&logspb.LogRecord{EventName: "\xc3"}),
	}
	notUTF8[2].ResourceLogs[0].SchemaUrl = "\xff"
	for _, req := range []*collogspb.ExportLogsServiceRequest{withEntity, withKeyIndex, withValueIndex, withNilRecord} {
		if _, ok := marshalLogsRequest(req); ok {
			t.Errorf("the codec encoded a request it does not cover: %v", req)
		}
		want, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := codecBytes(t, req); err != nil || !bytes.Equal(got, want) {
			t.Errorf("fallback: %v; equal to protobuf's: %v", err, bytes.Equal(got, want))
		}
	}
	for i, req := range notUTF8 {
		if _, ok := marshalLogsRequest(req); ok {
			t.Errorf("request %d: the codec encoded a string that is not UTF-8", i)
		}
		if _, err := codecBytes(t, req); err == nil || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("request %d: got %v, want protobuf's invalid UTF-8 error", i, err)
		}
	}
	// Messages other than the request (gRPC's health checks, say) are
	// protobuf's too.
	resp := &collogspb.ExportLogsServiceResponse{PartialSuccess: &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: 2, ErrorMessage: "m"}}
	want, _ := proto.Marshal(resp)
	if got, err := codecBytes(t, resp); err != nil || !bytes.Equal(got, want) {
		t.Errorf("response: %v; equal to protobuf's: %v", err, bytes.Equal(got, want))
	}
}

// marshalLogsRequest is the codec's own encoding of req; ok is false where
// it falls back to protobuf's.
func marshalLogsRequest(req *collogspb.ExportLogsServiceRequest) ([]byte, bool) {
	var e logsEncoder
	b, ok, err := e.encode(req, func(size int) []byte { return make([]byte, 0, size) })
	if err != nil {
		panic(err)
	}
	return b, ok
}

// seedRecords are decodeSeeds' records, their unknown fields dropped (one
// seed has one): otlploggrpc builds records from SDK records, which have
// none, and the codec does not encode them.
func seedRecords(t testing.TB) []*logspb.LogRecord {
	var out []*logspb.LogRecord
	for _, raw := range decodeSeeds(t) {
		var lr logspb.LogRecord
		if (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &lr) == nil {
			out = append(out, &lr)
		}
	}
	return out
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// FuzzLogsCodecMatchesProto: any export request (decoded from fuzzed bytes,
// unknown fields dropped as otlploggrpc's requests have none) encodes to
// protobuf's bytes, whether the codec covers it or falls back.
func FuzzLogsCodecMatchesProto(f *testing.F) {
	for _, req := range []*collogspb.ExportLogsServiceRequest{exportRequest(seedRecords(f)...), exportRequest(sessionRecord("s", 1)), {}} {
		raw, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req collogspb.ExportLogsServiceRequest
		if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &req); err != nil {
			return
		}
		want, err := proto.Marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codecBytes(t, &req)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("the codec wrote %d bytes, protobuf %d: first difference at %d", len(got), len(want), firstDifference(got, want))
		}
	})
}

// BenchmarkLogsCodec compares, per record of a 2,000-record export request
// shaped like the recorder's statement events, the codec with gRPC's
// protobuf codec it replaces, side by side.
func BenchmarkLogsCodec(b *testing.B) {
	records := make([]*logspb.LogRecord, 2000)
	for i, raw := range benchPayloads(b, len(records)) {
		records[i] = new(logspb.LogRecord)
		if err := proto.Unmarshal(raw, records[i]); err != nil {
			b.Fatal(err)
		}
	}
	req := exportRequest(records...)
	codec := newLogsCodec()
	for name, marshal := range map[string]func() error{
		"pamtrail": func() error { d, err := codec.Marshal(req); d.Free(); return err },
		"protobuf": func() error { d, err := codec.fallback.Marshal(req); d.Free(); return err },
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if err := marshal(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(records)), "ns/record")
		})
	}
}

// TestLogsCodecKnowsEveryField: the codec writes the fields it knows and
// would silently drop a field a newer go.opentelemetry.io/proto/otlp adds
// to these messages, so every field of every message it encodes is listed
// here as written or as a reason to fall back, and an upgrade that adds one
// fails this test until the codec handles it.
func TestLogsCodecKnowsEveryField(t *testing.T) {
	covered := map[proto.Message][]protowire.Number{
		&collogspb.ExportLogsServiceRequest{}: {fieldResourceLogs},
		&logspb.ResourceLogs{}:                {fieldRLResource, fieldRLScopeLogs, fieldRLSchemaURL},
		&resourcepb.Resource{}:                {fieldResourceAttributes, fieldResourceDropped, 3 /* entity_refs: falls back */},
		&logspb.ScopeLogs{}:                   {fieldSLScope, fieldSLLogRecords, fieldSLSchemaURL},
		&commonpb.InstrumentationScope{}:      {fieldScopeName, fieldScopeVersion, fieldScopeAttributes, fieldScopeDropped},
		&logspb.LogRecord{}: {fieldTime, fieldSeverityNumber, fieldSeverityText, fieldBody, fieldAttributes, fieldDropped,
			fieldFlags, fieldTraceID, fieldSpanID, fieldObservedTime, fieldEventName},
		&commonpb.KeyValue{}: {fieldKVKey, fieldKVValue, 3 /* key_strindex: falls back */},
		&commonpb.AnyValue{}: {fieldAnyString, fieldAnyBool, fieldAnyInt, fieldAnyDouble, fieldAnyArray, fieldAnyKVList, fieldAnyBytes,
			8 /* string_value_strindex: falls back */},
		&commonpb.ArrayValue{}:   {fieldListValues},
		&commonpb.KeyValueList{}: {fieldListValues},
	}
	for msg, numbers := range covered {
		fields := msg.ProtoReflect().Descriptor().Fields()
		var declared []protowire.Number
		for i := range fields.Len() {
			declared = append(declared, fields.Get(i).Number())
		}
		slices.Sort(declared)
		slices.Sort(numbers)
		if !slices.Equal(declared, numbers) {
			t.Errorf("%s has fields %v, the codec knows %v", msg.ProtoReflect().Descriptor().FullName(), declared, numbers)
		}
	}
}
