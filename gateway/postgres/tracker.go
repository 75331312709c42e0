package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// The tracker pairs each statement the client sends with the server's
// response to it, exactly and in protocol order, and turns each pair into
// one recorder.Query.
//
// Every client message that the server answers is pushed onto a FIFO of
// pending requests before it is forwarded, so a response can never arrive
// before its request is known. Server messages are consumed against the head
// of the FIFO. When an extended-protocol message fails the server skips
// everything up to the next Sync; those requests are popped as not executed.
// Events wait for the ReadyForQuery that follows them, which gives them
// their transaction status.
//
// Prepared statements and portals are tracked twice. The client view
// changes as the client sends Parse, Bind and Close, and tells what the
// client meant (the text of a statement the server then skipped). The
// server view changes only when the server confirms them (ParseComplete,
// BindComplete, CloseComplete), and tells what really ran: in a pipeline a
// Bind may name a statement whose Parse is about to fail. When a rejected
// or skipped message made the views differ, the client view is reset to
// the server's once nothing is pending.
//
// The client and server sides run in different goroutines and share the
// tracker under mu; each relay holds it while scanning one read.

// Protocol names for recorder.Query.Protocol.
const (
	protocolSimple   = "simple"
	protocolExtended = "extended"
	protocolFastpath = "fastpath"
)

// Bounds on what one session keeps in memory for recording.
const (
	// maxTrackedMessage is the largest prefix of a Query, Parse or Bind
	// message that is captured when it spans reads; beyond it statement
	// text and parameters are recorded as truncated.
	maxTrackedMessage = 1 << 20
	// maxPendingEvents is how many completed statements may wait for a
	// ReadyForQuery before they are recorded without a transaction status.
	maxPendingEvents = 1024
	// maxPrepared bounds prepared statements and portals tracked.
	maxPrepared = 10000
	// maxNotices bounds the notices attached to one statement.
	maxNotices = 32
)

// errRecording ends a session whose recorder refused an event under the
// fail-closed policy.
var errRecording = errors.New("recording failed")

// limits are the recording bounds from the configuration.
type limits struct {
	previewRows   int
	previewBytes  int
	maxParamBytes int
}

func newLimits(r config.Recording) limits {
	return limits{previewRows: r.PreviewRows, previewBytes: int(r.PreviewBytes), maxParamBytes: int(r.MaxParamBytes)}
}

type pendingKind uint8

const (
	pendParse pendingKind = iota + 1
	pendBind
	pendDescribe
	pendExecute
	pendClose
	pendSync
	pendQuery
	pendFunctionCall
)

// preparedStmt is a statement created by Parse. Fields filled from server
// responses (paramOIDs from ParameterDescription, columns from
// RowDescription) are written by the server side under the tracker lock.
type preparedStmt struct {
	text      string
	paramOIDs []uint32
	columns   []column
}

// portal is a statement bound to parameters by Bind.
type portal struct {
	stmt          *preparedStmt
	params        []paramValue
	paramsTrunc   bool
	resultFormats []int16
	columns       []column // from Describe portal, else derived on first use
	described     bool
}

// paramValue is a captured bind parameter; rendering waits until the
// statement's parameter types are known (ParameterDescription may arrive
// after the Bind was sent in a pipeline).
type paramValue struct {
	format int16
	size   int // -1 is NULL
	data   []byte
}

type column struct {
	name   string
	oid    uint32
	format int16
}

// pending is a client request awaiting its response.
type pending struct {
	kind pendingKind
	sent time.Time
	// name is the statement or portal the message names.
	name string
	// onStmt says a Describe or Close names a statement, not a portal.
	onStmt bool
	// stmtName is the statement a Bind names.
	stmtName string
	// stmt is what a Parse creates; portal what a Bind creates, or what an
	// Execute runs (the client's view until the server answers).
	stmt   *preparedStmt
	portal *portal
	// Simple Query: its statements and how many have been answered.
	statements []string
	answered   int
	// Fastpath function call.
	funcText string
}

