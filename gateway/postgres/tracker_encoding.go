package postgres

import (
	"encoding/binary"
	"strings"
	"unicode/utf8"

	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// sessionCharset is the encoding a session starts in: what the server
// reported during startup (its ParameterStatus), else what the client asked
// for in its startup packet, else UTF8.
func sessionCharset(initial []byte, clientEncoding string) charset {
	for len(initial) >= 5 {
		typ, n := initial[0], int(binary.BigEndian.Uint32(initial[1:5]))
		if n < 4 || 1+n > len(initial) {
			break
		}
		if typ == 'S' {
			if name, value, ok := parameterStatus(initial[5 : 1+n]); ok && name == "client_encoding" {
				if cs, ok := lookupCharset(value); ok {
					return cs
				}
			}
		}
		initial = initial[1+n:]
	}
	if cs, ok := lookupCharset(clientEncoding); ok {
		return cs
	}
	return utf8Charset
}

// parameterStatus splits a ParameterStatus body into name and value.
func parameterStatus(body []byte) (name, value string, ok bool) {
	r := msgReader{b: body}
	n, v := r.cstring(), r.cstring()
	return string(n), string(v), !r.bad
}

// startWith sets the encoding the session starts in.
func (t *tracker) startWith(cs charset) {
	t.startCharset = cs
	t.setCharset(cs)
}

func (t *tracker) setCharset(cs charset) {
	t.client.cs, t.server.cs = cs, cs
	t.lastRowDesc, t.lastCols, t.lastNames = nil, nil, nil // names decode differently now
}

// onParameterStatus follows the server's reports of client_encoding, the
// authoritative signal: it covers SET, RESET, set_config(), SET LOCAL
// ending with its transaction, and role or database defaults.
func (t *tracker) onParameterStatus(body []byte) {
	name, value, ok := parameterStatus(body)
	if !ok || name != "client_encoding" {
		return
	}
	cs, known := lookupCharset(value)
	if !known {
		t.log.Warn("postgres: server reported an unknown client_encoding; text is recorded as UTF-8", "client_encoding", value)
		cs = utf8Charset
	}
	t.setCharset(cs)
}

// watchEncodingChange switches the client's encoding as soon as it sends a
// statement that changes client_encoding: the messages it sends next are
// already in the new encoding, before the server has answered.
func (t *tracker) watchEncodingChange(stmts []string) {
	for _, stmt := range stmts {
		name, reset, ok := encodingSetting(stmt)
		switch {
		case !ok:
		case reset:
			t.client.cs = t.startCharset
		default:
			if cs, known := lookupCharset(name); known {
				t.client.cs = cs
			}
		}
	}
}

// encodingSetting recognizes SET [SESSION|LOCAL] client_encoding {TO|=}
// value, SET NAMES value, and RESET client_encoding or ALL; reset is set
// for a return to the session's start value (RESET, DEFAULT).
func encodingSetting(stmt string) (name string, reset, ok bool) {
	stmt = strings.TrimSpace(stmt)
	if len(stmt) < 5 || !(strings.EqualFold(stmt[:3], "set") || strings.EqualFold(stmt[:5], "reset")) {
		return "", false, false
	}
	f := strings.Fields(strings.NewReplacer("=", " = ", ";", " ").Replace(stmt))
	if len(f) < 2 {
		return "", false, false
	}
	if strings.EqualFold(f[0], "reset") {
		return "", true, len(f) == 2 && (strings.EqualFold(f[1], "client_encoding") || strings.EqualFold(f[1], "all"))
	}
	if !strings.EqualFold(f[0], "set") {
		return "", false, false
	}
	f = f[1:]
	if len(f) > 1 && (strings.EqualFold(f[0], "session") || strings.EqualFold(f[0], "local")) {
		f = f[1:]
	}
	switch {
	case len(f) == 2 && strings.EqualFold(f[0], "names"):
		f = f[1:]
	case len(f) == 3 && strings.EqualFold(f[0], "client_encoding") && (f[1] == "=" || strings.EqualFold(f[1], "to")):
		f = f[2:]
	default:
		return "", false, false
	}
	v := strings.Trim(f[0], `'"`)
	if strings.EqualFold(v, "default") {
		return "", true, true
	}
	return v, false, true
}

// markEncoding tells an event which encoding its text came from and
// whether any of it was undecodable. Only sessions that have had a lossy
// conversion are searched for replacement characters.
func (t *tracker) markEncoding(q *recorder.Query) {
	if t.server.cs.name != utf8Charset.name {
		q.ClientEncoding = t.server.cs.name
	}
	if t.client.lossy || t.server.lossy {
		q.TextLossy = hasReplacement(q)
	}
}

func hasReplacement(q *recorder.Query) bool {
	const r = string(utf8.RuneError)
	has := func(s string) bool { return strings.Contains(s, r) }
	if has(q.Text) || has(q.Preview) || has(q.ErrorMessage) || has(q.ErrorDetail) || has(q.CommandTag) {
		return true
	}
	for _, list := range [][]string{q.Params, q.Columns, q.Notices} {
		for _, s := range list {
			if has(s) {
				return true
			}
		}
	}
	return false
}
