package postgres

import (
	"bytes"
	"strconv"
)

// frontendTypes are the message types a client may send after startup.
var frontendTypes = func() (t [256]bool) {
	for _, c := range []byte("BCdcfDEHFPQSX") {
		t[c] = true
	}
	return t
}()

// clientSide observes client→server messages for the tracker.
type clientSide struct{ *tracker }

func (c clientSide) wants(typ byte, size int) int {
	switch typ {
	case 'Q', 'P', 'B', 'F':
		return maxTrackedMessage
	case 'D', 'C', 'E':
		return 4096 // names are identifiers, at most NAMEDATALEN
	case 'd':
		return c.copyInPreview.wantBytes()
	}
	return 0
}

func (c clientSide) message(typ byte, body []byte, size int) error {
	t := c.tracker
	if !frontendTypes[typ] {
		return protocolErrorf("invalid frontend message type %q", typ)
	}
	// While discarding, the server skips everything up to Sync: requests
	// that would run are recorded as not executed at once, and the client
	// view still follows the client so they get the text it meant.
	const skipped = "skipped: an earlier statement of the pipeline failed"
	complete := len(body) == size
	switch typ {
	case 'Q':
		var stmts []string
		if complete {
			stmts = splitStatements(t.client.text(trimNul(body)))
		} else {
			// Only a prefix was captured: the last statement is cut.
			stmts = splitStatements(t.client.prefix(body))
			stmts[len(stmts)-1] += capturedPrefix
		}
		t.watchEncodingChange(stmts)
		t.request(pending{kind: pendQuery, sent: t.now, statements: stmts}, skipped)
	case 'P':
		t.request(t.onParse(body, complete), skipped)
	case 'B':
		t.request(t.onBind(body, complete), skipped)
	case 'D':
		r := msgReader{b: body}
		kind, name := r.byte1(), string(r.cstring())
		t.request(pending{kind: pendDescribe, sent: t.now, name: name, onStmt: kind == 'S'}, skipped)
	case 'E':
		r := msgReader{b: body}
		name := string(r.cstring())
		t.request(pending{kind: pendExecute, sent: t.now, name: name, portal: t.cPortals[name]}, skipped)
	case 'C':
		r := msgReader{b: body}
		kind, name := r.byte1(), string(r.cstring())
		if kind == 'S' {
			delete(t.cStmts, name)
		} else {
			delete(t.cPortals, name)
		}
		t.request(pending{kind: pendClose, sent: t.now, name: name, onStmt: kind == 'S'}, skipped)
	case 'S':
		t.discarding = false
		t.push(pending{kind: pendSync, sent: t.now})
	case 'F':
		t.request(pending{kind: pendFunctionCall, sent: t.now, funcText: functionCallText(body)}, skipped)
		if !t.discarding {
			// A function call is answered like a simple query: its
			// result, then ReadyForQuery.
			t.push(pending{kind: pendSync, sent: t.now})
		}
	case 'd':
		t.copyInBytes += int64(size)
		t.copyInPreview.addCopyData(&t.client, body, size)
	case 'X':
		t.terminated = true
	}
	return t.recErr
}

// request queues a request for its response, or records it as skipped
// while the server discards messages until Sync.
func (t *tracker) request(p pending, skipped string) {
	if t.discarding {
		t.notExecuted(&p, skipped)
		return
	}
	t.push(p)
}

// onParse decodes a Parse into the statement it creates; the client view
// sees it at once, since a pipelined Bind may use it right away.
func (t *tracker) onParse(body []byte, complete bool) pending {
	r := msgReader{b: body}
	name := string(r.cstring())
	text := r.cstring()
	cut := !complete && r.bad
	st := &preparedStmt{}
	if cut {
		st.text = t.client.prefix(text)
	} else {
		st.text = t.client.text(text)
		t.watchEncodingChange([]string{st.text})
	}
	if n := int(r.int16()); !r.bad && n > 0 {
		st.paramOIDs = make([]uint32, 0, n)
		for i := 0; i < n && !r.bad; i++ {
			st.paramOIDs = append(st.paramOIDs, uint32(r.int32()))
		}
	}
	if cut {
		st.text += capturedPrefix
	}
	putBounded(t.cStmts, name, st)
	return pending{kind: pendParse, sent: t.now, name: name, stmt: st}
}

// onBind decodes a Bind into the portal it creates, capturing parameters.
func (t *tracker) onBind(body []byte, complete bool) pending {
	r := msgReader{b: body}
	portalName := string(r.cstring())
	stmtName := string(r.cstring())
	pt := &portal{stmt: t.cStmts[stmtName]}
	if pt.stmt == nil {
		pt.stmt = unknownStmt(stmtName)
	}
	formats := make([]int16, max(0, int(r.int16())))
	for i := range formats {
		formats[i] = r.int16()
	}
	nParams := int(r.int16())
	if !r.bad && nParams > 0 {
		pt.params = make([]paramValue, 0, nParams)
		// One backing array for all captured values.
		var store []byte
		for i := 0; i < nParams && !r.bad; i++ {
			v := paramValue{size: int(r.int32())}
			if len(formats) == 1 {
				v.format = formats[0]
			} else if i < len(formats) {
				v.format = formats[i]
			}
			if v.size >= 0 {
				data := r.next(v.size)
				keep := min(len(data), t.lim.maxParamBytes)
				if keep < v.size {
					pt.paramsTrunc = true
				}
				start := len(store)
				store = append(store, data[:keep]...)
				v.data = store[start:len(store):len(store)]
			}
			pt.params = append(pt.params, v)
		}
		if len(pt.params) < nParams {
			pt.paramsTrunc = true
		}
	}
	if n := int(r.int16()); !r.bad && n > 0 {
		pt.resultFormats = make([]int16, 0, n)
		for i := 0; i < n && !r.bad; i++ {
			pt.resultFormats = append(pt.resultFormats, r.int16())
		}
	}
	if !complete {
		pt.paramsTrunc = true
	}
	putBounded(t.cPortals, portalName, pt)
	return pending{kind: pendBind, sent: t.now, name: portalName, stmtName: stmtName, portal: pt}
}

func unknownStmt(name string) *preparedStmt {
	return &preparedStmt{text: "<unknown prepared statement " + strconv.Quote(name) + ">"}
}

// functionCallText describes a fastpath FunctionCall for the record.
func functionCallText(body []byte) string {
	r := msgReader{b: body}
	oid := uint32(r.int32())
	return "<fastpath function call oid " + strconv.FormatUint(uint64(oid), 10) + ">"
}

func trimNul(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// resultColumns returns the columns an Execute of pt returns, with the
// formats its Bind asked for.
func resultColumns(pt *portal) []column {
	if pt == nil {
		return nil
	}
	if pt.described || pt.columns != nil {
		return pt.columns
	}
	src := pt.stmt.columns
	if len(src) == 0 {
		return nil
	}
	cols := make([]column, len(src))
	for i, c := range src {
		c.format = 0
		switch {
		case len(pt.resultFormats) == 1:
			c.format = pt.resultFormats[0]
		case i < len(pt.resultFormats):
			c.format = pt.resultFormats[i]
		}
		cols[i] = c
	}
	pt.columns = cols
	return cols
}

var _ messageObserver = clientSide{}
