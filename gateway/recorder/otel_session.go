package recorder

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// otelSession numbers and emits the records of one session.
type otelSession struct {
	r      *OTel
	info   SessionInfo
	policy Policy
	base   []*commonpb.KeyValue // session attributes shared by every record

	seq       atomic.Int64 // next sequence number; 0 is the start event
	queries   atomic.Int64
	commands  atomic.Int64
	errors    atomic.Int64
	recErrors atomic.Int64
	ended     atomic.Bool
}

func (s *otelSession) ID() string { return s.info.ID }

// newRecord starts a record with the session attributes and the next
// sequence number. Sequence numbers are taken in call order, so they follow
// protocol order for each engine goroutine.
func (s *otelSession) newRecord(event string, ts time.Time, body string) *logspb.LogRecord {
	attrs := make([]*commonpb.KeyValue, 0, len(s.base)+16)
	attrs = append(attrs, s.base...)
	attrs = append(attrs, intAttr(schema.AttrSeq, s.seq.Add(1)-1))
	now := uint64(s.r.opts.Now().UnixNano())
	return &logspb.LogRecord{
		TimeUnixNano:         uint64(ts.UnixNano()),
		ObservedTimeUnixNano: now,
		SeverityNumber:       logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
		SeverityText:         "INFO",
		EventName:            event,
		Body:                 &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: body}},
		Attributes:           attrs,
	}
}

// emit appends a record and applies the session's failure policy.
func (s *otelSession) emit(rec *logspb.LogRecord) error {
	if err := s.append(rec); err != nil {
		return s.r.recordFailure(s, rec.EventName, err)
	}
	return nil
}

