package uploader

import (
	"testing"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzConvert feeds arbitrary spooled payloads to the OTLP decoder and the
// SDK record builder: every payload must yield exactly one record (decoded
// or sent as an error record), never a panic.
func FuzzConvert(f *testing.F) {
	rich, err := proto.Marshal(sessionRecord("s-fuzz", 42))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rich)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add(rich[:len(rich)/2])
	c := newConverter("gw-fuzz", "host-fuzz")
	f.Fuzz(func(t *testing.T, payload []byte) {
		records, bad := c.convert([][]byte{payload})
		if len(records) != 1 || bad > 1 {
			t.Fatalf("convert gave %d records (%d undecodable) for one payload", len(records), bad)
		}
	})
}

// FuzzDecodeRecordMatchesProto: whenever the wire-level decoder accepts a
// payload, the generated decoder accepts it too and both build the same
// record; anything the fast path declines takes the generated one.
func FuzzDecodeRecordMatchesProto(f *testing.F) {
	for _, seed := range decodeSeeds(f) {
		f.Add(seed)
	}
	c := newConverter("gw-fuzz", "host-fuzz")
	f.Fuzz(func(t *testing.T, payload []byte) {
		fast, slow := c.template, c.template
		if err := decodeRecord(payload, &fast, &c.attrs); err != nil {
			return
		}
		var lr logspb.LogRecord
		if err := proto.Unmarshal(payload, &lr); err != nil {
			t.Fatalf("the fast path accepted a payload proto.Unmarshal refuses: %v", err)
		}
		recordFromProto(&lr, &slow)
		if diff := recordDiff(fast, slow); diff != "" {
			t.Fatalf("fast and generated decoders disagree: %s", diff)
		}
	})
}
