package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// OK is an OK packet (or an EOF packet, which carries only warnings and
// status).
type OK struct {
	AffectedRows uint64
	LastInsertID uint64
	Status       uint16
	Warnings     uint16
	Info         string
}

// ParseOK decodes an OK packet whose header (0x00 or 0xfe) is p[0].
func ParseOK(p []byte, caps uint32) (OK, error) {
	r := NewReader(p[1:])
	var ok OK
	ok.AffectedRows, _ = r.LenencInt()
	ok.LastInsertID, _ = r.LenencInt()
	ok.Status = r.Uint16()
	ok.Warnings = r.Uint16()
	if r.Len() > 0 {
		if caps&ClientSessionTrack != 0 {
			info, _ := r.LenencBytes()
			ok.Info = string(info)
		} else {
			ok.Info = string(r.Rest())
		}
	}
	return ok, r.Err()
}

// IsEOF reports whether p ends a result set: an EOF packet, or with
// CLIENT_DEPRECATE_EOF the OK packet with header 0xfe. A row can begin with
// 0xfe only as the 8-byte length prefix of a value of at least 16 MiB, so
// such a row never fits one packet: any shorter 0xfe payload is the end.
func IsEOF(p []byte) bool { return len(p) > 0 && p[0] == HeaderEOF && len(p) < MaxPayload }

// ParseEOF decodes an EOF packet (before CLIENT_DEPRECATE_EOF).
func ParseEOF(p []byte) (warnings, status uint16) {
	r := NewReader(p[1:])
	warnings = r.Uint16()
	status = r.Uint16()
	return warnings, status
}

// Err is an ERR packet.
type Err struct {
	Code     uint16
	SQLState string
	Message  string
}

func (e *Err) Error() string { return fmt.Sprintf("ERROR %d (%s): %s", e.Code, e.SQLState, e.Message) }

// ParseErr decodes an ERR packet (header 0xff).
func ParseErr(p []byte) (*Err, error) {
	r := NewReader(p[1:])
	e := &Err{Code: r.Uint16()}
	if rest := r.Rest(); len(rest) >= 6 && rest[0] == '#' {
		e.SQLState = string(rest[1:6])
		e.Message = string(rest[6:])
	} else {
		e.SQLState = "HY000"
		e.Message = string(rest)
	}
	return e, r.Err()
}

// AppendErr encodes an ERR packet payload.
func AppendErr(dst []byte, code uint16, state, msg string) []byte {
	dst = append(dst, HeaderErr, byte(code), byte(code>>8), '#')
	dst = append(dst, (state + "     ")[:5]...)
	return append(dst, msg...)
}

// AppendOK encodes an OK packet payload (protocol 4.1, no session tracking).
func AppendOK(dst []byte, affected, lastID uint64, status, warnings uint16) []byte {
	dst = append(dst, HeaderOK)
	dst = AppendLenencInt(dst, affected)
	dst = AppendLenencInt(dst, lastID)
	return append(dst, byte(status), byte(status>>8), byte(warnings), byte(warnings>>8))
}

// Column is the part of a column definition the gateway records.
type Column struct {
	Name     string
	Type     byte
	Flags    uint16
	Charset  uint16
	Decimals byte
}

// FlagUnsigned is the column flag of unsigned integers.
const FlagUnsigned uint16 = 0x20

// ParseColumn decodes a ColumnDefinition41 packet.
func ParseColumn(p []byte) (Column, error) {
	r := NewReader(p)
	for range 4 { // catalog, schema, table, org_table
		r.LenencBytes()
	}
	name, _ := r.LenencBytes()
	r.LenencBytes() // org_name
	r.LenencInt()   // length of the fixed fields (0x0c)
	c := Column{Name: string(name)}
	c.Charset = r.Uint16()
	r.Uint32() // column length
	c.Type = r.Byte()
	c.Flags = r.Uint16()
	c.Decimals = r.Byte()
	return c, r.Err()
}

// Field types.
const (
	TypeDecimal    byte = 0x00
	TypeTiny       byte = 0x01
	TypeShort      byte = 0x02
	TypeLong       byte = 0x03
	TypeFloat      byte = 0x04
	TypeDouble     byte = 0x05
	TypeNull       byte = 0x06
	TypeTimestamp  byte = 0x07
	TypeLongLong   byte = 0x08
	TypeInt24      byte = 0x09
	TypeDate       byte = 0x0a
	TypeTime       byte = 0x0b
	TypeDateTime   byte = 0x0c
	TypeYear       byte = 0x0d
	TypeNewDate    byte = 0x0e
	TypeVarchar    byte = 0x0f
	TypeBit        byte = 0x10
	TypeJSON       byte = 0xf5
	TypeNewDecimal byte = 0xf6
	TypeEnum       byte = 0xf7
	TypeSet        byte = 0xf8
	TypeTinyBlob   byte = 0xf9
	TypeMediumBlob byte = 0xfa
	TypeLongBlob   byte = 0xfb
	TypeBlob       byte = 0xfc
	TypeVarString  byte = 0xfd
	TypeString     byte = 0xfe
	TypeGeometry   byte = 0xff
)

