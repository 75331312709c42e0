package uploader

import (
	"fmt"
	"math"
	"testing"

	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"
)

// decodeSeeds are payloads covering every field the fast path reads, and
// some it must decline.
func decodeSeeds(t testing.TB) [][]byte {
	t.Helper()
	nested := &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
		kv("list", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
			str("a"), i64(-7), {Value: &commonpb.AnyValue_BoolValue{BoolValue: true}},
			{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.Pi}}, {Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0, 1}}}, {},
		}}}}),
		{Key: "no value"},
	}}}}
	full := sessionRecord("s-seed", 3)
	full.Body = nested
	full.Attributes = append(full.Attributes, kv("nested", nested))
	full.TraceId = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	full.SpanId = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	full.Flags = 0x101
	full.DroppedAttributesCount = 2
	var out [][]byte
	for _, m := range []*logspb.LogRecord{sessionRecord("s-seed", 42), full, {}, {Body: &commonpb.AnyValue{}}} {
		raw, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	twice, _ := proto.Marshal(&logspb.LogRecord{Body: str("first")})
	twice = append(twice, twice...) // a repeated singular message: proto merges, the fast path declines
	return append(out, twice, []byte{0x1a, 0x02, 0xff, 0xfe}, []byte{0xff}, []byte{0x22, 0x00})
}

// recordDiff describes how two records differ ("" when they do not).
func recordDiff(a, b sdklog.Record) string {
	switch {
	case a.TraceID() != b.TraceID() || a.SpanID() != b.SpanID() || a.TraceFlags() != b.TraceFlags():
		return fmt.Sprintf("trace %v/%v/%v vs %v/%v/%v", a.TraceID(), a.SpanID(), a.TraceFlags(), b.TraceID(), b.SpanID(), b.TraceFlags())
	case a.Resource() != b.Resource() || a.InstrumentationScope() != b.InstrumentationScope():
		return "resource or scope differ"
	case !a.Timestamp().Equal(b.Timestamp()) || !a.ObservedTimestamp().Equal(b.ObservedTimestamp()):
		return fmt.Sprintf("timestamps %v/%v vs %v/%v", a.Timestamp(), a.ObservedTimestamp(), b.Timestamp(), b.ObservedTimestamp())
	case a.Severity() != b.Severity() || a.SeverityText() != b.SeverityText() || a.EventName() != b.EventName():
		return fmt.Sprintf("severity/event %v %q %q vs %v %q %q", a.Severity(), a.SeverityText(), a.EventName(), b.Severity(), b.SeverityText(), b.EventName())
	case !a.Body().Equal(b.Body()):
		return fmt.Sprintf("body %v vs %v", a.Body(), b.Body())
	case a.AttributesLen() != b.AttributesLen():
		return fmt.Sprintf("%d vs %d attributes", a.AttributesLen(), b.AttributesLen())
	}
	var as, bs []log.KeyValue
	a.WalkAttributes(func(kv log.KeyValue) bool { as = append(as, kv); return true })
	b.WalkAttributes(func(kv log.KeyValue) bool { bs = append(bs, kv); return true })
	for i := range as {
		if !as[i].Equal(bs[i]) {
			return fmt.Sprintf("attribute %d: %v vs %v", i, as[i], bs[i])
		}
	}
	return ""
}

func TestDecodeRecordMatchesProto(t *testing.T) {
	seeds := decodeSeeds(t)
	c := newConverter("gw-test", "host-test")
	fast := 0
	for i, payload := range seeds {
		got, want := c.template, c.template
		if err := decodeRecord(payload, &got, &c.attrs); err != nil {
			continue
		}
		fast++
		var lr logspb.LogRecord
		if err := proto.Unmarshal(payload, &lr); err != nil {
			t.Fatalf("seed %d: fast path accepted what proto refuses: %v", i, err)
		}
		recordFromProto(&lr, &want)
		if diff := recordDiff(got, want); diff != "" {
			t.Errorf("seed %d: %s", i, diff)
		}
	}
	// The recorder's records (the first four seeds) must take the fast path,
	// or it saves nothing; the malformed ones must not.
	if fast != 4 {
		t.Errorf("%d of %d seeds took the fast path, want the 4 well-formed ones", fast, len(seeds))
	}
}
