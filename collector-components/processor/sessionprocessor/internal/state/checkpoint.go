// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package state // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// A session keeps its latest signed checkpoint as the gateway recorded it
// (gateway/chain). The collector holds no keys and does not verify it; it
// keeps a copy apart from the events, so that a verifier can tell a session
// whose last events were deleted, and Kibana which sessions are sealed.

// checkpointOf reads a pam.chain.checkpoint record.
func checkpointOf(attrs pcommon.Map) *schema.Checkpoint {
	to, ok := attrs.Get(schema.AttrCheckpointTo)
	if !ok || to.Type() != pcommon.ValueTypeInt {
		return nil
	}
	c := &schema.Checkpoint{From: IntAttr(attrs, schema.AttrCheckpointFrom), To: to.Int()}
	c.GatewayID, _ = StringAttr(attrs, schema.AttrGatewayID)
	c.KeyID, _ = StringAttr(attrs, schema.AttrCheckpointKeyID)
	c.Head, _ = StringAttr(attrs, schema.AttrCheckpointHead)
	c.Signature, _ = StringAttr(attrs, schema.AttrCheckpointSignature)
	if f, ok := attrs.Get(schema.AttrCheckpointFinal); ok && f.Type() == pcommon.ValueTypeBool {
		c.Final = f.Bool()
	}
	return c
}

// mergeCheckpoint keeps the checkpoint that reaches furthest, whatever
// order records arrive in.
func mergeCheckpoint(s *Session, c *schema.Checkpoint) {
	if c != nil && (s.Checkpoint == nil || c.To > s.Checkpoint.To) {
		s.Checkpoint = c
	}
}

// addCheckpoint puts the checkpoint, and whether the session is sealed, on
// the document of a session that has one (a gateway without a signing key
// writes none).
func (s *Session) addCheckpoint(doc map[string]any) {
	if s.Checkpoint != nil {
		doc[schema.SessionCheckpoint] = s.Checkpoint
		doc[schema.SessionSealed] = s.Checkpoint.Final
	}
}
