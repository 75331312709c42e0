// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

// Package metadata holds the session processor's identity and internal
// telemetry. It is the hand-written equivalent of what mdatagen generates from
// ../../metadata.yaml; keep the two in step.
package metadata // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/metadata"

import "go.opentelemetry.io/collector/component"

var (
	// Type is the processor's name in collector configuration files.
	Type = component.MustNewType("session")
	// ScopeName is the instrumentation scope of the processor's own telemetry.
	ScopeName = "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"
)

// LogsStability is the stability level of the logs pipeline support.
const LogsStability = component.StabilityLevelDevelopment
