package keys

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary keyring files to the parser: it must not panic,
// a ring it accepts must survive a marshal/parse round trip, and no error
// may quote key material.
func FuzzParse(f *testing.F) {
	k, err := NewKey()
	if err != nil {
		f.Fatal(err)
	}
	r, _ := NewRing(k)
	good, _ := r.Marshal()
	f.Add(good)
	f.Add([]byte(`{"version":1,"keys":[]}`))
	f.Add([]byte(`{"version":1,"keys":[{"id":"x","key":"AAAA"}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			for _, tok := range strings.FieldsFunc(string(data), func(c rune) bool { return c == '"' }) {
				if len(tok) >= 40 && strings.Contains(err.Error(), tok) {
					t.Fatalf("error %q quotes input that may be key material", err)
				}
			}
			return
		}
		again, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := Parse(again)
		if err != nil || strings.Join(r2.IDs(), ",") != strings.Join(r.IDs(), ",") {
			t.Fatalf("round trip changed the ring: %v", err)
		}
	})
}
