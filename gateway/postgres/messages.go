package postgres

import (
	"bytes"

	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// Decoders of the server messages the tracker reads.

// pgError is the part of an ErrorResponse or NoticeResponse that is recorded.
type pgError struct {
	severity string // non-localized when the server sends it
	code     string
	message  string
	detail   string
}

// parseErrorFields reads an ErrorResponse or NoticeResponse body, decoding
// its text with d.
func parseErrorFields(d *decoder, body []byte) pgError {
	var e pgError
	var localized string
	r := msgReader{b: body}
	for !r.bad {
		k := r.byte1()
		if k == 0 || r.bad {
			break
		}
		v := r.cstring()
		switch k {
		case 'C':
			e.code = d.text(v)
		case 'M':
			e.message = d.text(v)
		case 'D':
			e.detail = d.text(v)
		case 'V':
			e.severity = d.text(v)
		case 'S':
			localized = d.text(v)
		}
	}
	if e.severity == "" {
		e.severity = localized
	}
	return e
}

// setError copies the error into an event.
func (e pgError) setError(q *recorder.Query) {
	q.ErrorCode, q.ErrorMessage, q.ErrorDetail = e.code, e.message, e.detail
}

// rowDescription decodes a RowDescription, reusing the previous result when
// the server repeats itself, as it does for every execution of the same
// statement. Columns are never modified once parsed, so sharing is safe.
func (t *tracker) rowDescription(body []byte) ([]column, bool) {
	if t.lastRowDesc != nil && bytes.Equal(body, t.lastRowDesc) {
		return t.lastCols, true
	}
	cols, ok := parseRowDescription(&t.server, body)
	if ok && len(body) <= 4096 {
		t.lastRowDesc = append(t.lastRowDesc[:0], body...)
		t.lastCols, t.lastNames = cols, nil
	}
	return cols, ok
}

// columnNames returns the names of cols, shared with the previous event
// when they are the cached columns.
func (t *tracker) columnNames(cols []column) []string {
	cached := len(cols) > 0 && len(t.lastCols) == len(cols) && &cols[0] == &t.lastCols[0]
	if cached && t.lastNames != nil {
		return t.lastNames
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	if cached {
		t.lastNames = names
	}
	return names
}

// parseRowDescription decodes the columns of a RowDescription, their
// names with d.
func parseRowDescription(d *decoder, body []byte) ([]column, bool) {
	r := msgReader{b: body}
	n := int(r.int16())
	if r.bad || n < 0 {
		return nil, false
	}
	cols := make([]column, 0, n)
	for i := 0; i < n; i++ {
		name := r.cstring()
		r.int32() // table OID
		r.int16() // attribute number
		oid := uint32(r.int32())
		r.int16() // type size
		r.int32() // type modifier
		format := r.int16()
		if r.bad {
			return nil, false
		}
		cols = append(cols, column{name: d.text(name), oid: oid, format: format})
	}
	return cols, true
}
