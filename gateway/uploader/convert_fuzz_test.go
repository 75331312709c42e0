package uploader

import (
	"testing"

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
