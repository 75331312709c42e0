// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package encryptedstorage // import "github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage"

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/pamtrail/pamtrail/gateway/keys"
)

// encryptedStorage is a storage.Extension that hands out clients of the
// wrapped storage extension with every value sealed.
type encryptedStorage struct {
	id     component.ID
	cfg    *Config
	logger *zap.Logger

	mu    sync.Mutex
	ring  keyring           // set by Start
	inner storage.Extension // set by Start
}

var _ storage.Extension = (*encryptedStorage)(nil)

func newEncryptedStorage(id component.ID, cfg *Config, logger *zap.Logger) (*encryptedStorage, error) {
	if cfg.Storage == id {
		return nil, fmt.Errorf("storage: %q cannot wrap itself", id)
	}
	return &encryptedStorage{id: id, cfg: cfg, logger: logger}, nil
}

// Dependencies implements extensioncapabilities.Dependent: the collector
// starts the wrapped extension first and shuts it down last.
func (e *encryptedStorage) Dependencies() []component.ID {
	return []component.ID{e.cfg.Storage}
}

// Start loads the keyring and finds the wrapped storage extension.
func (e *encryptedStorage) Start(_ context.Context, host component.Host) error {
	ring, err := loadKeyring(e.cfg)
	if err != nil {
		return err
	}
	ext, found := host.GetExtensions()[e.cfg.Storage]
	if !found {
		return fmt.Errorf("storage: extension %q is not configured; add it under extensions and service::extensions", e.cfg.Storage)
	}
	inner, ok := ext.(storage.Extension)
	if !ok {
		return fmt.Errorf("storage: extension %q is not a storage extension", e.cfg.Storage)
	}
	e.mu.Lock()
	e.ring, e.inner = ring, inner
	e.mu.Unlock()
	currentID, _ := ring.CurrentAEAD()
	// Key ids are derived from the key material and reveal nothing of it.
	e.logger.Info("encrypting stored values", zap.Stringer("storage", e.cfg.Storage), zap.String("key_id", currentID))
	return nil
}

func loadKeyring(cfg *Config) (keyring, error) {
	if cfg.KeyFile != "" {
		ring, err := keys.Load(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		return ring, nil
	}
	ring, err := keys.FromEnv(cfg.KeyEnv)
	if err != nil {
		return nil, fmt.Errorf("key_env: %w", err)
	}
	return ring, nil
}

// Shutdown releases nothing of its own: clients are closed by the components
// that own them, and the wrapped extension is shut down by the collector. It
// is safe before Start.
func (e *encryptedStorage) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ring, e.inner = nil, nil
	return nil
}

// GetClient returns a client of the wrapped extension whose values are sealed
// for this component. When the wrapped client can be walked, the stored values
// are checked first so that a wrong or incomplete keyring stops the owning
// component from starting instead of making it discard what it cannot read.
func (e *encryptedStorage) GetClient(ctx context.Context, kind component.Kind, id component.ID, storageName string) (storage.Client, error) {
	e.mu.Lock()
	ring, inner := e.ring, e.inner
	e.mu.Unlock()
	if inner == nil {
		return nil, errors.New("encrypted_storage: GetClient called before Start or after Shutdown")
	}
	innerClient, err := inner.GetClient(ctx, kind, id, storageName)
	if err != nil {
		return nil, err
	}
	name := clientName(kind, id, storageName)
	sealer, logger := newSealer(ring, name), e.logger.With(zap.String("client", name))
	var files *valueFiles
	if dir := e.cfg.LargeValues.Directory; dir != "" {
		if files, err = openValueFiles(dir, name); err != nil {
			return nil, errors.Join(err, innerClient.Close(ctx))
		}
	}
	if w, ok := innerClient.(storage.Walker); ok {
		referenced, err := checkKeys(ctx, w, ring, sealer)
		if err == nil {
			err = checkValueFiles(files, referenced, logger)
		}
		if err != nil {
			return nil, errors.Join(err, innerClient.Close(ctx))
		}
	}
	return newClient(innerClient, sealer, logger, files, e.cfg.LargeValues.MinBytes), nil
}
