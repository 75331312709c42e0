// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"
)

func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, metadata.Type, f.Type())
	assert.Equal(t, metadata.LogsStability, f.LogsStability())

	cfg := f.CreateDefaultConfig()
	require.NoError(t, componenttest.CheckConfigStruct(cfg))
	require.NoError(t, cfg.(*Config).Validate())

	_, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	assert.Error(t, err, "traces are not supported")
	_, err = f.CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	assert.Error(t, err, "metrics are not supported")
}

func TestLifecycle(t *testing.T) {
	tests := []struct {
		name  string
		start bool
	}{
		{name: "start then shutdown", start: true},
		{name: "shutdown before start", start: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFactory()
			p, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type),
				f.CreateDefaultConfig(), consumertest.NewNop())
			require.NoError(t, err)
			assert.True(t, p.Capabilities().MutatesData)
			if tt.start {
				require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
			}
			require.NoError(t, p.Shutdown(context.Background()))
			require.NoError(t, p.Shutdown(context.Background()), "a second Shutdown is a no-op")
			// Start after Shutdown must not leave a flush goroutine behind
			// (goleak checks).
			require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
		})
	}
}

// VerifyShutdown checks that everything consumed before Shutdown reaches the
// next consumer by the time Shutdown returns.
func TestVerifyShutdown(t *testing.T) {
	processortest.VerifyShutdown(t, NewFactory(), NewFactory().CreateDefaultConfig())
}
