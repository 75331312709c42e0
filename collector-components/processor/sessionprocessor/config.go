// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"errors"
	"fmt"
	"time"
)

// Config is the session processor's configuration.
type Config struct {
	// FlushInterval is the longest a record waits in the processor's buffer
	// before it is handed to the next consumer. It matches the gateway's
	// upload period by default, so Elasticsearch receives one bulk request per
	// upload round instead of one per gateway.
	FlushInterval time.Duration `mapstructure:"flush_interval"`

	// SendBatchSize flushes the buffer early once this many records are
	// pending, bounding the size of a single hand-off.
	SendBatchSize int `mapstructure:"send_batch_size"`

	// MaxPendingRecords caps the buffer. When it is full (typically because the
	// next consumer keeps failing), ConsumeLogs refuses new data with a
	// retryable error: the gateway keeps the records in its encrypted spool and
	// retries, instead of the collector growing without bound.
	MaxPendingRecords int `mapstructure:"max_pending_records"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Validate checks the configuration and names the offending field.
func (cfg *Config) Validate() error {
	var errs error
	if cfg.FlushInterval <= 0 {
		errs = errors.Join(errs, fmt.Errorf("flush_interval: must be > 0, got %s", cfg.FlushInterval))
	}
	if cfg.SendBatchSize <= 0 {
		errs = errors.Join(errs, fmt.Errorf("send_batch_size: must be > 0, got %d", cfg.SendBatchSize))
	}
	if cfg.MaxPendingRecords < cfg.SendBatchSize {
		errs = errors.Join(errs, fmt.Errorf("max_pending_records: must be >= send_batch_size (%d), got %d",
			cfg.SendBatchSize, cfg.MaxPendingRecords))
	}
	return errs
}
