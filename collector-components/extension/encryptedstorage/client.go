// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package encryptedstorage // import "github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage"

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

// client seals every value on its way into the wrapped client and opens it on
// the way out. Keys are stored as they are: the persistent queue's keys are
// item indexes, not data.
type client struct {
	inner  storage.Client
	sealer *sealer
	logger *zap.Logger
}

// walkingClient is a client whose wrapped client can also be walked; only
// then does it offer storage.Walker itself.
type walkingClient struct {
	*client
	walker storage.Walker
}

var (
	_ storage.Client = (*client)(nil)
	_ storage.Walker = (*walkingClient)(nil)
)

// clientName identifies the component that owns a client; it is bound into
// every value's AAD. Each part is length-prefixed because component names may
// contain any separator.
func clientName(kind component.Kind, id component.ID, storageName string) string {
	parts := []string{kind.String(), id.String(), storageName}
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "%d:%s", len(p), p)
	}
	return b.String()
}

func newClient(inner storage.Client, s *sealer, logger *zap.Logger) storage.Client {
	c := &client{inner: inner, sealer: s, logger: logger}
	if w, ok := inner.(storage.Walker); ok {
		return &walkingClient{client: c, walker: w}
	}
	return c
}

// Get returns the plaintext stored under key, or nil if there is none.
func (c *client) Get(ctx context.Context, key string) ([]byte, error) {
	sealed, err := c.inner.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return c.open(key, sealed)
}

// Set seals value and stores it under key.
func (c *client) Set(ctx context.Context, key string, value []byte) error {
	sealed, err := c.seal(key, value)
	if err != nil {
		return err
	}
	return c.inner.Set(ctx, key, sealed)
}

// Delete removes key; values need no decryption to be deleted.
func (c *client) Delete(ctx context.Context, key string) error {
	return c.inner.Delete(ctx, key)
}

// Batch runs ops on the wrapped client in one call, so the wrapped client's
// atomicity (one bbolt transaction for file_storage) is kept. The caller's
// operations are not modified except for the results of Get operations.
func (c *client) Batch(ctx context.Context, ops ...*storage.Operation) error {
	innerOps := make([]*storage.Operation, len(ops))
	for i, op := range ops {
		innerOp := &storage.Operation{Key: op.Key, Type: op.Type}
		if op.Type == storage.Set {
			sealed, err := c.seal(op.Key, op.Value)
			if err != nil {
				return err
			}
			innerOp.Value = sealed
		}
		innerOps[i] = innerOp
	}
	if err := c.inner.Batch(ctx, innerOps...); err != nil {
		return err
	}
	var errs []error
	for i, op := range ops {
		if op.Type != storage.Get {
			continue
		}
		plain, err := c.open(op.Key, innerOps[i].Value)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		op.Value = plain
	}
	return errors.Join(errs...)
}

// Close closes the wrapped client.
func (c *client) Close(ctx context.Context) error {
	return c.inner.Close(ctx)
}

// Walk calls fn with every key and plaintext value; the Set operations fn
// returns are sealed before they reach the wrapped client.
func (c *walkingClient) Walk(ctx context.Context, fn storage.WalkFunc) error {
	return c.walker.Walk(ctx, func(key string, sealed []byte) ([]*storage.Operation, error) {
		plain, err := c.open(key, sealed)
		if err != nil {
			return nil, err
		}
		ops, fnErr := fn(key, plain)
		if fnErr != nil && !errors.Is(fnErr, storage.SkipAll) {
			return ops, fnErr
		}
		out := make([]*storage.Operation, len(ops))
		for i, op := range ops {
			if op.Type != storage.Set {
				out[i] = op
				continue
			}
			sealedOp, err := c.seal(op.Key, op.Value)
			if err != nil {
				return nil, err
			}
			out[i] = storage.SetOperation(op.Key, sealedOp)
		}
		return out, fnErr
	})
}

func (c *client) seal(key string, value []byte) ([]byte, error) {
	sealed, err := c.sealer.seal(key, value)
	if err != nil {
		return nil, fmt.Errorf("encrypted_storage: sealing the value of %q: %w", key, err)
	}
	return sealed, nil
}

// open logs every failure at error level: the persistent queue drops an item
// it cannot read and logs that only at debug level, so this line is what an
// operator sees.
func (c *client) open(key string, sealed []byte) ([]byte, error) {
	plain, err := c.sealer.open(key, sealed)
	if err != nil {
		err = fmt.Errorf("encrypted_storage: the value of %q cannot be read: %w", key, err)
		c.logger.Error("stored value cannot be decrypted", zap.String("key", key), zap.Error(err))
		return nil, err
	}
	return plain, nil
}

// checkKeys walks the stored values and fails if any was not sealed by this
// extension or was sealed with a key missing from the keyring. Without this
// check a wrong key_file would make the persistent queue reset itself
// ("starting with new ones") and drop every item it cannot read; failing at
// start keeps the data for the operator to add the old key back.
func checkKeys(ctx context.Context, w storage.Walker, keys keyring) error {
	missing := map[string]int{}
	notSealed := 0
	err := w.Walk(ctx, func(_ string, sealed []byte) ([]*storage.Operation, error) {
		id, err := parseHeader(sealed)
		switch {
		case err != nil:
			notSealed++
		case !hasKey(keys, id):
			missing[id]++
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("encrypted_storage: checking the stored values: %w", err)
	}
	if notSealed > 0 {
		return fmt.Errorf("encrypted_storage: %d stored values are not sealed by encrypted_storage; "+
			"was this storage written without encryption? Drain it with the old configuration or remove it", notSealed)
	}
	if len(missing) > 0 {
		ids := make([]string, 0, len(missing))
		for id, n := range missing {
			ids = append(ids, fmt.Sprintf("%s (%d values)", id, n))
		}
		sort.Strings(ids)
		return fmt.Errorf("encrypted_storage: stored values are sealed with keys missing from the keyring: %s; "+
			"add those keys back to key_file (nothing was discarded)", strings.Join(ids, ", "))
	}
	return nil
}

func hasKey(keys keyring, id string) bool {
	_, ok := keys.AEAD(id)
	return ok
}