// result accumulates the response to the statement being answered.
type result struct {
	active   bool
	start    time.Time
	columns  []column
	rows     int64
	preview  preview
	notices  []string
	copyIn   bool
	copyOut  bool
	copyData int64
}

// tracker is the per-session statement/response pairing state.
type tracker struct {
	mu     sync.Mutex
	lim    limits
	record func(recorder.Query) error
	log    *slog.Logger
	policy *policy.Set // the account's SQL rules, to mark matched statements
	now    time.Time

	// Client and server views of prepared statements and portals.
	cStmts, sStmts     map[string]*preparedStmt
	cPortals, sPortals map[string]*portal
	diverged           bool
	fifo               []pending
	head               int
	// discarding is set when an extended-protocol error arrived before the
	// client sent the Sync that ends the server's skipping: requests sent
	// until that Sync are not executed.
	discarding bool
	cur        result
	done       []recorder.Query
	orphanNote []string
	lastDone   time.Time
	// desynced is set when a response does not fit the pending requests
	// (a client or server we do not understand); pairing resumes at the
	// next ReadyForQuery so the relay itself is never disturbed.
	desynced   bool
	recErr     error
	terminated bool // the client sent Terminate
	// serverFatal is the FATAL error the server ended the session with
	// (pg_terminate_backend, a server shutdown), if any.
	serverFatal string
	// COPY FROM STDIN data the client sent. Clients may send it before
	// the server's CopyInResponse (pgx does), so it is collected here and
	// claimed by the statement that completes the COPY.
	copyInBytes   int64
	copyInPreview preview
	// client and server decode the text each side sends from the
	// session's client_encoding (encoding.go). The client's view changes
	// as soon as it sends SET client_encoding, since its next message may
	// already be in the new encoding; the server's when it reports the
	// change (ParameterStatus), which is authoritative for both.
	client, server decoder
	// startCharset is what RESET client_encoding returns to.
	startCharset charset
	// The last RowDescription, parsed; statements repeat.
	lastRowDesc []byte
	lastCols    []column
	lastNames   []string
}

func newTracker(lim limits, record func(recorder.Query) error, log *slog.Logger) *tracker {
	t := &tracker{
		lim:      lim,
		record:   record,
		log:      log,
		cStmts:   map[string]*preparedStmt{},
		sStmts:   map[string]*preparedStmt{},
		cPortals: map[string]*portal{},
		sPortals: map[string]*portal{},
	}
	t.startWith(utf8Charset)
	t.resetCopyIn()
	return t
}

func (t *tracker) resetCopyIn() {
	t.copyInBytes = 0
	t.copyInPreview.reset(t.lim.previewRows, t.lim.previewBytes)
}

// busy reports whether a request is waiting for its response.
func (t *tracker) busy() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.head < len(t.fifo)
}

// endedByServer returns the FATAL error the server sent, if any.
func (t *tracker) endedByServer() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.serverFatal
}

// begin locks the tracker for scanning one read made at now.
func (t *tracker) begin(now time.Time) {
	t.mu.Lock()
	t.now = now
}

func (t *tracker) end() { t.mu.Unlock() }

func (t *tracker) push(p pending) { t.fifo = append(t.fifo, p) }

func (t *tracker) front() *pending {
	if t.head < len(t.fifo) {
		return &t.fifo[t.head]
	}
	return nil
}

func (t *tracker) pop() {
	t.fifo[t.head] = pending{} // drop references for the GC
	t.head++
	switch {
	case t.head == len(t.fifo):
		t.fifo, t.head = t.fifo[:0], 0
	case t.head > 1024 && t.head > len(t.fifo)/2:
		n := copy(t.fifo, t.fifo[t.head:])
		clear(t.fifo[n:])
		t.fifo, t.head = t.fifo[:n], 0
	}
}

