// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// sessionKeyHook checks that a record carries the session.id / pam.seq pair
// and derives the Elasticsearch document id from it.
//
// With a valid pair it sets elasticsearch.document_id to "<session.id>:<seq>";
// the exporter (logs_dynamic_id) uses it as _id with the create operation, so a
// batch that is sent twice (gateway retry, queue replay after a restart) never
// duplicates a document.
//
// Without a valid pair the record is still passed on, so nothing is lost, but
// it is flagged with pam.schema.violation=true, counted, and logged at a
// rate-limited warn. Any document id the sender set is removed: with the
// create operation and suppressed conflicts, a forged or reused id would make
// Elasticsearch silently discard the record.
type sessionKeyHook struct {
	telemetry *metadata.TelemetryBuilder
	// warnLogger is sampled: a misbehaving sender can produce thousands of bad
	// records a second, and the counters already carry the exact numbers.
	warnLogger *zap.Logger
}

// violationLogInterval is the period of the warn-log sampler: at most one
// warning per distinct message per interval.
const violationLogInterval = time.Minute

func newSessionKeyHook(logger *zap.Logger, telemetry *metadata.TelemetryBuilder) *sessionKeyHook {
	sampled := logger.WithOptions(zap.WrapCore(func(core zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(core, violationLogInterval, 1, 0)
	}))
	return &sessionKeyHook{telemetry: telemetry, warnLogger: sampled}
}

func (h *sessionKeyHook) processRecord(ctx context.Context, resource pcommon.Resource, record plog.LogRecord) {
	attrs := record.Attributes()
	sessionID, hasSession := state.StringAttr(attrs, schema.AttrSessionID)
	if !hasSession {
		attrs.Remove(schema.AttrDocumentID)
		attrs.PutBool(schema.AttrSchemaViolation, true)
		h.telemetry.PamtrailProcessorRecordsWithoutSession.Add(ctx, 1)
		h.warnLogger.Warn("log record without session.id; passed on without a document id",
			violationFields(resource, record)...)
		return
	}
	seq, hasSeq := state.SeqAttr(attrs)
	if !hasSeq {
		attrs.Remove(schema.AttrDocumentID)
		attrs.PutBool(schema.AttrSchemaViolation, true)
		h.telemetry.PamtrailProcessorRecordsWithoutSeq.Add(ctx, 1)
		h.warnLogger.Warn("log record without an integer pam.seq; passed on without a document id",
			violationFields(resource, record)...)
		return
	}
	attrs.PutStr(schema.AttrDocumentID, sessionID+":"+strconv.FormatInt(seq, 10))
}

// violationFields identifies a bad record for the operator without logging
// its content, which may hold query text or command output.
func violationFields(resource pcommon.Resource, record plog.LogRecord) []zap.Field {
	fields := []zap.Field{zap.String("event_name", record.EventName())}
	if gw, ok := state.StringAttr(record.Attributes(), schema.AttrGatewayID); ok {
		fields = append(fields, zap.String("gateway_id", gw))
	} else if gw, ok := state.StringAttr(resource.Attributes(), schema.AttrGatewayID); ok {
		fields = append(fields, zap.String("gateway_id", gw))
	}
	return fields
}
