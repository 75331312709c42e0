// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package encryptedstorage // import "github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage"

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
)

// Config is the encrypted storage extension's configuration.
type Config struct {
	// Storage is the id of the storage extension that holds the sealed values,
	// typically file_storage. It must be listed under service::extensions too.
	Storage component.ID `mapstructure:"storage"`

	// KeyFile is a pamtrail keyring file (`pamtrail keygen --out FILE`, mode
	// 0600). Its last key seals new values; older keys keep the values they
	// sealed readable after `pamtrail keygen --rotate`.
	KeyFile string `mapstructure:"key_file"`

	// KeyEnv names an environment variable holding the base64 of one 32-byte
	// key, for deployments that inject secrets as variables. A single key
	// cannot be rotated in place: rotation needs KeyFile.
	KeyEnv string `mapstructure:"key_env"`

	// LargeValues keeps large values out of the wrapped storage.
	LargeValues LargeValuesConfig `mapstructure:"large_values"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// LargeValuesConfig stores each value of at least MinBytes sealed in a file
// of its own under Directory, and only a sealed reference to it in the
// wrapped storage: file_storage rewrites whole B-tree nodes, so queued
// requests of megabytes are otherwise written to disk several times each
// (values.go).
type LargeValuesConfig struct {
	// Directory holds the files (one subdirectory per component, mode
	// 0700, files 0600). Empty: every value is stored in the wrapped
	// storage.
	Directory string `mapstructure:"directory"`
	// MinBytes is the size from which a value goes to a file.
	MinBytes int `mapstructure:"min_bytes"`
}

// Validate checks the configuration and names every offending field.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Storage == (component.ID{}) {
		errs = append(errs, errors.New("storage: required: the id of the storage extension to wrap, e.g. file_storage"))
	}
	switch {
	case cfg.KeyFile == "" && cfg.KeyEnv == "":
		errs = append(errs, errors.New("key_file or key_env: one is required (the AES-256 key that seals the stored values)"))
	case cfg.KeyFile != "" && cfg.KeyEnv != "":
		errs = append(errs, errors.New("key_file and key_env: set only one"))
	}
	if cfg.LargeValues.MinBytes < 1 {
		errs = append(errs, fmt.Errorf("large_values::min_bytes: %d: must be at least 1", cfg.LargeValues.MinBytes))
	}
	return errors.Join(errs...)
}
