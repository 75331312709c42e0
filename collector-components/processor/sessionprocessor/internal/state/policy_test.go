// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package state

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/rules"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// A statement the gateway's policy blocked, or would have blocked in
// audit mode, raises the session's risk even when no processor rule
// matches its text; one without a policy verdict does not.
func TestPolicyVerdictRaisesRisk(t *testing.T) {
	rs, err := rules.Load(rules.Config{Builtin: true})
	require.NoError(t, err)
	tests := []struct {
		name      string
		blocked   *bool
		rule      string
		wantRules []string
		wantText  string
	}{
		{"blocked", ptr(true), "no-vacuum", []string{"policy.no-vacuum"}, "blocked by policy rule no-vacuum"},
		{"audited", ptr(false), "no-vacuum", []string{"policy.no-vacuum"}, "policy rule no-vacuum would block this (audit mode)"},
		{"no verdict", nil, "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := pcommon.NewMap()
			attrs.PutStr(schema.AttrDBQueryText, "VACUUM FULL")
			if tt.blocked != nil {
				attrs.PutBool(schema.AttrBlocked, *tt.blocked)
				attrs.PutStr(schema.AttrPolicyRule, tt.rule)
			}
			_, matches := evaluateRisk(rs, schema.EventDBQuery, attrs)
			var ids []string
			for _, m := range matches {
				ids = append(ids, m.RuleID)
				assert.Equal(t, tt.wantText, m.Reason)
				assert.Equal(t, "high", schema.RiskLevels[m.Severity])
			}
			assert.Equal(t, tt.wantRules, ids)
		})
	}
}

func ptr[T any](v T) *T { return &v }
