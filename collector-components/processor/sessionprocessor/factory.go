// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/rules"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/summary"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

const (
	// The gateway heartbeats once per 10 s upload cycle; three missed
	// heartbeats (30 s) make a session lost.
	defaultHeartbeatInterval   = 10 * time.Second
	defaultLostAfterHeartbeats = 3
	defaultRetention           = time.Hour
	defaultSessionsTimeout     = 30 * time.Second
	defaultMaxFindings         = 200
	defaultOpenAITimeout       = 60 * time.Second
	// The reference implementation caps model input at 200,000 characters.
	defaultMaxInputChars = 200_000
)

// NewFactory returns the factory the collector uses to build session processors.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithLogs(createLogsProcessor, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		HeartbeatInterval:   defaultHeartbeatInterval,
		LostAfterHeartbeats: defaultLostAfterHeartbeats,
		Retention:           defaultRetention,
		Sessions: SessionsIndexConfig{
			Index:       schema.SessionsIndex,
			EventsIndex: schema.EventsIndex,
			Timeout:     defaultSessionsTimeout,
		},
		Risk: RiskConfig{Config: rules.Config{Builtin: true}, MaxFindings: defaultMaxFindings},
		Summary: SummaryConfig{
			Provider: summary.ProviderRules,
			OpenAI: OpenAIConfig{
				APIKeyEnv:     "OPENAI_API_KEY",
				Timeout:       defaultOpenAITimeout,
				MaxInputChars: defaultMaxInputChars,
			},
		},
	}
}

func createLogsProcessor(
	_ context.Context,
	set processor.Settings,
	cfg component.Config,
	next consumer.Logs,
) (processor.Logs, error) {
	return newSessionProcessor(set, cfg.(*Config), next)
}
