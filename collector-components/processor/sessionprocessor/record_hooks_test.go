// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// newTestTelemetry returns telemetry instruments backed by an in-memory reader.
func newTestTelemetry(t *testing.T) (*componenttest.Telemetry, *metadata.TelemetryBuilder) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	tb, err := metadata.NewTelemetryBuilder(tel.NewTelemetrySettings())
	require.NoError(t, err)
	return tel, tb
}

// counterValue sums a counter's data points; a counter never incremented
// reads as 0.
func counterValue(t *testing.T, tel *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is not an int64 sum", name)
	var total int64
	for _, dp := range sum.DataPoints {
		total += dp.Value
	}
	return total
}

func TestSessionKeyHookGolden(t *testing.T) {
	input, err := os.ReadFile(filepath.Join("testdata", "hooks_input.json"))
	require.NoError(t, err)
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(input)
	require.NoError(t, err)

	tel, tb := newTestTelemetry(t)
	core, logs := observer.New(zapcore.WarnLevel)
	applyKeyHook(newSessionKeyHook(zap.New(core), tb), ld)

	got, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	require.NoError(t, err)
	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, got, "", "  "))
	pretty.WriteByte('\n')

	golden := filepath.Join("testdata", "hooks_expected.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, pretty.Bytes(), 0o600))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run `go test -run TestSessionKeyHookGolden -update` to create it")
	assert.Equal(t, string(want), pretty.String())

	// The input holds two records without a usable session.id (missing, empty)
	// and two with a session but a bad pam.seq (string, negative).
	assert.Equal(t, int64(2), counterValue(t, tel, "otelcol_pamtrail_processor_records_without_session"))
	assert.Equal(t, int64(2), counterValue(t, tel, "otelcol_pamtrail_processor_records_without_seq"))
	// The sampler lets through one warning per message per interval.
	assert.Equal(t, 2, logs.Len())
	for _, entry := range logs.All() {
		for _, f := range entry.Context {
			assert.NotEqual(t, "db.query.text", f.Key, "record content must not be logged")
		}
	}
}

func TestSessionKeyHookDocumentID(t *testing.T) {
	tests := []struct {
		name       string
		eventName  string
		setAttrs   func(pcommon.Map)
		wantDocID  string // "" means: no document id attribute
		wantViolat bool
	}{
		{
			name:      "session and seq",
			eventName: schema.EventDBQuery,
			setAttrs: func(m pcommon.Map) {
				m.PutStr(schema.AttrSessionID, "0195f2c4-aaaa")
				m.PutInt(schema.AttrSeq, 42)
			},
			wantDocID: "0195f2c4-aaaa:42",
		},
		{
			name:      "seq zero is valid",
			eventName: schema.EventSessionStart,
			setAttrs: func(m pcommon.Map) {
				m.PutStr(schema.AttrSessionID, "s")
				m.PutInt(schema.AttrSeq, 0)
			},
			wantDocID: "s:0",
		},
		{
			name:      "session id of the wrong type",
			eventName: schema.EventDBQuery,
			setAttrs: func(m pcommon.Map) {
				m.PutInt(schema.AttrSessionID, 7)
				m.PutInt(schema.AttrSeq, 1)
			},
			wantViolat: true,
		},
		{
			name:      "seq as double",
			eventName: schema.EventDBQuery,
			setAttrs: func(m pcommon.Map) {
				m.PutStr(schema.AttrSessionID, "s")
				m.PutDouble(schema.AttrSeq, 1)
			},
			wantViolat: true,
		},
		{
			name:      "auth failure without session is a violation too",
			eventName: schema.EventAuthFailure,
			setAttrs: func(m pcommon.Map) {
				m.PutStr(schema.AttrDocumentID, "sender-chosen")
			},
			wantViolat: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, tb := newTestTelemetry(t)
			ld := plog.NewLogs()
			rl := ld.ResourceLogs().AppendEmpty()
			rec := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			rec.SetEventName(tt.eventName)
			tt.setAttrs(rec.Attributes())

			newSessionKeyHook(zap.NewNop(), tb).processRecord(context.Background(), rl.Resource(), rec)

			docID, hasDocID := rec.Attributes().Get(schema.AttrDocumentID)
			if tt.wantDocID == "" {
				assert.False(t, hasDocID, "document id must be removed")
			} else {
				require.True(t, hasDocID)
				assert.Equal(t, tt.wantDocID, docID.Str())
			}
			flag, hasFlag := rec.Attributes().Get(schema.AttrSchemaViolation)
			assert.Equal(t, tt.wantViolat, hasFlag)
			if hasFlag {
				assert.True(t, flag.Bool())
			}
		})
	}
}

// applyKeyHook runs h over every record of ld.
func applyKeyHook(h *sessionKeyHook, ld plog.Logs) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, rec := range sl.LogRecords().All() {
				h.processRecord(context.Background(), rl.Resource(), rec)
			}
		}
	}
}
