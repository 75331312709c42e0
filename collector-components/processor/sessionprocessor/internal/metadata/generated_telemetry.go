// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package metadata // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"
)

// Names of the processor's internal metrics, as listed in metadata.yaml. The
// collector exposes them under these exact names (no "_total" suffix in
// v0.156.0).
const (
	MetricRecordsWithoutSession = "pamtrail_processor_records_without_session"
	MetricRecordsWithoutSeq     = "pamtrail_processor_records_without_seq"
	MetricRecordsRefused        = "pamtrail_processor_records_refused"
	MetricFlushFailures         = "pamtrail_processor_flush_failures"
	MetricSessionWriteFailures  = "pamtrail_processor_session_write_failures"
	MetricPendingRecords        = "pamtrail_processor_pending_records"
)

// TelemetryBuilder holds the instruments the processor reports through the
// collector's own MeterProvider.
type TelemetryBuilder struct {
	RecordsWithoutSession metric.Int64Counter
	RecordsWithoutSeq     metric.Int64Counter
	RecordsRefused        metric.Int64Counter
	FlushFailures         metric.Int64Counter
	SessionWriteFailures  metric.Int64Counter

	meter         metric.Meter
	registrations []metric.Registration
}

// NewTelemetryBuilder creates every instrument; it fails only when the
// MeterProvider rejects an instrument definition.
func NewTelemetryBuilder(settings component.TelemetrySettings) (*TelemetryBuilder, error) {
	tb := &TelemetryBuilder{meter: settings.MeterProvider.Meter(ScopeName)}
	var errs, err error
	tb.RecordsWithoutSession, err = tb.meter.Int64Counter(MetricRecordsWithoutSession,
		metric.WithDescription("Log records that arrived without a session.id attribute."),
		metric.WithUnit("{records}"))
	errs = errors.Join(errs, err)
	tb.RecordsWithoutSeq, err = tb.meter.Int64Counter(MetricRecordsWithoutSeq,
		metric.WithDescription("Log records with a session.id but no integer pam.seq attribute."),
		metric.WithUnit("{records}"))
	errs = errors.Join(errs, err)
	tb.RecordsRefused, err = tb.meter.Int64Counter(MetricRecordsRefused,
		metric.WithDescription("Log records whose hand-off to the next consumer failed; the error went back to their sender."),
		metric.WithUnit("{records}"))
	errs = errors.Join(errs, err)
	tb.FlushFailures, err = tb.meter.Int64Counter(MetricFlushFailures,
		metric.WithDescription("Flushes whose hand-off to the next consumer failed."),
		metric.WithUnit("{flushes}"))
	errs = errors.Join(errs, err)
	tb.SessionWriteFailures, err = tb.meter.Int64Counter(MetricSessionWriteFailures,
		metric.WithDescription("Failed bulk writes to the sessions index (each is retried)."),
		metric.WithUnit("{requests}"))
	errs = errors.Join(errs, err)
	return tb, errs
}

// RegisterPendingRecordsCallback reports the number of buffered records each
// time the collector collects its metrics.
func (tb *TelemetryBuilder) RegisterPendingRecordsCallback(pending func() int64) error {
	gauge, err := tb.meter.Int64ObservableGauge(MetricPendingRecords,
		metric.WithDescription("Log records buffered in the processor, waiting for the next flush."),
		metric.WithUnit("{records}"))
	if err != nil {
		return err
	}
	reg, err := tb.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(gauge, pending())
		return nil
	}, gauge)
	if err != nil {
		return err
	}
	tb.registrations = append(tb.registrations, reg)
	return nil
}

// Shutdown unregisters the asynchronous instruments' callbacks so that the
// MeterProvider stops calling into a processor that is gone.
func (tb *TelemetryBuilder) Shutdown() {
	for _, reg := range tb.registrations {
		_ = reg.Unregister()
	}
	tb.registrations = nil
}