// Value is one decoded value: Null, or its text form (the bytes as
// stored, for strings and blobs).
type Value struct {
	Null bool
	Text string
}

// ParseTextRow splits a text-protocol row into n values.
func ParseTextRow(p []byte, n int) ([]Value, error) {
	r := NewReader(p)
	vals := make([]Value, n)
	for i := range vals {
		b, null := r.LenencBytes()
		vals[i] = Value{Null: null, Text: string(b)}
	}
	if r.Len() != 0 && r.Err() == nil {
		return vals, fmt.Errorf("%w: %d bytes after the last column", ErrMalformed, r.Len())
	}
	return vals, r.Err()
}

// ParseBinaryRow decodes a binary-protocol row (header 0x00, a NULL bitmap
// offset by 2, then each non-NULL value by its column type).
func ParseBinaryRow(p []byte, cols []Column) ([]Value, error) {
	r := NewReader(p)
	if r.Byte() != 0x00 {
		return nil, fmt.Errorf("%w: binary row without its 0x00 header", ErrMalformed)
	}
	bitmap := r.Bytes((len(cols) + 7 + 2) / 8)
	vals := make([]Value, len(cols))
	for i, c := range cols {
		bit := i + 2
		if r.Err() == nil && bitmap[bit/8]&(1<<(bit%8)) != 0 {
			vals[i] = Value{Null: true}
			continue
		}
		vals[i] = ReadBinaryValue(r, c.Type, c.Flags&FlagUnsigned != 0)
	}
	return vals, r.Err()
}

// ReadBinaryValue decodes one binary-protocol value of type t.
func ReadBinaryValue(r *Reader, t byte, unsigned bool) Value {
	intText := func(v uint64, bits int) string {
		if unsigned {
			return strconv.FormatUint(v, 10)
		}
		shift := 64 - bits
		return strconv.FormatInt(int64(v<<shift)>>shift, 10)
	}
	switch t {
	case TypeNull:
		return Value{Null: true}
	case TypeTiny:
		return Value{Text: intText(uint64(r.Byte()), 8)}
	case TypeShort, TypeYear:
		return Value{Text: intText(uint64(r.Uint16()), 16)}
	case TypeLong, TypeInt24:
		return Value{Text: intText(uint64(r.Uint32()), 32)}
	case TypeLongLong:
		return Value{Text: intText(r.Uint64(), 64)}
	case TypeFloat:
		return Value{Text: strconv.FormatFloat(float64(math.Float32frombits(r.Uint32())), 'g', -1, 32)}
	case TypeDouble:
		return Value{Text: strconv.FormatFloat(math.Float64frombits(r.Uint64()), 'g', -1, 64)}
	case TypeDate, TypeDateTime, TypeTimestamp, TypeNewDate:
		return Value{Text: readDateTime(r, t)}
	case TypeTime:
		return Value{Text: readTime(r)}
	case TypeTinyBlob, TypeMediumBlob, TypeLongBlob, TypeBlob, TypeGeometry, TypeBit:
		b, _ := r.LenencBytes()
		return Value{Text: string(b)}
	default: // strings, decimals, enum, set, json and unknown types are length-encoded
		b, _ := r.LenencBytes()
		return Value{Text: string(b)}
	}
}

func readDateTime(r *Reader, t byte) string {
	n := r.Byte()
	if n == 0 {
		if t == TypeDate || t == TypeNewDate {
			return "0000-00-00"
		}
		return "0000-00-00 00:00:00"
	}
	b := r.Bytes(int(n))
	if b == nil || (n != 4 && n != 7 && n != 11) {
		return ""
	}
	s := fmt.Sprintf("%04d-%02d-%02d", binary.LittleEndian.Uint16(b), b[2], b[3])
	if n >= 7 {
		s += fmt.Sprintf(" %02d:%02d:%02d", b[4], b[5], b[6])
	}
	if n == 11 {
		s += fmt.Sprintf(".%06d", binary.LittleEndian.Uint32(b[7:]))
	}
	return s
}

func readTime(r *Reader) string {
	n := r.Byte()
	if n == 0 {
		return "00:00:00"
	}
	b := r.Bytes(int(n))
	if b == nil || (n != 8 && n != 12) {
		return ""
	}
	var sb strings.Builder
	if b[0] == 1 {
		sb.WriteByte('-')
	}
	hours := binary.LittleEndian.Uint32(b[1:])*24 + uint32(b[5])
	fmt.Fprintf(&sb, "%02d:%02d:%02d", hours, b[6], b[7])
	if n == 12 {
		fmt.Fprintf(&sb, ".%06d", binary.LittleEndian.Uint32(b[8:]))
	}
	return sb.String()
}
