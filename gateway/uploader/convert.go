package uploader

import (
	"context"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"
)

// ScopeName is the instrumentation scope of every uploaded record.
const ScopeName = "github.com/pamtrail/pamtrail/gateway/recorder"

// Resource attribute keys and values. (service.name and host.name are
// semantic conventions; pam.gateway.id matches schema.AttrGatewayID.)
const (
	serviceName       = "pamtrail-gateway"
	attrServiceName   = "service.name"
	attrHostName      = "host.name"
	attrGatewayID     = schema.AttrGatewayID
	eventUndecodable  = schema.EventSpoolUndecodable
	attrDecodeFailure = schema.AttrSpoolDecodeError
)

// converter rebuilds SDK records from spooled OTLP LogRecord bytes.
// sdklog.Record has no setters for resource and scope, so the converter
// emits one empty record through a LoggerProvider at construction and keeps
// what the SDK built as a template: every record starts as a copy of it and
// is filled with the record's own fields through the SDK record's setters.
// Emitting each record would copy its attributes three times (into the API
// record, the SDK's record and a processor's clone): about two thirds of
// the conversion's CPU (BenchmarkConvert).
type converter struct {
	provider *sdklog.LoggerProvider
	template sdklog.Record
	attrs    []log.KeyValue // decodeRecord's scratch space
}

func newConverter(gatewayID, hostName string) *converter {
	res := resource.NewSchemaless(
		attribute.String(attrServiceName, serviceName),
		attribute.String(attrGatewayID, gatewayID),
		attribute.String(attrHostName, hostName),
	)
	catch := &templateProcessor{}
	provider := sdklog.NewLoggerProvider(
		sdklog.WithResource(res),
		sdklog.WithProcessor(catch),
		// An audit record must arrive whole, whatever OTEL_LOGRECORD_* says.
		sdklog.WithAttributeCountLimit(-1),
		sdklog.WithAttributeValueLengthLimit(-1),
		// The recorder writes each key once and the spool's AEAD keeps the
		// bytes as written, so the SDK's per-record dedup is pure cost.
		sdklog.WithAllowKeyDuplication(),
	)
	provider.Logger(ScopeName).Emit(context.Background(), log.Record{})
	template := catch.record
	template.SetObservedTimestamp(time.Time{}) // the SDK stamped the empty record
	return &converter{provider: provider, template: template}
}

// convert returns SDK records for the payloads, in order, and how many
// payloads did not decode (they are sent as error records rather than
// skipped: the spool must never silently lose one, and a poison record must
// not block the ones behind it). The records point into the payloads,
// which must stay unchanged while the records are in use.
func (c *converter) convert(payloads [][]byte) ([]sdklog.Record, int) {
	out := make([]sdklog.Record, len(payloads))
	bad := 0
	var lr logspb.LogRecord
	for i, p := range payloads {
		r := &out[i]
		*r = c.template
		if err := decodeRecord(p, r, &c.attrs); err != nil {
			*r = c.template
			lr.Reset()
			if err := proto.Unmarshal(p, &lr); err != nil {
				bad++
				undecodable(r, p, err)
				continue
			}
			recordFromProto(&lr, r)
		}
		// As the SDK does when a record is emitted: the observed time is
		// set once the event is observed.
		if r.ObservedTimestamp().IsZero() {
			r.SetObservedTimestamp(time.Now())
		}
	}
	return out, bad
}

// undecodable makes r the error record that carries a payload that is not
// an OTLP log record.
func undecodable(r *sdklog.Record, p []byte, err error) {
	now := time.Now()
	r.SetTimestamp(now)
	r.SetObservedTimestamp(now)
	r.SetSeverity(log.SeverityError)
	r.SetSeverityText("ERROR")
	r.SetEventName(eventUndecodable)
	r.SetBody(log.BytesValue(p))
	r.SetAttributes(log.String(attrDecodeFailure, err.Error()))
}

func (c *converter) shutdown(ctx context.Context) error { return c.provider.Shutdown(ctx) }

// recordFromProto fills r, a copy of the converter's template, from an
// OTLP LogRecord.
func recordFromProto(lr *logspb.LogRecord, r *sdklog.Record) {
	if ts := lr.GetTimeUnixNano(); ts != 0 {
		r.SetTimestamp(time.Unix(0, int64(ts)))
	}
	if ts := lr.GetObservedTimeUnixNano(); ts != 0 {
		r.SetObservedTimestamp(time.Unix(0, int64(ts)))
	}
	r.SetSeverity(log.Severity(lr.GetSeverityNumber()))
	r.SetSeverityText(lr.GetSeverityText())
	r.SetEventName(lr.GetEventName())
	if b := lr.GetBody(); b != nil {
		r.SetBody(valueFromProto(b))
	}
	if attrs := lr.GetAttributes(); len(attrs) > 0 {
		kvs := make([]log.KeyValue, len(attrs))
		for i, kv := range attrs {
			kvs[i] = log.KeyValue{Key: kv.GetKey(), Value: valueFromProto(kv.GetValue())}
		}
		r.SetAttributes(kvs...)
	}
	setTrace(r, lr.GetTraceId(), lr.GetSpanId(), lr.GetFlags())
}

// valueFromProto converts an OTLP AnyValue, nested arrays and maps included.
func valueFromProto(v *commonpb.AnyValue) log.Value {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return log.StringValue(x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		return log.BoolValue(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return log.Int64Value(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return log.Float64Value(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return log.BytesValue(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		vals := x.ArrayValue.GetValues()
		out := make([]log.Value, len(vals))
		for i, e := range vals {
			out[i] = valueFromProto(e)
		}
		return log.SliceValue(out...)
	case *commonpb.AnyValue_KvlistValue:
		kvs := x.KvlistValue.GetValues()
		out := make([]log.KeyValue, len(kvs))
		for i, kv := range kvs {
			out[i] = log.KeyValue{Key: kv.GetKey(), Value: valueFromProto(kv.GetValue())}
		}
		return log.MapValue(out...)
	default:
		return log.Value{}
	}
}

// templateProcessor keeps the one record the converter emits.
type templateProcessor struct{ record sdklog.Record }

func (*templateProcessor) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }

func (p *templateProcessor) OnEmit(_ context.Context, r *sdklog.Record) error {
	p.record = r.Clone() // r is only valid during the call
	return nil
}

func (*templateProcessor) Shutdown(context.Context) error   { return nil }
func (*templateProcessor) ForceFlush(context.Context) error { return nil }
