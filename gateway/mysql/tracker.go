package mysql

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/mysql/wire"
	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// limits bound what one event keeps; they come from the validated
// recording config.
type limits struct {
	previewRows   int
	previewBytes  int
	maxParamBytes int
	maxTextBytes  int
}

func newLimits(r config.Recording) limits {
	return limits{previewRows: r.PreviewRows, previewBytes: int(r.PreviewBytes),
		maxParamBytes: int(r.MaxParamBytes), maxTextBytes: int(r.MaxTextBytes)}
}

// tracker pairs each client command with the server's response, in
// protocol order (MySQL is half-duplex: one command, then its whole
// response), and turns them into recorder.Query events. It sees complete
// payloads of both directions; it never changes what is relayed.
type tracker struct {
	lim   limits
	caps  uint32 // capabilities in force on the session
	emit  func(recorder.Query) error
	stmts map[uint32]*prepared
	cur   *command
	err   error
	// policy flags statements an audit-mode rule matches (enforced ones
	// never reach the server); nil checks nothing.
	policy *policy.Set // first recording error (fail-closed); sticky
}

// prepared is a server-side prepared statement.
type prepared struct {
	text     string
	nparams  int
	types    []byte // parameter types bound by the last execute
	unsigned []bool
	longData map[int][]byte
	longSize map[int]int
	cursor   []wire.Column // columns of the open cursor, for COM_STMT_FETCH
}

type phase int

const (
	phaseFirst      phase = iota // OK, ERR, LOCAL INFILE request or a column count
	phaseColumns                 // column definitions
	phaseColumnsEOF              // the EOF after them (without CLIENT_DEPRECATE_EOF)
	phaseRows                    // rows until EOF/OK or ERR
	phasePrepareOK               // the parameter and column definitions of a prepare
)

// command is the client command whose response is being read.
type command struct {
	code     byte
	protocol string // "simple" (text) or "extended" (prepared)
	stmts    []string
	idx      int // statement of stmts the next result belongs to
	start    time.Time
	params   []string
	ptrunc   bool
	stmt     *prepared
	stmtID   uint32
	call     bool // a CALL collects every result set up to its final OK

	ph        phase
	ncols     int
	cols      []wire.Column
	prepDefs  int // definitions (and EOFs) still expected after a prepare OK
	prepStmt  *prepared
	prepID    uint32
	binary    bool
	rows      int64
	warnings  uint16
	prev      preview
	infile    bool
	stmtStart time.Time
}

func newTracker(lim limits, caps uint32, emit func(recorder.Query) error) *tracker {
	return &tracker{lim: lim, caps: caps, emit: emit, stmts: map[uint32]*prepared{}}
}

// busy reports whether a command is waiting for its response.
func (t *tracker) busy() bool { return t.cur != nil }

// client observes one command payload; cut reports that p is only the
// start of it (the rest was relayed but not kept).
func (t *tracker) client(p []byte, cut bool, now time.Time) {
	if len(p) == 0 {
		return
	}
	if t.cur != nil {
		// A command without a response yet: the server never answered it.
		t.finishUnanswered(now)
	}
	r := wire.NewReader(p[1:])
	c := &command{code: p[0], start: now, stmtStart: now, protocol: "simple"}
	switch p[0] {
	case wire.ComQuery:
		text := t.text(p[1:])
		if t.caps&wire.ClientMultiStatements != 0 {
			c.stmts = splitStatements(text)
		} else {
			c.stmts = []string{strings.TrimSpace(text)}
		}
		c.call = leadingKeyword(c.stmts[0]) == "CALL"
	case wire.ComInitDB:
		c.stmts = []string{"USE " + quoteIdent(t.text(p[1:]))}
	case wire.ComFieldList:
		c.stmts = []string{"SHOW COLUMNS FROM " + quoteIdent(t.text(r.NulBytes()))}
	case wire.ComProcessKill:
		c.stmts = []string{"KILL " + strconv.FormatUint(uint64(r.Uint32()), 10)}
	case wire.ComStatistics:
		c.stmts = []string{"-- COM_STATISTICS"}
	case wire.ComResetConnection:
		c.stmts = []string{"-- COM_RESET_CONNECTION"}
		t.stmts = map[uint32]*prepared{}
	case wire.ComStmtPrepare:
		c.stmts = []string{t.text(p[1:])}
		c.protocol = "extended"
	case wire.ComStmtExecute:
		if !t.parseExecute(c, r) {
			c.stmts = []string{"-- COM_STMT_EXECUTE of an unknown statement"}
		}
		c.protocol = "extended"
		c.binary = true
	case wire.ComStmtFetch:
		id := r.Uint32()
		n := r.Uint32()
		c.stmtID, c.stmt = id, t.stmts[id]
		c.stmts = []string{fmt.Sprintf("-- FETCH %d rows from a cursor", n)}
		if c.stmt != nil {
			c.stmts[0] += ": " + c.stmt.text
		}
		c.protocol = "extended"
		c.binary = true
		c.ph = phaseRows
		c.cols = t.cursorCols(id)
	case wire.ComStmtSendLongData:
		t.longData(r)
		return
	case wire.ComStmtClose:
		delete(t.stmts, r.Uint32())
		return
	case wire.ComStmtReset:
		if s := t.stmts[r.Uint32()]; s != nil {
			s.longData, s.longSize = nil, nil
		}
		c.stmts = nil // answered with OK; not an event of its own
	case wire.ComPing, wire.ComQuit, wire.ComSetOption:
		c.stmts = nil
	default:
		c.stmts = []string{fmt.Sprintf("-- command 0x%02x", p[0])}
	}
	if p[0] == wire.ComQuit {
		return
	}
	c.ptrunc = c.ptrunc || (cut && p[0] == wire.ComStmtExecute)
	t.cur = c
	c.prev.reset(t.lim.previewRows, t.lim.previewBytes)
}

