// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package encryptedstorage

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	fileStorage := component.MustNewType("file_storage")
	tests := []struct {
		name     string
		expected *Config
		errMsgs  []string // every message must appear in Validate's error
	}{
		{
			name:    "",
			errMsgs: []string{"storage: required", "key_file or key_env: one is required"},
		},
		{
			name:     "file",
			expected: &Config{Storage: component.NewIDWithName(fileStorage, "queue"), KeyFile: "/etc/otelcol-pamtrail/queue.keys", LargeValues: LargeValuesConfig{MinBytes: defaultMinFileBytes}},
		},
		{
			name:     "env",
			expected: &Config{Storage: component.NewID(fileStorage), KeyEnv: "PAMTRAIL_COLLECTOR_QUEUE_KEY", LargeValues: LargeValuesConfig{MinBytes: defaultMinFileBytes}},
		},
		{
			name: "large_values",
			expected: &Config{Storage: component.NewID(fileStorage), KeyFile: "/etc/otelcol-pamtrail/queue.keys",
				LargeValues: LargeValuesConfig{Directory: "/var/lib/otelcol-pamtrail/queue/values", MinBytes: 4096}},
		},
		{
			name:    "bad_min_bytes",
			errMsgs: []string{"large_values::min_bytes: 0: must be at least 1"},
		},
		{
			name:    "no_storage",
			errMsgs: []string{"storage: required"},
		},
		{
			name:    "no_key",
			errMsgs: []string{"key_file or key_env: one is required"},
		},
		{
			name:    "both_keys",
			errMsgs: []string{"key_file and key_env: set only one"},
		},
	}
	for _, tt := range tests {
		id := component.NewIDWithName(metadata.Type, tt.name)
		t.Run(id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig().(*Config)
			sub, err := cm.Sub(id.String())
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

func TestConfigStruct(t *testing.T) {
	require.NoError(t, componenttest.CheckConfigStruct(NewFactory().CreateDefaultConfig()))
	assert.Equal(t, metadata.Type, NewFactory().Type())
	assert.Equal(t, metadata.ExtensionStability, NewFactory().Stability())
}
