// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id       component.ID
		expected *Config
		errMsgs  []string // every message must appear in Validate's error
	}{
		{
			id:       component.NewID(metadata.Type),
			expected: createDefaultConfig().(*Config),
		},
		{
			id: component.NewIDWithName(metadata.Type, "custom"),
			expected: func() *Config {
				cfg := createDefaultConfig().(*Config)
				cfg.FlushInterval, cfg.SendBatchSize, cfg.MaxPendingRecords = 2*time.Second, 100, 1000
				return cfg
			}(),
		},
		{
			id: component.NewIDWithName(metadata.Type, "full"),
			expected: func() *Config {
				cfg := createDefaultConfig().(*Config)
				storage := component.MustNewIDWithName("file_storage", "sessions")
				cfg.HeartbeatInterval, cfg.LostAfterHeartbeats, cfg.Retention = 5*time.Second, 4, 2*time.Hour
				cfg.Storage = &storage
				cfg.Sessions.Endpoint, cfg.Sessions.Index = "https://es.internal:9200", "pamtrail-sessions-prod"
				cfg.Sessions.User, cfg.Sessions.Password = "writer", "secret"
				cfg.Sessions.Timeout, cfg.Sessions.MaxRetryInterval = 10*time.Second, 30*time.Second
				cfg.Risk.Rules = []RuleConfig{{ID: "sql.grant_revoke", Severity: "high"}}
				cfg.Risk.Disabled = []string{"shell.privilege_escalation"}
				cfg.Risk.MaxFindings = 50
				cfg.Summary = SummaryConfig{Provider: providerOpenAI, OpenAI: OpenAIConfig{
					BaseURL: "http://127.0.0.1:11434/v1", Model: "llama3", APIKeyEnv: "LLM_KEY",
					Timeout: 5 * time.Second, MaxInputChars: 1000,
				}}
				return cfg
			}(),
		},
		{
			id: component.NewIDWithName(metadata.Type, "bad_session_settings"),
			errMsgs: []string{
				"heartbeat_interval: must be > 0",
				"lost_after_heartbeats: must be >= 2",
				`sessions_index::endpoint: must be an http(s) URL, got "ftp://x"`,
				"sessions_index::index: must not be empty",
				`risk: disabled: no rule with id "no.such.rule"`,
				"risk::max_findings: must be > 0",
			},
		},
		{
			id:      component.NewIDWithName(metadata.Type, "bad_summary"),
			errMsgs: []string{`summary::provider: must be "rules", "openai" or "none", got "gpt"`},
		},
		{
			id: component.NewIDWithName(metadata.Type, "bad_openai"),
			errMsgs: []string{
				"summary::openai::base_url: must be an http(s) URL",
				"summary::openai::model: must not be empty",
				"summary::openai::timeout: must be > 0",
			},
		},
		{
			id:      component.NewIDWithName(metadata.Type, "zero_interval"),
			errMsgs: []string{"flush_interval: must be > 0"},
		},
		{
			id: component.NewIDWithName(metadata.Type, "negative_batch"),
			errMsgs: []string{
				"send_batch_size: must be > 0, got -1",
			},
		},
		{
			id:      component.NewIDWithName(metadata.Type, "small_cap"),
			errMsgs: []string{"max_pending_records: must be >= send_batch_size (100), got 10"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))

			err = cfg.Validate()
			if len(tt.errMsgs) > 0 {
				require.Error(t, err)
				for _, msg := range tt.errMsgs {
					assert.ErrorContains(t, err, msg)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.expected, cfg)
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	err := (&Config{}).Validate()
	require.Error(t, err)
	for _, field := range []string{"flush_interval:", "send_batch_size:"} {
		assert.ErrorContains(t, err, field)
	}
}
