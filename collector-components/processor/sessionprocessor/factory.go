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
)

const (
	defaultFlushInterval     = 10 * time.Second
	defaultSendBatchSize     = 8192
	defaultMaxPendingRecords = 4 * defaultSendBatchSize
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
		FlushInterval:     defaultFlushInterval,
		SendBatchSize:     defaultSendBatchSize,
		MaxPendingRecords: defaultMaxPendingRecords,
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
