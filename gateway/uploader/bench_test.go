package uploader

import (
	"context"
	"fmt"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// benchPayloads are n spooled records shaped like the recorder's statement
// events (session attributes, statement text, response, timing).
func benchPayloads(b *testing.B, n int) [][]byte {
	b.Helper()
	out := make([][]byte, n)
	for i := range out {
		lr := sessionRecord("01bench0session0id00000000", int64(i))
		lr.Attributes = append(lr.Attributes,
			kv("user.name", str("alice")), kv("pam.account", str("demo-postgres")), kv("pam.resource.type", str("postgres")),
			kv("client.address", str("127.0.0.1")), kv("pam.gateway.id", str("gw-bench")),
			kv("db.query.text", str(fmt.Sprintf("select %d as n, 'pamtrail delivery load' as note", i))),
			kv("db.operation.name", str("SELECT")), kv("pam.db.command_tag", str("SELECT 1")),
			kv("pam.response.text", str("n | note\n1 | pamtrail delivery load")), kv("db.response.returned_rows", i64(1)),
			kv("pam.duration_ms", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.8}}), kv("pam.start_time", str("2026-12-03T10:00:00.000000001Z")))
		raw, err := proto.Marshal(lr)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = raw
	}
	return out
}

// BenchmarkConvert is the cost per record of rebuilding SDK records from
// the spooled OTLP bytes (decode, emit through the LoggerProvider, clone):
// what the uploader spends on the OTel log SDK at catch-up rates. Issue #17
// asks whether it is worth a cheaper path.
func BenchmarkConvert(b *testing.B) {
	payloads := benchPayloads(b, 2000)
	c := newConverter("gw-bench", "host-bench")
	defer func() { _ = c.shutdown(context.Background()) }()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if recs, bad := c.convert(payloads); bad != 0 || len(recs) != len(payloads) {
			b.Fatalf("converted %d, %d bad", len(recs), bad)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(payloads)), "ns/record")
}

// BenchmarkDecode compares, per spooled record, the wire-level decoder the
// uploader uses with the generated decoder plus copy it falls back to.
func BenchmarkDecode(b *testing.B) {
	payloads := benchPayloads(b, 2000)
	c := newConverter("gw-bench", "host-bench")
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			r := c.template
			if err := decodeRecord(payloads[i%len(payloads)], &r, &c.attrs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		var lr logspb.LogRecord
		for i := range b.N {
			r := c.template
			lr.Reset()
			if err := proto.Unmarshal(payloads[i%len(payloads)], &lr); err != nil {
				b.Fatal(err)
			}
			recordFromProto(&lr, &r)
		}
	})
}

// BenchmarkUploadBacklog drains a spooled backlog to a real OTLP/gRPC server
// on loopback (which only decodes and counts): the uploader's own ceiling,
// with everything it does per record (spool read and AES-GCM open,
// conversion, OTLP encoding, gzip, gRPC, in-order acks). It runs with the
// uploader's codec and with gRPC's protobuf codec, alternating, so the two
// are compared side by side.
func BenchmarkUploadBacklog(b *testing.B) {
	const records = 50_000
	payloads := benchPayloads(b, records)
	srv := startOTLPServer(b, "127.0.0.1:0", nil)
	codecs := []struct {
		name  string
		codec encoding.CodecV2
	}{{"codec=pamtrail", newLogsCodec()}, {"codec=protobuf", encoding.GetCodecV2("proto")}}
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				sp := openSpool(b, b.TempDir(), testenv.Keyring(b, 1))
				for _, p := range payloads {
					if _, err := sp.Append(p); err != nil {
						b.Fatal(err)
					}
				}
				cfg := fastConfig(srv.addr)
				cfg.Interval, cfg.MaxBatchRecords, cfg.codec = time.Hour, 2000, c.codec
				u, err := New(sp, cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				for {
					if err := u.Flush(context.Background()); err != nil {
						b.Fatal(err)
					}
					if u.Stats().Pending == 0 {
						break
					}
				}
				b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
				b.StopTimer()
				_ = u.Shutdown(context.Background())
			}
		})
	}
}
