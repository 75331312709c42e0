// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

// Package encryptedstorage provides the encrypted_storage extension: a storage
// extension that wraps another one (file_storage) and seals every value with
// AES-256-GCM, so that the collector's persistent queue holds no plaintext
// recording on disk.
package encryptedstorage // import "github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage/internal/metadata"
)

// NewFactory returns the factory the collector uses to build the extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(
		metadata.Type,
		createDefaultConfig,
		createExtension,
		metadata.ExtensionStability,
	)
}

// defaultMinFileBytes keeps the persistent queue's metadata and small
// requests in the B-tree, where they cost less than a file and its fsyncs,
// and moves the requests whose rewriting costs the most.
const defaultMinFileBytes = 64 << 10

// createDefaultConfig has no key: a default key would defeat the purpose.
// Large values stay in the wrapped storage unless a directory is set.
func createDefaultConfig() component.Config {
	return &Config{LargeValues: LargeValuesConfig{MinBytes: defaultMinFileBytes}}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newEncryptedStorage(set.ID, cfg.(*Config), set.Logger)
}