// statementStart is when the statement now being answered began running:
// not before it was sent, and not before the previous one finished.
func (t *tracker) statementStart(sent time.Time) time.Time {
	if t.lastDone.After(sent) {
		return t.lastDone
	}
	return sent
}

// startResult begins collecting the response to the head request.
func (t *tracker) startResult(sent time.Time, columns []column) {
	notices := t.cur.notices[:0]
	if len(t.orphanNote) > 0 {
		notices = append(notices, t.orphanNote...)
		t.orphanNote = t.orphanNote[:0]
	}
	t.cur = result{active: true, start: t.statementStart(sent), columns: columns, notices: notices, preview: t.cur.preview}
	t.cur.preview.reset(t.lim.previewRows, t.lim.previewBytes)
}

// finish turns the current result into an event for text.
func (t *tracker) finish(q recorder.Query) {
	q.Start = t.cur.start
	if !t.cur.active {
		q.Start = t.now
	}
	q.Duration = t.now.Sub(q.Start)
	q.ReturnedRows = t.cur.rows
	if len(t.cur.columns) > 0 {
		q.Columns = t.columnNames(t.cur.columns)
	}
	switch {
	case t.cur.copyIn:
		q.CopyBytes = t.copyInBytes
		t.copyInPreview.header(t.copyInBytes)
		q.Preview, q.PreviewTrunc = t.copyInPreview.result()
		t.resetCopyIn()
	case t.cur.copyOut:
		q.CopyBytes = t.cur.copyData
		t.cur.preview.header(t.cur.copyData)
		q.Preview, q.PreviewTrunc = t.cur.preview.result()
	default:
		q.Preview, q.PreviewTrunc = t.cur.preview.result()
	}
	if len(t.cur.notices) > 0 {
		q.Notices = append([]string(nil), t.cur.notices...)
	}
	t.cur.active = false
	t.cur.notices = t.cur.notices[:0]
	t.lastDone = t.now
	t.addEvent(q)
}

// capturedPrefix ends a text of which only a prefix was captured (a
// message larger than the tracker keeps). A NUL cannot occur in SQL text,
// so the mark is unambiguous; addEvent turns it into Query.TextTruncated
// and the recorder, which cuts every text, shows the cut.
const capturedPrefix = "\x00"

// addEvent queues an event until the next ReadyForQuery.
func (t *tracker) addEvent(q recorder.Query) {
	q.Text, q.TextTruncated = strings.CutSuffix(q.Text, capturedPrefix)
	if t.policy != nil && !q.NotExecuted {
		// The filter (sqlfilter.go) matched the same text before the
		// statement went upstream, so the verdicts agree.
		q.Policy = t.policy.SQL(q.Text)
	}
	t.markEncoding(&q)
	t.done = append(t.done, q)
	if len(t.done) >= maxPendingEvents {
		t.flush(0)
	}
}

// flush records the queued events with the transaction status txStatus.
func (t *tracker) flush(txStatus byte) {
	for i := range t.done {
		if txStatus != 0 {
			t.done[i].TxStatus = txStatus
		}
		if t.recErr == nil {
			if err := t.record(t.done[i]); err != nil {
				t.recErr = fmt.Errorf("%w: %w", errRecording, err)
			}
		}
		t.done[i] = recorder.Query{}
	}
	t.done = t.done[:0]
}

// notExecuted records a request the server skipped.
func (t *tracker) notExecuted(p *pending, reason string) {
	switch p.kind {
	case pendExecute:
		q := t.executeEvent(p)
		q.NotExecuted = true
		q.ErrorMessage = reason
		q.Start = t.now
		t.addEvent(q)
	case pendQuery:
		for _, s := range p.unanswered() {
			t.addEvent(recorder.Query{Start: t.now, Text: s, Protocol: protocolSimple, NotExecuted: true, ErrorMessage: reason})
		}
		p.answered = len(p.statements)
	case pendFunctionCall:
		t.addEvent(recorder.Query{Start: t.now, Text: p.funcText, Protocol: protocolFastpath, NotExecuted: true, ErrorMessage: reason})
	case pendParse, pendBind, pendClose:
		t.diverged = true
	}
}

