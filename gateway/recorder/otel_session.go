package recorder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pamtrail/pamtrail/gateway/chain"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// otelSession numbers and emits the records of one session.
type otelSession struct {
	r      *OTel
	info   SessionInfo
	policy Policy
	base   []byte // encoded session attributes shared by every record
	// constants is the digest of base's canonical entries: records leave
	// the session constants out of their canonical form, and each link
	// covers this digest instead (chain.Canon.Link).
	constants chain.Hash
	// baseRepaired lists session attributes whose invalid UTF-8 was
	// replaced when base was encoded (a client-chosen user name).
	baseRepaired []string

	// mu orders the session's records: numbering, chaining and spooling
	// happen under it (chain.go).
	mu       sync.Mutex
	next     int64 // next sequence number; 0 is the start event
	head     chain.Hash
	signedTo int64 // last seq covered by a checkpoint; -1 before the first
	dirty    bool  // recorded an event since the last checkpoint
	sealed   bool  // the final checkpoint is written

	queries   atomic.Int64
	commands  atomic.Int64
	errors    atomic.Int64
	recErrors atomic.Int64
	ended     atomic.Bool
}

func (s *otelSession) ID() string { return s.info.ID }

// newOTelSession prepares a session whose chain starts at its genesis link.
func newOTelSession(r *OTel, info SessionInfo, policy Policy) *otelSession {
	s := &otelSession{r: r, info: info, policy: policy, signedTo: -1, head: chain.Genesis(chain.Current, info.ID)}
	s.encodeSessionAttrs()
	return s
}

// MayBlock implements Session: a strict session waits for each event's
// fsync, and so does every session on a sink whose appends fsync.
func (s *otelSession) MayBlock() bool {
	bs, ok := s.r.opts.Sink.(BlockingSink)
	return s.policy.Strict || ok && bs.AppendBlocks()
}

// begin starts a record with the session attributes. The sequence number
// and chain link are added when it is appended, in append order, which
// follows protocol order for each engine goroutine.
func (s *otelSession) begin(event string, ts time.Time, warn bool, body string) *record {
	rec := newRecord()
	rec.chained = event != schema.EventHeartbeat && !s.r.opts.DisableChainForBenchmark
	rec.repaired = append(rec.repaired, s.baseRepaired...)
	rec.header(event, ts, s.r.opts.Now(), warn, body)
	rec.raw(s.base)
	return rec
}

// emit appends a record and applies the session's failure policy.
func (s *otelSession) emit(event string, rec *record) error {
	if err := s.appendChained(event, rec); err != nil {
		return s.r.recordFailure(s, event, err)
	}
	return nil
}

var errNotDurable = errors.New("strict mode needs a durable sink")

// flagRepaired marks a record whose text had invalid UTF-8 replaced; it is
// part of what is chained.
func flagRepaired(rec *record) {
	if len(rec.repaired) > 0 {
		rec.strs(schema.AttrTextRepaired, rec.repaired)
		rec.lossy = true
	}
	if rec.lossy {
		rec.bool(schema.AttrTextLossy, true)
	}
}

// spool hands an encoded record to the sink (which copies what it keeps),
// returning the raw failure.
func (s *otelSession) spool(b []byte) error {
	var err error
	if s.policy.Strict {
		ds, ok := s.r.opts.Sink.(DurableSink)
		if !ok {
			return errNotDurable
		}
		err = ds.AppendDurable(context.Background(), b)
	} else {
		err = s.r.opts.Sink.Append(b)
	}
	if err != nil {
		return err
	}
	s.r.appended.Add(1)
	return nil
}

// Query implements Session.
func (s *otelSession) Query(q Query) error {
	s.queries.Add(1)
	return s.emit(schema.EventDBQuery, s.queryRecord(q))
}

