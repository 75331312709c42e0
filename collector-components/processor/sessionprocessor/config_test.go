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
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/rules"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/summary"
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
			id: component.NewIDWithName(metadata.Type, "cluster"),
			expected: func() *Config {
				cfg := createDefaultConfig().(*Config)
				cfg.Sessions.Endpoints = []string{"https://es-1:9200", "https://es-2:9200", "https://es-3:9200"}
				cfg.Sessions.APIKey = "aWQ6a2V5"
				cfg.Sessions.TLS.CAFile = "/etc/pamtrail/es-ca.pem"
				return cfg
			}(),
		},
		{
			id: component.NewIDWithName(metadata.Type, "full"),
			expected: func() *Config {
				cfg := createDefaultConfig().(*Config)
				cfg.HeartbeatInterval, cfg.LostAfterHeartbeats, cfg.Retention = 5*time.Second, 4, 2*time.Hour
				cfg.Sessions.Endpoint, cfg.Sessions.Index = "https://es.internal:9200", "pamtrail-sessions-prod"
				cfg.Sessions.User, cfg.Sessions.Password = "writer", "secret"
				cfg.Sessions.Timeout = 10 * time.Second
				cfg.Risk.Rules = []rules.Rule{{ID: "sql.grant_revoke", Severity: "high"}}
				cfg.Risk.Disabled = []string{"shell.privilege_escalation"}
				cfg.Risk.MaxFindings = 50
				cfg.Summary = SummaryConfig{Provider: summary.ProviderOpenAI, OpenAI: OpenAIConfig{
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
				`sessions_index::endpoints: must be http(s) URLs, got "ftp://x"`,
				"sessions_index::index: must not be empty",
				`risk: disabled: no rule with id "no.such.rule"`,
				"risk::max_findings: must be > 0",
			},
		},
		{
			id: component.NewIDWithName(metadata.Type, "bad_credentials"),
			errMsgs: []string{
				"sessions_index::api_key: use either api_key or user/password, not both",
				"sessions_index::tls: invalid TLS min_version",
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
	for _, field := range []string{"heartbeat_interval:", "lost_after_heartbeats:", "risk::max_findings:", "summary::provider:"} {
		assert.ErrorContains(t, err, field)
	}
}
