package uploader

import (
	"context"
	"github.com/pamtrail/pamtrail/gateway/schema"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
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

// converter rebuilds SDK records from spooled OTLP LogRecord bytes. The
// records are emitted through a LoggerProvider so that the SDK attaches the
// resource and scope, and a processor collects them for a synchronous
// Export whose error decides the ack. (sdklog.Record has no setters for
// resource and scope, so this is the supported way to build complete
// records without a BatchProcessor, which would drop data on failure.)
type converter struct {
	provider *sdklog.LoggerProvider
	logger   log.Logger
	sink     *collectProcessor
}

func newConverter(gatewayID, hostName string) *converter {
	res := resource.NewSchemaless(
		attribute.String(attrServiceName, serviceName),
		attribute.String(attrGatewayID, gatewayID),
		attribute.String(attrHostName, hostName),
	)
	sink := &collectProcessor{}
	provider := sdklog.NewLoggerProvider(
		sdklog.WithResource(res),
		sdklog.WithProcessor(sink),
		// An audit record must arrive whole, whatever OTEL_LOGRECORD_* says.
		sdklog.WithAttributeCountLimit(-1),
		sdklog.WithAttributeValueLengthLimit(-1),
		// The recorder writes each key once and the spool's AEAD keeps the
		// bytes as written, so the SDK's per-record dedup map is pure cost
		// (about a tenth of the gateway's CPU while draining a backlog).
		sdklog.WithAllowKeyDuplication(),
	)
	return &converter{provider: provider, logger: provider.Logger(ScopeName), sink: sink}
}

// convert returns SDK records for the payloads, in order, and how many
// payloads did not decode (they are sent as error records rather than
// skipped: the spool must never silently lose one, and a poison record must
// not block the ones behind it).
func (c *converter) convert(payloads [][]byte) ([]sdklog.Record, int) {
	c.sink.reset(len(payloads))
	bad := 0
	var lr logspb.LogRecord
	for _, p := range payloads {
		ctx, r, err := decodeRecord(p)
		if err != nil {
			lr.Reset()
			if err := proto.Unmarshal(p, &lr); err != nil {
				bad++
				c.emitUndecodable(p, err)
				continue
			}
			ctx, r = recordFromProto(&lr)
		}
		c.logger.Emit(ctx, r)
	}
	return c.sink.take(), bad
}

func (c *converter) emitUndecodable(p []byte, err error) {
	var r log.Record
	now := time.Now()
	r.SetTimestamp(now)
	r.SetObservedTimestamp(now)
	r.SetSeverity(log.SeverityError)
	r.SetSeverityText("ERROR")
	r.SetEventName(eventUndecodable)
	r.SetBody(log.BytesValue(p))
	r.AddAttributes(log.String(attrDecodeFailure, err.Error()))
	c.logger.Emit(context.Background(), r)
}

func (c *converter) shutdown(ctx context.Context) error { return c.provider.Shutdown(ctx) }

// recordFromProto maps an OTLP LogRecord onto the API record. Trace context
// travels in ctx, the only way the SDK accepts it.
func recordFromProto(lr *logspb.LogRecord) (context.Context, log.Record) {
	var r log.Record
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
		r.AddAttributes(kvs...)
	}
	ctx := context.Background()
	var tid trace.TraceID
	var sid trace.SpanID
	if copy(tid[:], lr.GetTraceId()) == len(tid) && tid.IsValid() {
		copy(sid[:], lr.GetSpanId())
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID:    tid,
			SpanID:     sid,
			TraceFlags: trace.TraceFlags(lr.GetFlags() & 0xff),
		})
		ctx = trace.ContextWithSpanContext(ctx, sc)
	}
	return ctx, r
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

// collectProcessor keeps the records the SDK built, for the uploader to
// export synchronously.
type collectProcessor struct {
	mu      sync.Mutex
	records []sdklog.Record
}

func (p *collectProcessor) reset(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.records = make([]sdklog.Record, 0, n)
}

func (p *collectProcessor) take() []sdklog.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.records
	p.records = nil
	return out
}

func (*collectProcessor) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }

func (p *collectProcessor) OnEmit(_ context.Context, r *sdklog.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The record is only valid during the call.
	p.records = append(p.records, r.Clone())
	return nil
}

func (*collectProcessor) Shutdown(context.Context) error   { return nil }
func (*collectProcessor) ForceFlush(context.Context) error { return nil }