// queryRecord builds a statement's record.
func (s *otelSession) queryRecord(q Query) *record {
	text, redactions := s.r.opts.Redactor.SQL(q.Text)
	text, textTrunc := s.r.truncate(text, q.TextTruncated)
	params, pn := s.r.opts.Redactor.SQLParams(q.Text, q.Params)
	redactions += pn
	if q.Start.IsZero() {
		q.Start = s.r.opts.Now()
	}
	failed := q.ErrorCode != "" && !q.NotExecuted
	rec := s.begin(schema.EventDBQuery, q.Start, failed, text)
	rec.str(schema.AttrDBSystem, dbSystem(s.info.ResourceType))
	rec.str(schema.AttrDBNamespace, s.info.Database)
	rec.str(schema.AttrDBQueryText, text)
	op := operationName(text)
	rec.str(schema.AttrDBOperation, op)
	rec.str(schema.AttrStartTime, q.Start.UTC().Format(time.RFC3339Nano))
	rec.float(schema.AttrDurationMs, durationMs(q.Duration))
	rec.int(schema.AttrDBReturnedRows, q.ReturnedRows)
	rec.int(schema.AttrDBRowsAffected, q.RowsAffected)
	// A zero is meaningful for a COPY (an empty table was copied), so the
	// attribute is kept for every COPY statement and left off all others.
	if q.CopyBytes > 0 || op == "COPY" {
		rec.int(schema.AttrDBCopyBytes, q.CopyBytes)
	}
	if q.LastInsertID != 0 {
		rec.int(schema.AttrDBLastInsertID, q.LastInsertID)
	}
	if q.Warnings != 0 {
		rec.int(schema.AttrDBWarnings, int64(q.Warnings))
	}
	if q.Protocol != "" {
		rec.str(schema.AttrDBProtocol, q.Protocol)
	}
	if len(params) > 0 {
		if &params[0] == &q.Params[0] { // not copied by SQLParams: copy before redacting
			params = append([]string(nil), params...)
		}
		for i := range params {
			params[i], _ = s.r.opts.Redactor.SQL(params[i])
		}
		rec.strs(schema.AttrDBParams, params)
	}
	if q.ParamsTruncated {
		rec.bool(schema.AttrDBParamsTrunc, true)
	}
	if q.TxStatus != 0 {
		rec.str(schema.AttrDBTxStatus, txStatusText(q.TxStatus))
	}
	if len(q.Columns) > 0 {
		rec.strs(schema.AttrDBColumns, q.Columns)
	}
	var response string
	switch {
	case q.NotExecuted:
		rec.bool(schema.AttrDBNotExecuted, true)
		response = "NOT EXECUTED (an earlier statement in the pipeline failed)"
	case failed:
		s.errors.Add(1)
		msg, _ := s.r.opts.Redactor.SQL(q.ErrorMessage)
		detail, _ := s.r.opts.Redactor.SQL(q.ErrorDetail)
		rec.str(schema.AttrDBStatusCode, q.ErrorCode)
		rec.str(schema.AttrErrorType, q.ErrorCode)
		rec.str(schema.AttrErrorMessage, msg)
		if q.ErrorNumber != 0 {
			rec.int(schema.AttrDBErrorNumber, int64(q.ErrorNumber))
		}
		if detail != "" {
			rec.str(schema.AttrErrorDetail, detail)
		}
		response = "ERROR " + q.ErrorCode + ": " + msg
	default:
		rec.str(schema.AttrDBCommandTag, q.CommandTag)
		response = q.CommandTag
	}
	if q.Preview != "" {
		preview, _ := s.r.opts.Redactor.SQL(q.Preview)
		response += "\n" + preview
	}
	if len(q.Notices) > 0 {
		response += "\nNOTICE: " + strings.Join(q.Notices, "\nNOTICE: ")
	}
	rec.str(schema.AttrResponseText, response)
	if q.PreviewTrunc {
		rec.bool(schema.AttrResponseTrunc, true)
	}
	if textTrunc {
		rec.bool(schema.AttrTextTrunc, true)
	}
	if redactions > 0 {
		rec.int(schema.AttrRedactions, int64(redactions))
	}
	if q.ClientEncoding != "" {
		rec.str(schema.AttrDBClientEncoding, q.ClientEncoding)
	}
	rec.lossy = q.TextLossy
	rec.policy(q.Policy)
	return rec
}

// Command implements Session.
func (s *otelSession) Command(c Command) error {
	s.commands.Add(1)
	text, redactions := s.r.opts.Redactor.Shell(c.Text)
	out, m := s.r.opts.Redactor.Shell(c.Output)
	redactions += m
	text, textTrunc := s.r.truncate(text, c.TextTruncated)
	out, outTrunc := s.r.truncate(out, c.OutputTrunc)
	if c.Start.IsZero() {
		c.Start = s.r.opts.Now()
	}
	failed := c.ExitStatus != nil && *c.ExitStatus != 0
	rec := s.begin(schema.EventSSHCommand, c.Start, false, text)
	rec.str(schema.AttrSSHChannelType, c.Channel)
	rec.str(schema.AttrSSHCommand, text)
	rec.str(schema.AttrSSHOutput, out)
	rec.str(schema.AttrResponseText, out)
	rec.str(schema.AttrStartTime, c.Start.UTC().Format(time.RFC3339Nano))
	rec.float(schema.AttrDurationMs, durationMs(c.Duration))
	if c.ExitStatus != nil {
		rec.int(schema.AttrSSHExitStatus, int64(*c.ExitStatus))
	}
	if failed {
		s.errors.Add(1)
	}
	if c.ExitSignal != "" {
		rec.str(schema.AttrSSHExitSignal, c.ExitSignal)
	}
	if outTrunc {
		rec.bool(schema.AttrResponseTrunc, true)
	}
	if textTrunc {
		rec.bool(schema.AttrTextTrunc, true)
	}
	if redactions > 0 {
		rec.int(schema.AttrRedactions, int64(redactions))
	}
	rec.policy(c.Policy)
	return s.emit(schema.EventSSHCommand, rec)
}

