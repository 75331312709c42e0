package postgres

import (
	"bytes"
	"strconv"
)

// preview is the bounded text rendering of the first rows of a result:
// values separated by " | ", rows by newlines, as psql's unaligned output
// reads. It keeps its buffer across statements to avoid allocations.
type preview struct {
	buf      []byte
	head     string
	rows     int
	maxRows  int
	maxBytes int
	trunc    bool
}

func (p *preview) reset(maxRows, maxBytes int) {
	p.buf, p.head, p.rows, p.trunc = p.buf[:0], "", 0, false
	p.maxRows, p.maxBytes = maxRows, maxBytes
}

// full reports whether further rows would only set the truncated flag.
func (p *preview) full() bool { return p.trunc || p.rows >= p.maxRows }

// wantBytes is how much of a DataRow body to capture for the preview.
func (p *preview) wantBytes() int {
	if p.full() {
		return 0
	}
	return p.maxBytes - len(p.buf) + 1024
}

// addDataRow renders one DataRow body (possibly a prefix of it).
func (p *preview) addDataRow(d *decoder, body []byte, size int, cols []column, maxValue int) {
	if p.full() {
		p.trunc = true
		return
	}
	r := msgReader{b: body}
	n := int(r.int16())
	if p.rows > 0 {
		p.buf = append(p.buf, '\n')
	}
	p.rows++
	for i := 0; i < n && !r.bad; i++ {
		if i > 0 {
			p.buf = append(p.buf, " | "...)
		}
		l := int(r.int32())
		if r.bad {
			break
		}
		var data []byte
		if l >= 0 {
			data = r.next(l)
		}
		var c column
		if i < len(cols) {
			c = cols[i]
		}
		s, cut := renderValue(d, c.oid, c.format, data, l, min(maxValue, p.maxBytes), stylePlain)
		p.buf = append(p.buf, s...)
		if cut || len(p.buf) > p.maxBytes {
			p.trunc = true
		}
		if len(p.buf) > p.maxBytes {
			break
		}
	}
	if r.bad && len(body) < size {
		p.trunc = true
	}
	p.cut()
}

// addCopyData adds a chunk of COPY data in text or CSV format. Text COPY
// data never holds a NUL byte; binary COPY data always does (in its
// signature and in every field count).
func (p *preview) addCopyData(d *decoder, data []byte, size int) {
	if p.full() {
		p.trunc = true
		return
	}
	p.rows++
	if bytes.IndexByte(data, 0) >= 0 {
		p.buf = append(p.buf, "<binary COPY data>"...)
		p.trunc = true
		return
	}
	if len(data) < size {
		p.buf = append(p.buf, d.prefix(data)...)
		p.trunc = true
	} else {
		p.buf = append(p.buf, d.text(data)...)
	}
	p.cut()
}

func (p *preview) cut() {
	if len(p.buf) > p.maxBytes {
		p.buf = []byte(truncateUTF8(string(p.buf), p.maxBytes))
		p.trunc = true
	}
}

// header prefixes the preview with the bytes a COPY moved, which the
// command tag does not tell.
func (p *preview) header(copyBytes int64) {
	p.head = "-- COPY moved " + strconv.FormatInt(copyBytes, 10) + " bytes\n"
}

// result returns the preview text and whether it is incomplete.
func (p *preview) result() (string, bool) {
	if len(p.buf) == 0 && p.head == "" {
		return "", p.trunc
	}
	return p.head + string(p.buf), p.trunc
}
