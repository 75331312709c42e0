package postgres

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Type OIDs from pg_type.dat that the recorder renders in binary format.
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidXID         = 28
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidUnknown     = 705
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// arrayElem maps array type OIDs to their element type.
var arrayElem = map[uint32]uint32{
	1000: oidBool, 1001: oidBytea, 1002: oidChar, 1003: oidName, 1016: oidInt8,
	1005: oidInt2, 1007: oidInt4, 1009: oidText, 1028: oidOID, 1011: oidXID,
	199: oidJSON, 1021: oidFloat4, 1022: oidFloat8, 1014: oidBPChar, 1015: oidVarchar,
	1182: oidDate, 1183: oidTime, 1115: oidTimestamp, 1185: oidTimestamptz,
	1187: oidInterval, 1231: oidNumeric, 2951: oidUUID, 3807: oidJSONB,
}

// valueStyle says how a value is rendered: as a SQL literal (bind
// parameters: strings quoted, so a value can't be mistaken for another) or
// plain as psql shows it (result previews).
type valueStyle int

const (
	styleLiteral valueStyle = iota
	stylePlain
)

// renderValue renders one wire value of type oid in format (0 text, 1
// binary) in at most limit bytes; truncated reports a cut. size is the
// value's full length on the wire, which may exceed len(data) when only a
// prefix was captured. A nil data with size < 0 is SQL NULL. Text, in
// either format, is decoded from the session's encoding by d.
func renderValue(d *decoder, oid uint32, format int16, data []byte, size, limit int, style valueStyle) (s string, truncated bool) {
	if size < 0 {
		return "NULL", false
	}
	complete := len(data) == size
	var out string
	bare := false // numbers and booleans are not quoted
	switch {
	case format == 0 && complete:
		out, bare = d.text(data), isBareType(oid)
	case format == 0:
		out, bare = d.prefix(data), isBareType(oid)
	case !complete:
		// A cut binary value can't be decoded; show what we have.
		out = `\x` + hex.EncodeToString(data[:min(len(data), limit/2+1)])
		bare = true
		if oid != oidBytea {
			out += " (oid " + strconv.FormatUint(uint64(oid), 10) + ")"
		}
	default:
		var ok bool
		out, bare, ok = decodeBinary(d, oid, data)
		if !ok {
			out, bare = `\x`+hex.EncodeToString(data[:min(len(data), limit/2+1)])+" (oid "+strconv.FormatUint(uint64(oid), 10)+")", true
			truncated = len(data) > limit/2+1
		}
	}
	if !complete {
		truncated = true
	}
	if len(out) > limit {
		out = truncateUTF8(out, limit)
		truncated = true
	}
	if style == styleLiteral && !bare {
		out = "'" + strings.ReplaceAll(out, "'", "''") + "'"
	}
	if truncated {
		out += "…"
	}
	return out, truncated
}

