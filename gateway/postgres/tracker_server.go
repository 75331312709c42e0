package postgres

import (
	"fmt"
	"strconv"

	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// backendTypes are the message types a server may send after startup.
var backendTypes = func() (t [256]bool) {
	for _, c := range []byte("123ACDEGHINSTVWZcdnst") {
		t[c] = true
	}
	return t
}()

const (
	skippedInPipeline = "skipped: an earlier statement of the pipeline failed"
	skippedInQuery    = "skipped: an earlier statement of the query failed"
	unpairedResponse  = "response not recorded: the server's messages did not match the requests"
)

// serverSide observes server→client messages for the tracker. It never
// fails on content it does not understand: it loses sync, logs it, and
// pairs again from the next ReadyForQuery.
type serverSide struct{ *tracker }

func (s serverSide) wants(typ byte, size int) int {
	switch typ {
	case 'T', 't', 'C', 'E', 'N', 'V':
		return maxTrackedMessage
	case 'S':
		return 256 // client_encoding and its value
	case 'Z':
		return 1
	case 'D':
		if s.cur.active {
			return s.cur.preview.wantBytes()
		}
		return s.lim.previewBytes + 1024
	case 'd':
		if s.cur.copyOut {
			return s.cur.preview.wantBytes()
		}
	}
	return 0
}

func (s serverSide) message(typ byte, body []byte, size int) error {
	t := s.tracker
	if !backendTypes[typ] {
		return protocolErrorf("server sent invalid message type %q after startup", typ)
	}
	if t.desynced && typ != 'Z' {
		return nil
	}
	switch typ {
	case 'D':
		t.onDataRow(body, size)
	case 'S':
		t.onParameterStatus(body)
	case 'C':
		t.onComplete(trimNul(body), false)
	case 'I':
		t.onComplete(nil, false)
	case 's':
		t.onComplete(nil, true)
	case 'Z':
		t.onReadyForQuery(body)
	case 'T':
		t.onRowDescription(body)
	case 'n':
		t.onNoData()
	case 't':
		t.onParameterDescription(body)
	case '1', '2', '3':
		t.onConfirmed(typ)
	case 'E':
		t.onError(body)
	case 'N':
		t.onNotice(body)
	case 'G', 'H':
		t.onCopyResponse(typ == 'G')
	case 'W':
		t.desync("COPY BOTH (replication) is not recorded")
	case 'd':
		if t.cur.copyOut {
			t.cur.copyData += int64(size)
			t.cur.preview.addCopyData(&t.server, body, size)
		}
	case 'V':
		t.onFunctionCallResponse(body, size)
	}
	return t.recErr
}

// answering returns the head request if it is one whose response carries
// rows and a command tag (a simple Query or an Execute), starting its
// result on its first response message.
func (t *tracker) answering() *pending {
	p := t.front()
	if p == nil || (p.kind != pendQuery && p.kind != pendExecute) {
		return nil
	}
	if !t.cur.active {
		var cols []column
		if p.kind == pendExecute {
			t.resolvePortal(p)
			cols = resultColumns(p.portal)
		}
		t.startResult(p.sent, cols)
	}
	return p
}

// resolvePortal switches an Execute from the portal the client meant to the
// one the server runs.
func (t *tracker) resolvePortal(p *pending) {
	if pt := t.sPortals[p.name]; pt != nil {
		p.portal = pt
	}
}

// onConfirmed applies a ParseComplete, BindComplete or CloseComplete to the
// server view.
func (t *tracker) onConfirmed(typ byte) {
	want := pendClose
	switch typ {
	case '1':
		want = pendParse
	case '2':
		want = pendBind
	}
	p := t.front()
	if p == nil || p.kind != want {
		t.desync(fmt.Sprintf("unexpected message %q", typ))
		return
	}
	switch p.kind {
	case pendParse:
		putBounded(t.sStmts, p.name, p.stmt)
	case pendBind:
		// The server binds the statement it knows by that name now.
		st := t.sStmts[p.stmtName]
		if st == nil {
			st = unknownStmt(p.stmtName)
		}
		if st != p.portal.stmt {
			p.portal.stmt = st
			p.portal.columns, p.portal.described = nil, false
		}
		putBounded(t.sPortals, p.name, p.portal)
	case pendClose:
		if p.onStmt {
			delete(t.sStmts, p.name)
		} else {
			delete(t.sPortals, p.name)
		}
	}
	t.pop()
}

func (t *tracker) onDataRow(body []byte, size int) {
	if t.answering() == nil {
		t.desync("DataRow without a pending statement")
		return
	}
	t.cur.rows++
	if t.cur.preview.full() {
		t.cur.preview.trunc = true
		return
	}
	t.cur.preview.addDataRow(&t.server, body, size, t.cur.columns, t.lim.previewBytes)
}

// onComplete handles CommandComplete, EmptyQueryResponse (tag nil) and
// PortalSuspended.
func (t *tracker) onComplete(tag []byte, suspended bool) {
	p := t.answering()
	if p == nil || (suspended && p.kind != pendExecute) {
		t.desync("command completion without a pending statement")
		return
	}
	var q recorder.Query
	if p.kind == pendQuery {
		q = recorder.Query{Text: queryStatement(p), Protocol: protocolSimple}
		p.answered++
	} else {
		q = t.executeEvent(p)
	}
	q.CommandTag = t.server.text(tag)
	if suspended {
		q.CommandTag = "PORTAL SUSPENDED"
	}
	if n, ok := parseRowsFromTag(tag); ok {
		switch {
		case t.cur.copyOut:
			t.cur.rows = n
		case rowsAffected(tag):
			q.RowsAffected = n
		case t.cur.rows == 0 && n > 0:
			// "SELECT n" of CREATE TABLE AS / SELECT INTO: rows written.
			q.RowsAffected = n
		}
	}
	t.finish(q)
	if p.kind == pendExecute {
		t.pop()
	}
}

func (t *tracker) onRowDescription(body []byte) {
	cols, ok := t.rowDescription(body)
	p := t.front()
	switch {
	case !ok:
		t.desync("malformed RowDescription")
	case p == nil:
		t.desync("RowDescription without a pending request")
	case p.kind == pendDescribe:
		if p.onStmt {
			if st := t.sStmts[p.name]; st != nil {
				st.columns = cols
			}
		} else if pt := t.sPortals[p.name]; pt != nil {
			pt.columns, pt.described = cols, true
		}
		t.pop()
	case p.kind == pendQuery:
		if t.cur.active {
			t.cur.columns = cols
		} else {
			t.startResult(p.sent, cols)
		}
	default:
		t.desync("unexpected RowDescription")
	}
}

func (t *tracker) onNoData() {
	p := t.front()
	if p == nil || p.kind != pendDescribe {
		t.desync("unexpected NoData")
		return
	}
	if pt := t.sPortals[p.name]; !p.onStmt && pt != nil {
		pt.columns, pt.described = nil, true
	}
	t.pop()
}

func (t *tracker) onParameterDescription(body []byte) {
	p := t.front()
	if p == nil || p.kind != pendDescribe || !p.onStmt {
		t.desync("unexpected ParameterDescription")
		return
	}
	r := msgReader{b: body}
	n := int(r.int16())
	oids := make([]uint32, 0, max(n, 0))
	for i := 0; i < n && !r.bad; i++ {
		oids = append(oids, uint32(r.int32()))
	}
	if st := t.sStmts[p.name]; st != nil && !r.bad {
		st.paramOIDs = oids
	}
}

func (t *tracker) onCopyResponse(in bool) {
	if t.answering() == nil {
		t.desync("COPY response without a pending statement")
		return
	}
	t.cur.copyIn, t.cur.copyOut = in, !in
}

func (t *tracker) onFunctionCallResponse(body []byte, size int) {
	p := t.front()
	if p == nil || p.kind != pendFunctionCall {
		t.desync("unexpected FunctionCallResponse")
		return
	}
	t.startResult(p.sent, nil)
	q := recorder.Query{Text: p.funcText, Protocol: protocolFastpath}
	r := msgReader{b: body}
	if n := int(r.int32()); !r.bad {
		q.Preview, q.PreviewTrunc = renderValue(&t.server, 0, 1, r.b, n, t.lim.previewBytes, stylePlain)
		if n >= 0 && len(body) < size {
			q.PreviewTrunc = true
		}
	}
	t.finish(q)
	t.pop()
}

// onError pairs an ErrorResponse with the request that failed and marks
// what the server will skip because of it.
func (t *tracker) onError(body []byte) {
	e := parseErrorFields(&t.server, body)
	if e.severity == "FATAL" || e.severity == "PANIC" {
		t.serverFatal = e.severity + " " + e.code + ": " + e.message
	}
	p := t.front()
	if p == nil {
		// FATAL errors such as an administrator's termination arrive with
		// nothing pending; the session end records them.
		return
	}
	switch p.kind {
	case pendQuery:
		t.failHead(p, e)
		for p.answered < len(p.statements) {
			t.addEvent(recorder.Query{Start: t.now, Text: p.statements[p.answered], Protocol: protocolSimple,
				NotExecuted: true, ErrorMessage: skippedInQuery})
			p.answered++
		}
	case pendSync:
		// The implicit COMMIT of an extended-protocol transaction failed.
		q := recorder.Query{Text: "COMMIT (implicit, at Sync)", Protocol: protocolExtended, Start: t.now}
		e.setError(&q)
		t.addEvent(q)
	case pendFunctionCall:
		t.startResult(p.sent, nil)
		q := recorder.Query{Text: p.funcText, Protocol: protocolFastpath}
		e.setError(&q)
		t.finish(q)
		t.pop()
	default:
		t.failPipeline(e)
	}
}

// failPipeline handles an error to an extended-protocol message: the error
// belongs to the first Execute at or after the failed message (the
// statement the client was trying to run), or to the failed message itself
// when the pipeline has no Execute (a Parse that does not prepare); every
// other request up to the next Sync is skipped by the server.
func (t *tracker) failPipeline(e pgError) {
	failed := t.front()
	target := -1
	syncAt := -1
	for i := t.head; i < len(t.fifo); i++ {
		k := t.fifo[i].kind
		if k == pendSync {
			syncAt = i
			break
		}
		if target < 0 && k == pendExecute {
			target = i
		}
	}
	if target < 0 {
		q := t.messageEvent(failed)
		e.setError(&q)
		if !t.cur.active {
			t.startResult(failed.sent, nil)
		}
		t.finish(q)
	}
	for i := t.head; ; i = t.head {
		p := t.front()
		if p == nil || p.kind == pendSync {
			break
		}
		switch {
		case i == target:
			if p == failed {
				// The Execute itself failed: it ran the server's portal.
				t.resolvePortal(p)
			}
			t.failHead(p, e)
		case p == failed:
			t.rejected(p)
		default:
			t.notExecuted(p, skippedInPipeline)
		}
		t.pop()
	}
	if syncAt < 0 {
		t.discarding = true
	}
}

// rejected applies a failed Parse or Bind to the server view: the unnamed
// statement or portal is dropped before the server even checks the new one.
func (t *tracker) rejected(p *pending) {
	switch p.kind {
	case pendParse:
		if p.name == "" {
			delete(t.sStmts, "")
		}
	case pendBind:
		if p.name == "" {
			delete(t.sPortals, "")
		}
	default:
		return
	}
	t.diverged = true
}

// messageEvent describes a failed Parse, Bind, Describe or Close that no
// Execute followed.
func (t *tracker) messageEvent(p *pending) recorder.Query {
	q := recorder.Query{Protocol: protocolExtended}
	switch {
	case p.kind == pendParse && p.stmt != nil:
		q.Text = p.stmt.text
	case p.kind == pendBind && p.portal != nil:
		q.Text = p.portal.stmt.text
		q.Params, q.ParamsTruncated = t.renderParams(p.portal)
	case p.kind == pendDescribe:
		q.Text = "<describe " + strconv.Quote(p.name) + ">"
	case p.kind == pendClose:
		q.Text = "<close " + strconv.Quote(p.name) + ">"
	}
	return q
}

func (t *tracker) onNotice(body []byte) {
	e := parseErrorFields(&t.server, body)
	note := e.message
	if e.severity != "" {
		note = e.severity + ": " + note
	}
	note = truncateUTF8(note, t.lim.previewBytes)
	p := t.front()
	if p != nil && (p.kind == pendQuery || p.kind == pendExecute) {
		t.answering()
		if len(t.cur.notices) < maxNotices {
			t.cur.notices = append(t.cur.notices, note)
		}
		return
	}
	if len(t.orphanNote) < maxNotices {
		t.orphanNote = append(t.orphanNote, note)
	}
}

func (t *tracker) onReadyForQuery(body []byte) {
	var status byte
	if len(body) == 1 {
		status = body[0]
	}
	if t.desynced {
		t.resync()
	} else if p := t.front(); p == nil {
		t.log.Debug("postgres: ReadyForQuery without a pending Sync or Query")
	} else {
		switch p.kind {
		case pendQuery:
			if p.answered < len(p.statements) {
				t.notExecuted(p, "no response from the server for this statement")
			}
			t.pop()
		case pendSync:
			t.pop()
		default:
			t.desync("ReadyForQuery before the pending requests were answered")
			t.resync()
		}
	}
	t.cur.active = false
	if t.head == len(t.fifo) {
		// A SET the server refused leaves its encoding as it was.
		t.client.cs = t.server.cs
	}
	t.resetCopyIn() // data no COPY claimed (the server ignores it too)
	t.realign()
	t.flush(status)
}

func (t *tracker) desync(reason string) {
	if !t.desynced {
		t.log.Warn("postgres: lost track of responses; statements until the next ReadyForQuery are recorded without them",
			"reason", reason)
	}
	t.desynced = true
}

// resync drops pending requests up to the one a ReadyForQuery answers,
// recording sent statements without responses.
func (t *tracker) resync() {
	for p := t.front(); p != nil; p = t.front() {
		k := p.kind
		switch k {
		case pendExecute:
			q := t.executeEvent(p)
			q.Start, q.ErrorMessage = t.now, unpairedResponse
			t.addEvent(q)
		case pendQuery:
			for _, s := range p.unanswered() {
				t.addEvent(recorder.Query{Start: t.now, Text: s, Protocol: protocolSimple, ErrorMessage: unpairedResponse})
			}
		}
		t.pop()
		if k == pendSync || k == pendQuery {
			break
		}
	}
	t.desynced = false
	t.discarding = false
}
