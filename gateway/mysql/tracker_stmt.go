package mysql

import (
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"github.com/pamtrail/pamtrail/gateway/mysql/wire"
)

// prepareOK reads COM_STMT_PREPARE's OK: the statement id and how many
// parameter and column definitions (each list ended by an EOF without
// CLIENT_DEPRECATE_EOF) follow.
func (t *tracker) prepareOK(c *command, p []byte) {
	r := wire.NewReader(p[1:])
	id := r.Uint32()
	ncols := int(r.Uint16())
	nparams := int(r.Uint16())
	if r.Err() != nil {
		t.cur = nil
		return
	}
	c.prepID = id
	c.prepStmt = &prepared{text: c.stmts[0], nparams: nparams}
	defs := ncols + nparams
	if t.caps&wire.ClientDeprecateEOF == 0 {
		if ncols > 0 {
			defs++
		}
		if nparams > 0 {
			defs++
		}
	}
	if defs == 0 {
		t.stmts[id] = c.prepStmt
		t.cur = nil
		return
	}
	c.prepDefs, c.ph = defs, phasePrepareOK
}

// parseExecute decodes COM_STMT_EXECUTE: the statement, and its parameters
// with the types the client bound (kept on the statement, as the client
// sends them only when they change).
func (t *tracker) parseExecute(c *command, r *wire.Reader) bool {
	id := r.Uint32()
	r.Byte()   // cursor flags
	r.Uint32() // iteration count, always 1
	s := t.stmts[id]
	if s == nil {
		return false
	}
	c.stmtID, c.stmt, c.stmts = id, s, []string{s.text}
	c.call = leadingKeyword(s.text) == "CALL"
	if s.nparams == 0 || r.Err() != nil {
		return true
	}
	nulls := r.Bytes((s.nparams + 7) / 8)
	if r.Byte() == 1 {
		s.types = make([]byte, s.nparams)
		s.unsigned = make([]bool, s.nparams)
		for i := range s.nparams {
			s.types[i] = r.Byte()
			s.unsigned[i] = r.Byte()&0x80 != 0
		}
	}
	if r.Err() != nil || len(s.types) != s.nparams {
		return true
	}
	c.params = make([]string, s.nparams)
	for i := range s.nparams {
		var v wire.Value
		switch {
		case nulls[i/8]&(1<<(i%8)) != 0:
			v.Null = true
		case s.longData[i] != nil || s.longSize[i] > 0:
			v = wire.Value{Text: string(s.longData[i])}
		default:
			v = wire.ReadBinaryValue(r, s.types[i], s.unsigned[i])
		}
		text, cut := t.param(v)
		if _, ok := s.longSize[i]; ok && s.longSize[i] > len(s.longData[i]) {
			cut = true
		}
		c.params[i] = text
		c.ptrunc = c.ptrunc || cut
	}
	// The server forgets long data once the statement has run.
	s.longData, s.longSize = nil, nil
	return true
}

// longData keeps a bounded prefix of COM_STMT_SEND_LONG_DATA chunks for the
// parameter they belong to.
func (t *tracker) longData(r *wire.Reader) {
	s := t.stmts[r.Uint32()]
	idx := int(r.Uint16())
	if s == nil || r.Err() != nil || idx >= s.nparams {
		return
	}
	if s.longData == nil {
		s.longData, s.longSize = map[int][]byte{}, map[int]int{}
	}
	data := r.Rest()
	s.longSize[idx] += len(data)
	if room := t.lim.maxParamBytes + 4 - len(s.longData[idx]); room > 0 {
		s.longData[idx] = append(s.longData[idx], data[:min(room, len(data))]...)
	}
}

// param renders one parameter value within max_param_bytes.
func (t *tracker) param(v wire.Value) (string, bool) {
	if v.Null {
		return "NULL", false
	}
	return boundValue(v, t.lim.maxParamBytes)
}

// boundValue renders a value as text, cut to max bytes: bytes that are not
// text (invalid UTF-8, or holding NUL) as \x hex.
func boundValue(v wire.Value, max int) (string, bool) {
	s := v.Text
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		n := min(len(s), max/2)
		return `\x` + hex.EncodeToString([]byte(s[:n])), n < len(s)
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > max {
		return truncateUTF8(s, max), true
	}
	return s, false
}

// rememberCursor keeps the columns of a cursor the execute opened: its
// fetches return rows without column definitions.
func (t *tracker) rememberCursor(c *command) {
	if c.stmt != nil {
		c.stmt.cursor = append([]wire.Column(nil), c.cols...)
	}
}

func (t *tracker) cursorCols(id uint32) []wire.Column {
	if s := t.stmts[id]; s != nil {
		return s.cursor
	}
	return nil
}

// preview is the bounded text of the first rows of a result: values
// separated by " | ", rows by newlines.
type preview struct {
	buf      []byte
	rows     int
	maxRows  int
	maxBytes int
	trunc    bool
}

func (p *preview) reset(maxRows, maxBytes int) {
	p.buf, p.rows, p.trunc, p.maxRows, p.maxBytes = p.buf[:0], 0, false, maxRows, maxBytes
}

func (p *preview) full() bool { return p.trunc || p.rows >= p.maxRows || len(p.buf) >= p.maxBytes }

func (p *preview) addRow(vals []wire.Value, bad bool) {
	if p.rows > 0 {
		p.buf = append(p.buf, '\n')
	}
	p.rows++
	for i, v := range vals {
		if i > 0 {
			p.buf = append(p.buf, " | "...)
		}
		if v.Null {
			continue
		}
		s, cut := boundValue(v, p.maxBytes)
		p.buf = append(p.buf, s...)
		p.trunc = p.trunc || cut
	}
	if bad {
		p.trunc = true
	}
	if len(p.buf) > p.maxBytes {
		p.buf = []byte(truncateUTF8(string(p.buf), p.maxBytes))
		p.trunc = true
	}
}

func (p *preview) result() (string, bool) { return string(p.buf), p.trunc }