// Output implements Session.
func (s *otelSession) Output(o Output) error {
	data, redactions := s.r.opts.Redactor.Shell(o.Data)
	if o.Time.IsZero() {
		o.Time = s.r.opts.Now()
	}
	rec := s.begin(schema.EventSSHOutput, o.Time, false, data)
	rec.str(schema.AttrSSHStream, o.Stream)
	rec.float(schema.AttrSSHElapsedMs, durationMs(o.Elapsed))
	if redactions > 0 {
		rec.int(schema.AttrRedactions, int64(redactions))
	}
	return s.emit(schema.EventSSHOutput, rec)
}

// File implements Session.
func (s *otelSession) File(f FileOp) error {
	if f.Time.IsZero() {
		f.Time = s.r.opts.Now()
	}
	var pathCut, targetCut, errorCut bool
	f.Path, pathCut = s.r.truncate(f.Path, false)
	f.Target, targetCut = s.r.truncate(f.Target, false)
	f.Error, errorCut = s.r.truncate(f.Error, false)
	body := f.Operation + " " + f.Path
	if f.Target != "" {
		body += " -> " + f.Target
	}
	rec := s.begin(schema.EventSSHFile, f.Time, f.Error != "", body)
	rec.str(schema.AttrSSHChannelType, f.Channel)
	rec.str(schema.AttrFileOperation, f.Operation)
	rec.str(schema.AttrFilePath, f.Path)
	rec.int(schema.AttrFileBytes, f.Bytes)
	if f.Target != "" {
		rec.str(schema.AttrFileTarget, f.Target)
	}
	if f.Error != "" {
		s.errors.Add(1)
		rec.str(schema.AttrErrorMessage, f.Error)
	}
	rec.policy(f.Policy)
	if pathCut || targetCut || errorCut {
		rec.bool(schema.AttrTextTrunc, true)
	}
	return s.emit(schema.EventSSHFile, rec)
}

// Forward implements Session.
func (s *otelSession) Forward(f Forward) error {
	if f.Time.IsZero() {
		f.Time = s.r.opts.Now()
	}
	rec := s.begin(schema.EventSSHForward, f.Time, false, "forward to "+f.Target)
	rec.str(schema.AttrForwardTarget, f.Target)
	rec.int(schema.AttrBytesOut, f.Bytes)
	return s.emit(schema.EventSSHForward, rec)
}

// End implements Session. It is idempotent: only the first call records.
func (s *otelSession) End(e End) error {
	if !s.ended.CompareAndSwap(false, true) {
		return nil
	}
	s.r.active.Delete(s.info.ID)
	if e.Time.IsZero() {
		e.Time = s.r.opts.Now()
	}
	msg, _ := s.r.opts.Redactor.Shell(e.Message)
	rec := s.begin(schema.EventSessionEnd, e.Time, false, fmt.Sprintf("session ended: %s", e.Reason))
	rec.str(schema.AttrEndReason, e.Reason)
	rec.float(schema.AttrDurationMs, durationMs(e.Time.Sub(s.info.Start)))
	rec.str(schema.AttrStartTime, s.info.Start.UTC().Format(time.RFC3339Nano))
	rec.int(schema.AttrBytesIn, e.BytesIn)
	rec.int(schema.AttrBytesOut, e.BytesOut)
	rec.int(schema.AttrQueryCount, s.queries.Load())
	rec.int(schema.AttrCommandCount, s.commands.Load())
	rec.int(schema.AttrErrorCount, s.errors.Load())
	rec.int(schema.AttrRecordingErrors, s.recErrors.Load())
	if msg != "" {
		rec.str(schema.AttrErrorMessage, msg)
	}
	err := s.emit(schema.EventSessionEnd, rec)
	if sealErr := s.seal(); sealErr != nil && err == nil {
		err = s.r.recordFailure(s, schema.EventCheckpoint, sealErr)
	}
	if s.r.opts.OnSessionEnd != nil {
		s.r.opts.OnSessionEnd(s.info.ID)
	}
	return err
}

// txStatusText is a ReadyForQuery status as text, without allocating for
// the three PostgreSQL sends.
func txStatusText(status byte) string {
	switch status {
	case 'I':
		return "I"
	case 'T':
		return "T"
	case 'E':
		return "E"
	}
	return string(status)
}

// dbSystem is the semantic-conventions db.system.name of a resource type.
func dbSystem(resourceType string) string {
	if resourceType == schema.ResourceMySQL {
		return "mysql"
	}
	return "postgresql"
}
