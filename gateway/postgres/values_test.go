package postgres

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

func be16(v int16) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// numeric builds PostgreSQL's binary numeric.
func numeric(weight, sign, dscale int16, digits ...int16) []byte {
	b := append(be16(int16(len(digits))), be16(weight)...)
	b = append(b, be16(sign)...)
	b = append(b, be16(dscale)...)
	for _, d := range digits {
		b = append(b, be16(d)...)
	}
	return b
}

// array1 builds a one-dimensional binary array; nil elements are NULL.
func array1(elemOID uint32, elems ...[]byte) []byte {
	b := append(be32(1), be32(0)...)
	b = append(b, be32(int32(elemOID))...)
	b = append(b, be32(int32(len(elems)))...)
	b = append(b, be32(1)...)
	for _, e := range elems {
		if e == nil {
			b = append(b, be32(-1)...)
			continue
		}
		b = append(b, be32(int32(len(e)))...)
		b = append(b, e...)
	}
	return b
}

func TestRenderValue(t *testing.T) {
	f8 := make([]byte, 8)
	binary.BigEndian.PutUint64(f8, math.Float64bits(2.5))
	f4 := make([]byte, 4)
	binary.BigEndian.PutUint32(f4, math.Float32bits(-0.25))
	tests := []struct {
		name   string
		oid    uint32
		format int16
		data   []byte
		size   int // 0: len(data)
		limit  int
		style  valueStyle
		want   string
		trunc  bool
	}{
		{name: "null", size: -1, want: "NULL"},
		{name: "text literal quoted", oid: oidText, data: []byte("it's"), want: "'it''s'"},
		{name: "text plain", oid: oidText, data: []byte("it's"), style: stylePlain, want: "it's"},
		{name: "text int is bare", oid: oidInt4, data: []byte("42"), want: "42"},
		{name: "untyped text quoted", data: []byte("42"), want: "'42'"},
		{name: "int2", oid: oidInt2, format: 1, data: be16(-7), want: "-7"},
		{name: "int4", oid: oidInt4, format: 1, data: be32(123456), want: "123456"},
		{name: "int8", oid: oidInt8, format: 1, data: be64(-1 << 40), want: "-1099511627776"},
		{name: "float8", oid: oidFloat8, format: 1, data: f8, want: "2.5"},
		{name: "float4", oid: oidFloat4, format: 1, data: f4, want: "-0.25"},
		{name: "bool", oid: oidBool, format: 1, data: []byte{1}, want: "true"},
		{name: "numeric 12345.678", oid: oidNumeric, format: 1, data: numeric(1, 0, 3, 1, 2345, 6780), want: "12345.678"},
		{name: "numeric -0.0012", oid: oidNumeric, format: 1, data: numeric(-1, 0x4000, 4, 12), want: "-0.0012"},
		{name: "numeric zero scale 2", oid: oidNumeric, format: 1, data: numeric(0, 0, 2), want: "0.00"},
		{name: "numeric 10000", oid: oidNumeric, format: 1, data: numeric(1, 0, 0, 1), want: "10000"},
		{name: "numeric NaN", oid: oidNumeric, format: 1, data: numeric(0, -16384, 0), want: "NaN"},
		{name: "bytea", oid: oidBytea, format: 1, data: []byte{0xde, 0xad}, want: `'\xdead'`},
		{name: "uuid", oid: oidUUID, format: 1, data: []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}, want: "'12345678-9abc-def0-1234-56789abcdef0'"},
		{name: "date", oid: oidDate, format: 1, data: be32(366), want: "'2001-01-01'"},
		{name: "timestamp", oid: oidTimestamp, format: 1, data: be64(86400*1e6 + 1500000), want: "'2000-01-02 00:00:01.5'"},
		{name: "timestamptz", oid: oidTimestamptz, format: 1, data: be64(0), want: "'2000-01-01 00:00:00+00'"},
		{name: "timestamp infinity", oid: oidTimestamp, format: 1, data: be64(math.MaxInt64), want: "'infinity'"},
		{name: "jsonb", oid: oidJSONB, format: 1, data: append([]byte{1}, `{"a":1}`...), want: `'{"a":1}'`},
		{name: "json", oid: oidJSON, format: 1, data: []byte(`[1]`), want: `'[1]'`},
		{name: "int4 array", oid: 1007, format: 1, data: array1(oidInt4, be32(1), nil, be32(3)), want: "'{1,NULL,3}'"},
		{name: "text array quoting", oid: 1009, format: 1, data: array1(oidText, []byte("a b"), []byte(`q"`), []byte("NULL"), []byte("x")), want: `'{"a b","q\"","NULL",x}'`},
		{name: "empty array", oid: 1007, format: 1, data: append(append(be32(0), be32(0)...), be32(oidInt4)...), want: "'{}'"},
		{name: "unknown binary type", oid: 600, format: 1, data: []byte{1, 2}, want: `\x0102 (oid 600)`},
		{name: "malformed int4", oid: oidInt4, format: 1, data: []byte{1}, want: `\x01 (oid 23)`},
		{name: "truncated text", oid: oidText, data: []byte(strings.Repeat("a", 20)), limit: 5, want: "'aaaaa'…", trunc: true},
		{name: "utf8 kept whole", oid: oidText, data: []byte("ééé"), limit: 3, style: stylePlain, want: "é…", trunc: true},
		{name: "captured prefix of binary", oid: oidInt8, format: 1, data: []byte{0, 0}, size: 8, want: `\x0000 (oid 20)…`, trunc: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.size
			if size == 0 {
				size = len(tt.data)
			}
			limit := tt.limit
			if limit == 0 {
				limit = 1024
			}
			got, trunc := renderValue(&decoder{cs: utf8Charset}, tt.oid, tt.format, tt.data, size, limit, tt.style)
			if got != tt.want || trunc != tt.trunc {
				t.Fatalf("renderValue = %q, %v; want %q, %v", got, trunc, tt.want, tt.trunc)
			}
		})
	}
}

func FuzzRenderValue(f *testing.F) {
	f.Add(uint32(oidNumeric), int16(1), numeric(1, 0, 3, 1, 2345, 6780))
	f.Add(uint32(1007), int16(1), array1(oidInt4, be32(1), nil))
	f.Add(uint32(oidTimestamp), int16(1), be64(1))
	f.Fuzz(func(t *testing.T, oid uint32, format int16, data []byte) {
		s, _ := renderValue(&decoder{cs: utf8Charset}, oid, format, data, len(data), 64, styleLiteral)
		if len(s) > 64*2+64 {
			t.Fatalf("rendered %d bytes past the limit", len(s))
		}
	})
}

func FuzzStartupParsers(f *testing.F) {
	f.Add([]byte("user\x00alice\x00database\x00demo\x00\x00"))
	f.Add([]byte("SCRAM-SHA-256\x00\x00\x00\x00\x05n,,n="))
	f.Add([]byte("SCRAM-SHA-256\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if params, err := parseStartupParams(b); err == nil {
			for _, p := range params {
				if p.key == "" {
					t.Fatal("empty parameter name accepted")
				}
			}
		}
		if _, data, ok := parseSASLInitialResponse(b); ok && len(data) > len(b) {
			t.Fatal("data longer than the message")
		}
	})
}