func isBareType(oid uint32) bool {
	switch oid {
	case oidBool, oidInt2, oidInt4, oidInt8, oidOID, oidXID, oidFloat4, oidFloat8, oidNumeric:
		return true
	}
	return false
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// decodeBinary renders a complete binary value as PostgreSQL's text output
// would; ok is false for types it does not know or malformed data.
func decodeBinary(d *decoder, oid uint32, b []byte) (s string, bare, ok bool) {
	be := binary.BigEndian
	switch oid {
	case oidBool:
		if len(b) != 1 {
			return "", false, false
		}
		if b[0] != 0 {
			return "true", true, true
		}
		return "false", true, true
	case oidInt2:
		if len(b) != 2 {
			return "", false, false
		}
		return strconv.FormatInt(int64(int16(be.Uint16(b))), 10), true, true
	case oidInt4:
		if len(b) != 4 {
			return "", false, false
		}
		return strconv.FormatInt(int64(int32(be.Uint32(b))), 10), true, true
	case oidInt8:
		if len(b) != 8 {
			return "", false, false
		}
		return strconv.FormatInt(int64(be.Uint64(b)), 10), true, true
	case oidOID, oidXID:
		if len(b) != 4 {
			return "", false, false
		}
		return strconv.FormatUint(uint64(be.Uint32(b)), 10), true, true
	case oidFloat4:
		if len(b) != 4 {
			return "", false, false
		}
		return formatFloat(float64(math.Float32frombits(be.Uint32(b))), 32), true, true
	case oidFloat8:
		if len(b) != 8 {
			return "", false, false
		}
		return formatFloat(math.Float64frombits(be.Uint64(b)), 64), true, true
	case oidNumeric:
		s, ok := decodeNumeric(b)
		return s, true, ok
	case oidText, oidVarchar, oidBPChar, oidName, oidUnknown, oidJSON, oidChar:
		return d.text(b), false, true
	case oidJSONB:
		if len(b) < 1 || b[0] != 1 {
			return "", false, false
		}
		return d.text(b[1:]), false, true
	case oidBytea:
		return `\x` + hex.EncodeToString(b), false, true
	case oidUUID:
		if len(b) != 16 {
			return "", false, false
		}
		h := hex.EncodeToString(b)
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], false, true
	case oidDate:
		if len(b) != 4 {
			return "", false, false
		}
		return formatDate(int32(be.Uint32(b))), false, true
	case oidTimestamp, oidTimestamptz:
		if len(b) != 8 {
			return "", false, false
		}
		return formatTimestamp(int64(be.Uint64(b)), oid == oidTimestamptz), false, true
	case oidTime:
		if len(b) != 8 {
			return "", false, false
		}
		return formatTimeOfDay(int64(be.Uint64(b))), false, true
	case oidInterval:
		if len(b) != 16 {
			return "", false, false
		}
		return formatInterval(int64(be.Uint64(b)), int32(be.Uint32(b[8:])), int32(be.Uint32(b[12:]))), false, true
	}
	if _, isArray := arrayElem[oid]; isArray {
		s, ok := decodeArray(d, b)
		return s, false, ok
	}
	return "", false, false
}

func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// decodeNumeric renders PostgreSQL's binary numeric: ndigits, weight, sign,
// dscale, then base-10000 digits.
func decodeNumeric(b []byte) (string, bool) {
	r := msgReader{b: b}
	ndigits := int(r.int16())
	weight := int(r.int16())
	sign := uint16(r.int16())
	dscale := int(r.int16())
	if r.bad || ndigits < 0 || dscale < 0 || len(r.b) != 2*ndigits {
		return "", false
	}
	switch sign {
	case 0xC000:
		return "NaN", true
	case 0xD000:
		return "Infinity", true
	case 0xF000:
		return "-Infinity", true
	case 0x0000, 0x4000:
	default:
		return "", false
	}
	// Bound the work a hostile value can cause (weight is an int16, so the
	// integer part is at most 4*32768 digits anyway).
	if weight > 1000 || dscale > 1000 {
		return "", false
	}
	digits := make([]int, ndigits)
	for i := range digits {
		digits[i] = int(r.int16())
		if digits[i] < 0 || digits[i] > 9999 {
			return "", false
		}
	}
	digit := func(i int) int {
		if i >= 0 && i < ndigits {
			return digits[i]
		}
		return 0
	}
	var sb strings.Builder
	if sign == 0x4000 {
		sb.WriteByte('-')
	}
	if weight < 0 {
		sb.WriteByte('0')
	} else {
		for i := 0; i <= weight; i++ {
			if i == 0 {
				sb.WriteString(strconv.Itoa(digit(i)))
			} else {
				sb.WriteString(pad4(digit(i)))
			}
		}
	}
	if dscale > 0 {
		var frac strings.Builder
		for k := 0; frac.Len() < dscale; k++ {
			frac.WriteString(pad4(digit(weight + 1 + k)))
		}
		sb.WriteByte('.')
		sb.WriteString(frac.String()[:dscale])
	}
	return sb.String(), true
}