// realign resets the client view to the server's once no request is
// pending, after a rejected or skipped Parse, Bind or Close.
func (t *tracker) realign() {
	if !t.diverged || t.head < len(t.fifo) {
		return
	}
	t.cStmts = cloneMap(t.sStmts)
	t.cPortals = cloneMap(t.sPortals)
	t.diverged = false
}

func cloneMap[V any](m map[string]*V) map[string]*V {
	c := make(map[string]*V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// putBounded stores v unless the map is full; the unnamed entry and
// replacements always fit.
func putBounded[V any](m map[string]*V, name string, v *V) {
	if _, exists := m[name]; exists || name == "" || len(m) < maxPrepared {
		m[name] = v
	}
}

// executeEvent builds the event skeleton for an Execute.
func (t *tracker) executeEvent(p *pending) recorder.Query {
	q := recorder.Query{Protocol: protocolExtended}
	if p.portal == nil {
		q.Text = "<unknown portal " + strconv.Quote(p.name) + ">"
		return q
	}
	q.Text = p.portal.stmt.text
	q.Params, q.ParamsTruncated = t.renderParams(p.portal)
	return q
}

// renderParams renders a portal's parameters with the statement's types.
func (t *tracker) renderParams(pt *portal) ([]string, bool) {
	if len(pt.params) == 0 {
		return nil, pt.paramsTrunc
	}
	out := make([]string, len(pt.params))
	trunc := pt.paramsTrunc
	for i, v := range pt.params {
		var oid uint32
		if i < len(pt.stmt.paramOIDs) {
			oid = pt.stmt.paramOIDs[i]
		}
		s, cut := renderValue(&t.client, oid, v.format, v.data, v.size, t.lim.maxParamBytes, styleLiteral)
		out[i] = s
		trunc = trunc || cut
	}
	return out, trunc
}

// close records what is still pending when the session ends. Statements
// sent but never answered may or may not have run on the server, so they
// are recorded with that message rather than as not executed.
func (t *tracker) close(now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.now = now
	const unknown = "no response: the session ended before the server answered (outcome unknown)"
	for p := t.front(); p != nil; p = t.front() {
		switch p.kind {
		case pendExecute, pendQuery:
			for done := false; !done; {
				t.failHead(p, pgError{message: unknown})
				done = p.kind == pendExecute || p.answered >= len(p.statements)
			}
		case pendFunctionCall:
			t.addEvent(recorder.Query{Start: p.sent, Duration: now.Sub(p.sent), Text: p.funcText, Protocol: protocolFastpath, ErrorMessage: unknown})
		}
		t.pop()
	}
	t.flush(0)
	return t.recErr
}

// failHead ends the statement being answered with the error e.
func (t *tracker) failHead(p *pending, e pgError) {
	var q recorder.Query
	switch p.kind {
	case pendQuery:
		q = recorder.Query{Text: queryStatement(p), Protocol: protocolSimple}
		p.answered++
	case pendExecute:
		q = t.executeEvent(p)
	default:
		return
	}
	if !t.cur.active {
		t.startResult(p.sent, nil)
	}
	e.setError(&q)
	t.finish(q)
}

// unanswered returns the statements of a Query not answered yet.
func (p *pending) unanswered() []string {
	if p.answered >= len(p.statements) {
		return nil
	}
	return p.statements[p.answered:]
}

// queryStatement is the text of the simple-protocol statement now answered.
// When the server answers more statements than the split found (a syntax the
// splitter does not know), the whole query text stands for the rest.
func queryStatement(p *pending) string {
	if p.answered < len(p.statements) {
		return p.statements[p.answered]
	}
	return strings.Join(p.statements, "; ")
}
