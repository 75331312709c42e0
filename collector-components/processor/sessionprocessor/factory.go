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
	"github.com/pamtrail/pamtrail/gateway/schema"
)

const (
	defaultFlushInterval     = 10 * time.Second
	defaultSendBatchSize     = 8192
	defaultMaxPendingRecords = 4 * defaultSendBatchSize
	// The gateway heartbeats once per 10 s upload cycle; three missed
	// heartbeats (30 s) make a session lost.
	defaultHeartbeatInterval   = 10 * time.Second
	defaultLostAfterHeartbeats = 3
	defaultRetention           = time.Hour
	defaultSessionsTimeout     = 30 * time.Second
	defaultMaxRetryInterval    = time.Minute
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
		FlushInterval:       defaultFlushInterval,
		SendBatchSize:       defaultSendBatchSize,
		MaxPendingRecords:   defaultMaxPendingRecords,
		HeartbeatInterval:   defaultHeartbeatInterval,
		LostAfterHeartbeats: defaultLostAfterHeartbeats,
		Retention:           defaultRetention,
		Sessions: SessionsIndexConfig{
			Index:            schema.SessionsIndex,
			Timeout:          defaultSessionsTimeout,
			MaxRetryInterval: defaultMaxRetryInterval,
		},
		Risk: RiskConfig{Builtin: true, MaxFindings: defaultMaxFindings},
		Summary: SummaryConfig{
			Provider: providerRules,
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