func pad4(d int) string {
	s := strconv.Itoa(d)
	return strings.Repeat("0", 4-len(s)) + s
}

// pgEpoch is 2000-01-01, the zero of PostgreSQL's date and timestamp.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func formatDate(days int32) string {
	switch days {
	case math.MaxInt32:
		return "infinity"
	case math.MinInt32:
		return "-infinity"
	}
	return pgEpoch.AddDate(0, 0, int(days)).Format("2006-01-02")
}

func formatTimestamp(us int64, withZone bool) string {
	switch us {
	case math.MaxInt64:
		return "infinity"
	case math.MinInt64:
		return "-infinity"
	}
	t := pgEpoch.Add(time.Duration(us%1e6) * time.Microsecond).Add(time.Duration(us/1e6) * time.Second)
	s := t.Format("2006-01-02 15:04:05.999999")
	if withZone {
		s += "+00"
	}
	return s
}

func formatTimeOfDay(us int64) string {
	d := time.Duration(us) * time.Microsecond
	h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
	sec := float64(d%time.Minute) / float64(time.Second)
	s := strconv.FormatFloat(sec, 'f', -1, 64)
	if sec < 10 {
		s = "0" + s
	}
	return pad2(h) + ":" + pad2(m) + ":" + s
}

func pad2(v int64) string {
	if v < 10 && v >= 0 {
		return "0" + strconv.FormatInt(v, 10)
	}
	return strconv.FormatInt(v, 10)
}

func formatInterval(us int64, days, months int32) string {
	var parts []string
	if months != 0 {
		parts = append(parts, strconv.Itoa(int(months))+" mons")
	}
	if days != 0 {
		parts = append(parts, strconv.Itoa(int(days))+" days")
	}
	if us != 0 || len(parts) == 0 {
		sign := ""
		if us < 0 {
			sign, us = "-", -us
		}
		parts = append(parts, sign+formatTimeOfDay(us))
	}
	return strings.Join(parts, " ")
}

// maxArrayElems bounds the work rendering one array costs.
const maxArrayElems = 10000

// decodeArray renders a binary array in PostgreSQL's text form: {1,2,NULL}.
func decodeArray(d *decoder, b []byte) (string, bool) {
	r := msgReader{b: b}
	ndim := int(r.int32())
	r.int32() // has-null flag
	elemOID := uint32(r.int32())
	if r.bad || ndim < 0 || ndim > 6 {
		return "", false
	}
	if ndim == 0 {
		return "{}", true
	}
	dims := make([]int, ndim)
	total := 1
	for i := range dims {
		dims[i] = int(r.int32())
		r.int32() // lower bound
		if dims[i] < 0 || dims[i] > maxArrayElems {
			return "", false
		}
		total *= dims[i]
		if total > maxArrayElems {
			return "", false
		}
	}
	if r.bad {
		return "", false
	}
	var sb strings.Builder
	var walk func(dim int) bool
	walk = func(dim int) bool {
		sb.WriteByte('{')
		for i := 0; i < dims[dim]; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			if dim+1 < ndim {
				if !walk(dim + 1) {
					return false
				}
				continue
			}
			n := int(r.int32())
			if n < 0 {
				sb.WriteString("NULL")
				continue
			}
			elem := r.next(n)
			if r.bad {
				return false
			}
			s, bare, ok := decodeBinary(d, elemOID, elem)
			if !ok {
				s, bare = `\x`+hex.EncodeToString(elem), false
			}
			if bare {
				sb.WriteString(s)
			} else {
				sb.WriteString(quoteArrayElem(s))
			}
		}
		sb.WriteByte('}')
		return true
	}
	if !walk(0) || len(r.b) != 0 {
		return "", false
	}
	return sb.String(), true
}

// quoteArrayElem quotes an array element the way array_out does.
func quoteArrayElem(s string) string {
	if s != "" && !strings.EqualFold(s, "NULL") && !strings.ContainsAny(s, "{},\"\\ \t\n\r\v\f") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