// text converts recorded text to valid UTF-8 and bounds it.
func (t *tracker) text(b []byte) string {
	return truncateUTF8(strings.ToValidUTF8(string(b), "\uFFFD"), t.lim.maxTextBytes)
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// server observes one response payload; cut reports that p is only the
// start of it.
func (t *tracker) server(p []byte, cut bool, now time.Time) {
	c := t.cur
	if c == nil || len(p) == 0 {
		return
	}
	switch c.ph {
	case phaseFirst:
		t.first(c, p, now)
	case phaseColumns:
		if col, err := wire.ParseColumn(p); err == nil {
			c.cols = append(c.cols, col)
		}
		if len(c.cols) >= c.ncols {
			c.ph = phaseRows
			if t.caps&wire.ClientDeprecateEOF == 0 {
				c.ph = phaseColumnsEOF
			}
		}
	case phaseColumnsEOF:
		_, status := wire.ParseEOF(p)
		c.ph = phaseRows
		if status&wire.StatusCursorExists != 0 {
			// Rows come with COM_STMT_FETCH; the execute itself is done.
			t.rememberCursor(c)
			t.finishStatement(c, now, status, nil)
		}
	case phaseRows:
		t.row(c, p, cut, now)
	case phasePrepareOK:
		c.prepDefs--
		if c.prepDefs <= 0 {
			t.stmts[c.prepID] = c.prepStmt
			t.cur = nil
		}
	}
}

func (t *tracker) first(c *command, p []byte, now time.Time) {
	switch p[0] {
	case wire.HeaderOK:
		if c.code == wire.ComStmtPrepare {
			t.prepareOK(c, p)
			return
		}
		ok, _ := wire.ParseOK(p, t.caps)
		c.warnings += ok.Warnings
		q := t.query(c, now)
		q.RowsAffected = int64(ok.AffectedRows)
		q.ReturnedRows = c.rows // rows of a CALL's result sets before its final OK
		q.LastInsertID = int64(ok.LastInsertID)
		if c.call && ok.Status&wire.StatusMoreResultsExists != 0 {
			return // an OK inside a CALL before its final one
		}
		t.finishStatement(c, now, ok.Status, &q)
	case wire.HeaderErr:
		e, _ := wire.ParseErr(p)
		q := t.query(c, now)
		q.ErrorCode, q.ErrorNumber, q.ErrorMessage = e.SQLState, int(e.Code), t.text([]byte(e.Message))
		t.record(q)
		t.skipRest(c, now)
		t.cur = nil
	case wire.HeaderLocalInfile:
		// The session refuses the file request (relay side); the server
		// answers it with an error or OK that ends this statement.
		c.infile = true
	default:
		n, _ := wire.NewReader(p).LenencInt()
		c.ncols, c.cols, c.ph = int(n), c.cols[:0], phaseColumns
		if n == 0 {
			c.ph = phaseRows
		}
	}
}

func (t *tracker) row(c *command, p []byte, cut bool, now time.Time) {
	switch {
	case p[0] == wire.HeaderErr:
		c.ph = phaseFirst
		t.first(c, p, now)
	case !cut && wire.IsEOF(p): // an end packet is tiny; a cut payload is a big row
		var status uint16
		if t.caps&wire.ClientDeprecateEOF != 0 {
			ok, _ := wire.ParseOK(p, t.caps)
			status, c.warnings = ok.Status, c.warnings+ok.Warnings
		} else {
			var w uint16
			w, status = wire.ParseEOF(p)
			c.warnings += w
		}
		if c.call && status&wire.StatusMoreResultsExists != 0 {
			c.ph = phaseFirst // the CALL's next result set, or its final OK
			return
		}
		t.finishStatement(c, now, status, nil)
	default:
		c.rows++
		if c.prev.full() {
			c.prev.trunc = true
			return
		}
		var vals []wire.Value
		var err error
		if c.binary {
			vals, err = wire.ParseBinaryRow(p, c.cols)
		} else {
			vals, err = wire.ParseTextRow(p, len(c.cols))
		}
		c.prev.addRow(vals, err != nil || cut)
	}
}

// finishStatement records the statement a result belongs to and moves to
// the next one; the command is done when the server says no more results
// follow. q is a prepared event (from an OK packet) or nil for a result set.
func (t *tracker) finishStatement(c *command, now time.Time, status uint16, q *recorder.Query) {
	if q == nil {
		ev := t.query(c, now)
		q = &ev
		q.ReturnedRows = c.rows
	}
	if c.infile {
		q.ErrorMessage = strings.TrimSpace(q.ErrorMessage + " LOAD DATA LOCAL INFILE refused by the gateway")
		if q.ErrorCode == "" {
			q.ErrorCode = "42000"
		}
	}
	t.record(*q)
	if status&wire.StatusMoreResultsExists != 0 && c.idx+1 < len(c.stmts) {
		c.idx++
		c.rows, c.warnings, c.cols, c.ph, c.infile = 0, 0, c.cols[:0], phaseFirst, false
		c.stmtStart = now
		c.call = leadingKeyword(c.stmts[c.idx]) == "CALL"
		c.prev.reset(t.lim.previewRows, t.lim.previewBytes)
		return
	}
	if status&wire.StatusMoreResultsExists != 0 {
		// More results than statements we split: keep reading them as
		// part of the last statement.
		c.rows, c.ph = 0, phaseFirst
		return
	}
	t.cur = nil
}

// skipRest records the statements after a failed one as not executed: the
// server stops a multi-statement text at its first error.
func (t *tracker) skipRest(c *command, now time.Time) {
	for c.idx+1 < len(c.stmts) {
		c.idx++
		c.stmtStart = now
		q := t.query(c, now)
		q.NotExecuted = true
		t.record(q)
	}
}

// finishUnanswered records a command the server did not answer.
func (t *tracker) finishUnanswered(now time.Time) {
	c := t.cur
	t.cur = nil
	if c.code == wire.ComStmtPrepare || c.idx >= len(c.stmts) {
		return
	}
	q := t.query(c, now)
	q.NotExecuted = true
	q.ErrorMessage = "no response from the server"
	t.record(q)
	t.skipRest(c, now)
}

// close records what is still in flight when the session ends.
func (t *tracker) close(now time.Time) error {
	if t.cur != nil {
		t.finishUnanswered(now)
	}
	return t.err
}

// query builds the event of the current statement.
func (t *tracker) query(c *command, now time.Time) recorder.Query {
	q := recorder.Query{Start: c.stmtStart, Duration: now.Sub(c.stmtStart), Protocol: c.protocol,
		Params: c.params, ParamsTruncated: c.ptrunc, Warnings: int(c.warnings)}
	if c.idx < len(c.stmts) {
		q.Text = c.stmts[c.idx]
	}
	if len(c.cols) > 0 {
		q.Columns = make([]string, len(c.cols))
		for i, col := range c.cols {
			q.Columns[i] = t.text([]byte(col.Name))
		}
	}
	q.Preview, q.PreviewTrunc = c.prev.result()
	return q
}

func (t *tracker) record(q recorder.Query) {
	if q.Text == "" && q.ErrorCode == "" {
		return
	}
	if q.ErrorCode == "" {
		kw := leadingKeyword(q.Text)
		switch {
		case q.ReturnedRows > 0 || len(q.Columns) > 0:
			q.CommandTag = kw + " " + strconv.FormatInt(q.ReturnedRows, 10)
		default:
			q.CommandTag = kw + " " + strconv.FormatInt(q.RowsAffected, 10)
		}
		q.CommandTag = strings.TrimSpace(q.CommandTag)
	}
	if q.Policy == nil && t.policy != nil && !strings.HasPrefix(q.Text, "-- ") {
		q.Policy = t.policy.SQL(q.Text)
	}
	if err := t.emit(q); err != nil && t.err == nil {
		t.err = err
	}
}

func truncateUTF8(s string, n int) string {
	if n <= 0 || len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
