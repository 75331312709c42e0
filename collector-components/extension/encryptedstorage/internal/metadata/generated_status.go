// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

// Package metadata holds the encrypted storage extension's identity. It is the
// hand-written equivalent of what mdatagen generates from ../../metadata.yaml;
// keep the two in step.
package metadata // import "github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage/internal/metadata"

import "go.opentelemetry.io/collector/component"

var (
	// Type is the extension's name in collector configuration files.
	Type = component.MustNewType("encrypted_storage")
	// ScopeName is the instrumentation scope of the extension's own telemetry.
	ScopeName = "github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage"
)

// ExtensionStability is the stability level of the extension.
const ExtensionStability = component.StabilityLevelDevelopment
