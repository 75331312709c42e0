package postgres

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
)

// Startup-phase request codes (the int32 after the length of an untyped
// startup packet).
const (
	protocolVersion30 = 3<<16 | 0
	protocolVersion32 = 3<<16 | protocolMinor32
	sslRequestCode    = 80877103
	gssEncRequestCode = 80877104
	cancelRequestCode = 80877102
)

// maxStartupPacket is PostgreSQL's MAX_STARTUP_PACKET_LENGTH: larger startup
// packets are refused before reading them.
const maxStartupPacket = 10000

// SQLSTATE codes the gateway itself sends.
const (
	codeInvalidPassword       = "28P01"
	codeInvalidAuthorization  = "28000"
	codeConnectionFailure     = "08006"
	codeProtocolViolation     = "08P01"
	codeFeatureNotSupported   = "0A000"
	codeAdminShutdown         = "57P01"
	codeInsufficientPrivilege = "42501"
	codeIdleSessionTimeout    = "57P05"
	codeCannotConnectNow      = "57P03"
	codeInternalError         = "XX000"
)

// wireError is an error the gateway reports to the client as an
// ErrorResponse: it carries the SQLSTATE and a message safe to show.
type wireError struct {
	code    string
	message string
	detail  string
}

func (e *wireError) Error() string { return e.message + " (SQLSTATE " + e.code + ")" }

func protocolErrorf(format string, args ...any) *wireError {
	return &wireError{code: codeProtocolViolation, message: fmt.Sprintf(format, args...)}
}

// appendErrorResponse appends a FATAL ErrorResponse: every error the gateway
// sends by itself ends the connection.
func appendErrorResponse(dst []byte, e *wireError) []byte {
	return appendError(dst, "FATAL", e)
}

// appendError appends an ErrorResponse of the given severity.
func appendError(dst []byte, severity string, e *wireError) []byte {
	start := len(dst)
	dst = append(dst, 'E', 0, 0, 0, 0)
	field := func(k byte, v string) {
		dst = append(dst, k)
		dst = append(dst, v...)
		dst = append(dst, 0)
	}
	field('S', severity)
	field('V', severity)
	field('C', e.code)
	field('M', e.message)
	if e.detail != "" {
		field('D', e.detail)
	}
	dst = append(dst, 0)
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}

// appendMessage appends a typed message with the given body.
func appendMessage(dst []byte, typ byte, body []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)+4))
	return append(dst, body...)
}

// msgReader decodes the body of one message. Reads past the end set bad and
// return zero values, so a truncated or malformed message never panics;
// callers check bad once at the end.
type msgReader struct {
	b   []byte
	bad bool
}

func (r *msgReader) byte1() byte {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *msgReader) int16() int16 {
	if len(r.b) < 2 {
		r.bad, r.b = true, nil
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.b))
	r.b = r.b[2:]
	return v
}

func (r *msgReader) int32() int32 {
	if len(r.b) < 4 {
		r.bad, r.b = true, nil
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

// cstring returns the bytes up to the next NUL (not included). Without a
// NUL it returns the rest and marks the reader bad: a captured prefix of a
// long message ends in the middle of a string.
func (r *msgReader) cstring() []byte {
	i := bytes.IndexByte(r.b, 0)
	if i < 0 {
		v := r.b
		r.bad, r.b = true, nil
		return v
	}
	v := r.b[:i]
	r.b = r.b[i+1:]
	return v
}

// next returns n bytes, or what is left if fewer (marking the reader bad).
func (r *msgReader) next(n int) []byte {
	if n < 0 || n > len(r.b) {
		v := r.b
		r.bad, r.b = true, nil
		return v
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// startupParam is one key/value of a StartupMessage, in the client's order.
type startupParam struct{ key, value string }

// parseStartupParams decodes the parameters after the protocol version.
func parseStartupParams(b []byte) ([]startupParam, error) {
	var params []startupParam
	r := msgReader{b: b}
	for {
		key := r.cstring()
		if r.bad {
			return nil, protocolErrorf("invalid startup packet layout: expected terminator as last byte")
		}
		if len(key) == 0 {
			if len(r.b) != 0 {
				return nil, protocolErrorf("invalid startup packet layout: data after the terminator")
			}
			return params, nil
		}
		value := r.cstring()
		if r.bad {
			return nil, protocolErrorf("invalid startup packet layout: parameter %q has no value", key)
		}
		params = append(params, startupParam{string(key), string(value)})
	}
}

// appendStartupMessage encodes a StartupMessage asking for version.
func appendStartupMessage(dst []byte, version uint32, params []startupParam) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, version)
	for _, p := range params {
		dst = append(dst, p.key...)
		dst = append(dst, 0)
		dst = append(dst, p.value...)
		dst = append(dst, 0)
	}
	dst = append(dst, 0)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// appendNegotiateProtocolVersion tells a client asking for a newer minor
// version or for _pq_ options that the gateway speaks version without them.
func appendNegotiateProtocolVersion(dst []byte, version uint32, unsupported []string) []byte {
	var body []byte
	body = binary.BigEndian.AppendUint32(body, version)
	body = binary.BigEndian.AppendUint32(body, uint32(len(unsupported)))
	for _, o := range unsupported {
		body = append(body, o...)
		body = append(body, 0)
	}
	return appendMessage(dst, 'v', body)
}

// parseRowsFromTag extracts the row count of a command tag such as
// "INSERT 0 5", "UPDATE 3" or "SELECT 7"; ok is false for tags without one.
func parseRowsFromTag(tag []byte) (n int64, ok bool) {
	i := bytes.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(tag[i+1:]), 10, 64)
	return n, err == nil
}

// rowsAffected reports whether a command tag's count means rows changed
// (rather than rows returned).
func rowsAffected(tag []byte) bool {
	for _, p := range [...]string{"INSERT ", "UPDATE ", "DELETE ", "MERGE ", "COPY "} {
		if bytes.HasPrefix(tag, []byte(p)) {
			return true
		}
	}
	return false
}