// append encodes and appends a record, returning the raw failure.
func (s *otelSession) append(rec *logspb.LogRecord) error {
	payload, err := encode(rec)
	if err != nil {
		return err
	}
	if s.policy.Strict {
		ds, ok := s.r.opts.Sink.(DurableSink)
		if !ok {
			return fmt.Errorf("strict mode needs a durable sink")
		}
		err = ds.AppendDurable(context.Background(), payload)
	} else {
		err = s.r.opts.Sink.Append(payload)
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
	text, redactions := s.r.opts.Redactor.SQL(q.Text)
	text, textTrunc := s.r.truncate(text)
	params, pn := s.r.opts.Redactor.SQLParams(q.Text, q.Params)
	redactions += pn
	if q.Start.IsZero() {
		q.Start = s.r.opts.Now()
	}
	rec := s.newRecord(schema.EventDBQuery, q.Start, text)
	a := append(rec.Attributes,
		strAttr(schema.AttrDBSystem, "postgresql"),
		strAttr(schema.AttrDBNamespace, s.info.Database),
		strAttr(schema.AttrDBQueryText, text),
		strAttr(schema.AttrDBOperation, operationName(text)),
		strAttr(schema.AttrStartTime, q.Start.UTC().Format(time.RFC3339Nano)),
		floatAttr(schema.AttrDurationMs, durationMs(q.Duration)),
		intAttr(schema.AttrDBReturnedRows, q.ReturnedRows),
		intAttr(schema.AttrDBRowsAffected, q.RowsAffected),
	)
	if q.Protocol != "" {
		a = append(a, strAttr(schema.AttrDBProtocol, q.Protocol))
	}
	if len(params) > 0 {
		for i := range params {
			params[i], _ = s.r.opts.Redactor.SQL(params[i])
		}
		a = append(a, strSliceAttr(schema.AttrDBParams, params))
	}
	if q.ParamsTruncated {
		a = append(a, boolAttr(schema.AttrDBParamsTrunc, true))
	}
	if q.TxStatus != 0 {
		a = append(a, strAttr(schema.AttrDBTxStatus, string(q.TxStatus)))
	}
	if len(q.Columns) > 0 {
		a = append(a, strSliceAttr(schema.AttrDBColumns, q.Columns))
	}
	var response string
	switch {
	case q.NotExecuted:
		a = append(a, boolAttr(schema.AttrDBNotExecuted, true))
		response = "NOT EXECUTED (an earlier statement in the pipeline failed)"
	case q.ErrorCode != "":
		s.errors.Add(1)
		rec.SeverityNumber = logspb.SeverityNumber_SEVERITY_NUMBER_WARN
		rec.SeverityText = "WARN"
		msg, _ := s.r.opts.Redactor.SQL(q.ErrorMessage)
		detail, _ := s.r.opts.Redactor.SQL(q.ErrorDetail)
		a = append(a, strAttr(schema.AttrDBStatusCode, q.ErrorCode), strAttr(schema.AttrErrorType, q.ErrorCode),
			strAttr(schema.AttrErrorMessage, msg))
		if detail != "" {
			a = append(a, strAttr(schema.AttrErrorDetail, detail))
		}
		response = "ERROR " + q.ErrorCode + ": " + msg
	default:
		a = append(a, strAttr(schema.AttrDBCommandTag, q.CommandTag))
		response = q.CommandTag
	}
	if q.Preview != "" {
		preview, _ := s.r.opts.Redactor.SQL(q.Preview)
		response += "\n" + preview
	}
	if len(q.Notices) > 0 {
		response += "\nNOTICE: " + strings.Join(q.Notices, "\nNOTICE: ")
	}
	a = append(a, strAttr(schema.AttrResponseText, response))
	if q.PreviewTrunc || textTrunc {
		a = append(a, boolAttr(schema.AttrResponseTrunc, true))
	}
	if redactions > 0 {
		a = append(a, intAttr(schema.AttrRedactions, int64(redactions)))
	}
	rec.Attributes = a
	return s.emit(rec)
}

// Command implements Session.
func (s *otelSession) Command(c Command) error {
	s.commands.Add(1)
	text, redactions := s.r.opts.Redactor.Shell(c.Text)
	out, m := s.r.opts.Redactor.Shell(c.Output)
	redactions += m
	text, _ = s.r.truncate(text)
	out, outTrunc := s.r.truncate(out)
	if c.Start.IsZero() {
		c.Start = s.r.opts.Now()
	}
	rec := s.newRecord(schema.EventSSHCommand, c.Start, text)
	a := append(rec.Attributes,
		strAttr(schema.AttrSSHChannelType, c.Channel),
		strAttr(schema.AttrSSHCommand, text),
		strAttr(schema.AttrSSHOutput, out),
		strAttr(schema.AttrResponseText, out),
		strAttr(schema.AttrStartTime, c.Start.UTC().Format(time.RFC3339Nano)),
		floatAttr(schema.AttrDurationMs, durationMs(c.Duration)),
	)
	if c.ExitStatus != nil {
		a = append(a, intAttr(schema.AttrSSHExitStatus, int64(*c.ExitStatus)))
		if *c.ExitStatus != 0 {
			s.errors.Add(1)
		}
	}
	if c.ExitSignal != "" {
		a = append(a, strAttr(schema.AttrSSHExitSignal, c.ExitSignal))
	}
	if c.OutputTrunc || outTrunc {
		a = append(a, boolAttr(schema.AttrResponseTrunc, true))
	}
	if redactions > 0 {
		a = append(a, intAttr(schema.AttrRedactions, int64(redactions)))
	}
	rec.Attributes = a
	return s.emit(rec)
}

// Output implements Session.
func (s *otelSession) Output(o Output) error {
	data, redactions := s.r.opts.Redactor.Shell(o.Data)
	if o.Time.IsZero() {
		o.Time = s.r.opts.Now()
	}
	rec := s.newRecord(schema.EventSSHOutput, o.Time, data)
	rec.Attributes = append(rec.Attributes,
		strAttr(schema.AttrSSHStream, o.Stream),
		floatAttr(schema.AttrSSHElapsedMs, durationMs(o.Elapsed)))
	if redactions > 0 {
		rec.Attributes = append(rec.Attributes, intAttr(schema.AttrRedactions, int64(redactions)))
	}
	return s.emit(rec)
}

// File implements Session.
func (s *otelSession) File(f FileOp) error {
	if f.Time.IsZero() {
		f.Time = s.r.opts.Now()
	}
	body := f.Operation + " " + f.Path
	if f.Target != "" {
		body += " -> " + f.Target
	}
	rec := s.newRecord(schema.EventSSHFile, f.Time, body)
	a := append(rec.Attributes,
		strAttr(schema.AttrSSHChannelType, f.Channel),
		strAttr(schema.AttrFileOperation, f.Operation),
		strAttr(schema.AttrFilePath, f.Path),
		intAttr(schema.AttrFileBytes, f.Bytes))
	if f.Target != "" {
		a = append(a, strAttr(schema.AttrFileTarget, f.Target))
	}
	if f.Error != "" {
		s.errors.Add(1)
		a = append(a, strAttr(schema.AttrErrorMessage, f.Error))
	}
	rec.Attributes = a
	return s.emit(rec)
}

// Forward implements Session.
func (s *otelSession) Forward(f Forward) error {
	if f.Time.IsZero() {
		f.Time = s.r.opts.Now()
	}
	rec := s.newRecord(schema.EventSSHForward, f.Time, "forward to "+f.Target)
	rec.Attributes = append(rec.Attributes, strAttr(schema.AttrForwardTarget, f.Target), intAttr(schema.AttrBytesOut, f.Bytes))
	return s.emit(rec)
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
	rec := s.newRecord(schema.EventSessionEnd, e.Time, fmt.Sprintf("session ended: %s", e.Reason))
	rec.Attributes = append(rec.Attributes,
		strAttr(schema.AttrEndReason, e.Reason),
		floatAttr(schema.AttrDurationMs, durationMs(e.Time.Sub(s.info.Start))),
		strAttr(schema.AttrStartTime, s.info.Start.UTC().Format(time.RFC3339Nano)),
		intAttr(schema.AttrBytesIn, e.BytesIn),
		intAttr(schema.AttrBytesOut, e.BytesOut),
		intAttr(schema.AttrQueryCount, s.queries.Load()),
		intAttr(schema.AttrCommandCount, s.commands.Load()),
		intAttr(schema.AttrErrorCount, s.errors.Load()),
		intAttr(schema.AttrRecordingErrors, s.recErrors.Load()))
	if msg != "" {
		rec.Attributes = append(rec.Attributes, strAttr(schema.AttrErrorMessage, msg))
	}
	err := s.emit(rec)
	if s.r.opts.OnSessionEnd != nil {
		s.r.opts.OnSessionEnd(s.info.ID)
	}
	return err
}
