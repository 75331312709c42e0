// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package state

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestCheckpointOnSessionDocument: the document carries the checkpoint
// that reaches furthest whatever order records arrive in, and the final one
// seals the session; a session without checkpoints has neither field.
func TestCheckpointOnSessionDocument(t *testing.T) {
	record := func(seq, from, to int64, final bool) plog.LogRecord {
		r := plog.NewLogRecord()
		r.SetEventName(schema.EventCheckpoint)
		a := r.Attributes()
		a.PutStr(schema.AttrSessionID, "s")
		a.PutInt(schema.AttrSeq, seq)
		a.PutStr(schema.AttrGatewayID, "gw")
		a.PutStr(schema.AttrCheckpointKeyID, "k1")
		a.PutInt(schema.AttrCheckpointFrom, from)
		a.PutInt(schema.AttrCheckpointTo, to)
		a.PutStr(schema.AttrCheckpointHead, "head")
		a.PutStr(schema.AttrCheckpointSignature, "sig")
		a.PutBool(schema.AttrCheckpointFinal, final)
		return r
	}
	s := &Session{ID: "s", Status: schema.StatusActive}
	doc := s.Document(time.Now())
	require.NotContains(t, doc, schema.SessionSealed)
	require.NotContains(t, doc, schema.SessionCheckpoint)
	tests := []struct {
		seq, from, to int64
		final         bool
		wantTo        int64
		wantSealed    bool
	}{
		{5, 0, 4, false, 4, false},
		{12, 6, 11, true, 11, true},
		{10, 5, 9, false, 11, true}, // an older checkpoint arriving late
	}
	for _, tt := range tests {
		o, id, ok := Observe(nil, record(tt.seq, tt.from, tt.to, tt.final))
		require.True(t, ok)
		require.Equal(t, "s", id)
		Merge(s, []Observation{o}, time.Now(), 10)
		doc := s.Document(time.Now())
		cp, _ := doc[schema.SessionCheckpoint].(*schema.Checkpoint)
		require.NotNil(t, cp)
		require.Equal(t, tt.wantTo, cp.To)
		require.Equal(t, tt.wantSealed, doc[schema.SessionSealed])
		require.Equal(t, "sig", cp.Signature)
	}
}
