// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package encryptedstorage // import "github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

// client seals every value on its way into the wrapped client and opens it on
// the way out. Keys are stored as they are: the persistent queue's keys are
// item indexes, not data. With files set, a value of at least minFileBytes
// is sealed into a file of its own and the wrapped client holds a sealed
// reference to it (values.go).
type client struct {
	inner        storage.Client
	sealer       *sealer
	logger       *zap.Logger
	files        *valueFiles // nil: every value is stored in the wrapped client
	minFileBytes int
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

func newClient(inner storage.Client, s *sealer, logger *zap.Logger, files *valueFiles, minFileBytes int) storage.Client {
	c := &client{inner: inner, sealer: s, logger: logger, files: files, minFileBytes: minFileBytes}
	if w, ok := inner.(storage.Walker); ok {
		return &walkingClient{client: c, walker: w}
	}
	return c
}

// Get returns the plaintext stored under key, or nil if there is none.
func (c *client) Get(ctx context.Context, key string) ([]byte, error) {
	op := storage.GetOperation(key)
	if err := c.Batch(ctx, op); err != nil {
		return nil, err
	}
	return op.Value, nil
}

// Set seals value and stores it under key.
func (c *client) Set(ctx context.Context, key string, value []byte) error {
	return c.Batch(ctx, storage.SetOperation(key, value))
}

// Delete removes key (and its value file, if it has one).
func (c *client) Delete(ctx context.Context, key string) error {
	return c.Batch(ctx, storage.DeleteOperation(key))
}

// Batch runs ops on the wrapped client in one call, so the wrapped client's
// atomicity (one bbolt transaction for file_storage) is kept. The caller's
// operations are not modified except for the results of Get operations.
//
// With value files, every Set and Delete is preceded, in the same call, by
// a Get of the value it replaces, so that a file the committed batch no
// longer references is known and removed. New files are durable before the
// call; if it fails they are left for the next start's sweep rather than
// removed, as a failed commit may still have reached the disk.
func (c *client) Batch(ctx context.Context, ops ...*storage.Operation) error {
	innerOps := make([]*storage.Operation, 0, len(ops))
	results := make([]*storage.Operation, len(ops)) // the inner op of each of ops
	var replaced []*storage.Operation               // Gets of the values Sets and Deletes replace
	var written []string                            // ids of the value files this batch wrote
	for i, op := range ops {
		if c.files != nil && op.Type != storage.Get {
			prev := storage.GetOperation(op.Key)
			replaced = append(replaced, prev)
			innerOps = append(innerOps, prev)
		}
		innerOp := &storage.Operation{Key: op.Key, Type: op.Type}
		if op.Type == storage.Set {
			stored, fileID, err := c.store(op.Key, op.Value)
			if err != nil {
				c.removeFiles(written)
				return err
			}
			innerOp.Value = stored
			if fileID != "" {
				written = append(written, fileID)
			}
		}
		results[i] = innerOp
		innerOps = append(innerOps, innerOp)
	}
	if len(written) > 0 {
		if err := c.files.syncDir(); err != nil {
			c.removeFiles(written)
			return fmt.Errorf("encrypted_storage: syncing %s: %w", c.files.dir, err)
		}
	}
	if err := c.inner.Batch(ctx, innerOps...); err != nil {
		return err
	}
	for _, prev := range replaced {
		c.removeFileOf(prev.Key, prev.Value)
	}
	var errs []error
	for i, op := range ops {
		if op.Type != storage.Get {
			continue
		}
		plain, err := c.load(ctx, op.Key, results[i].Value)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		op.Value = plain
	}
	return errors.Join(errs...)
}

// store returns what the wrapped client stores for value: the sealed value,
// or a sealed reference to the new file fileID that holds it.
func (c *client) store(key string, value []byte) (stored []byte, fileID string, err error) {
	if c.files == nil || len(value) < c.minFileBytes {
		stored, err = c.seal(key, value)
		return stored, "", err
	}
	id, err := newFileID()
	if err != nil {
		return nil, "", fmt.Errorf("encrypted_storage: %w", err)
	}
	sealed, err := c.seal(fileKey(key, id), value)
	if err != nil {
		return nil, "", err
	}
	if err := c.files.write(id, sealed); err != nil {
		return nil, "", fmt.Errorf("encrypted_storage: the value of %q: %w", key, err)
	}
	ref, err := c.sealer.sealRef(key, id)
	if err != nil {
		c.removeFiles([]string{id})
		return nil, "", fmt.Errorf("encrypted_storage: sealing the reference of %q: %w", key, err)
	}
	return ref, id, nil
}

// removeFiles removes value files no committed reference names; a failure
// only leaves them for the next start's sweep.
func (c *client) removeFiles(ids []string) {
	for _, id := range ids {
		if err := c.files.remove(id); err != nil {
			c.logger.Warn("a value file nothing references could not be removed; the next start removes it", zap.String("file", id), zap.Error(err))
		}
	}
}

// load returns the plaintext of what the wrapped client stored under key,
// reading the value file a reference names. A file missing because a
// concurrent Delete or Set of the same key removed it reads as that key's
// current value.
func (c *client) load(ctx context.Context, key string, stored []byte) ([]byte, error) {
	plain, err := c.loadOnce(key, stored)
	if !errors.Is(err, os.ErrNotExist) {
		return plain, err
	}
	if stored, err = c.inner.Get(ctx, key); err != nil {
		return nil, err
	}
	return c.loadOnce(key, stored)
}

// loadOnce is load without the second look: Walk uses it, as it runs
// inside the wrapped client's transaction.
func (c *client) loadOnce(key string, stored []byte) ([]byte, error) {
	plain, id, err := c.openStored(key, stored)
	if err != nil || id == "" {
		return plain, err
	}
	sealed, err := c.files.read(id)
	if err != nil {
		err = fmt.Errorf("encrypted_storage: the value of %q is in a file that cannot be read: %w", key, err)
		c.logger.Error("stored value cannot be read", zap.String("key", key), zap.Error(err))
		return nil, err
	}
	if plain, err = c.sealer.open(fileKey(key, id), sealed); err != nil {
		return nil, c.openFailed(key, fmt.Errorf("value file %s: %w", id, err))
	}
	return plain, nil
}

// openStored opens a stored value; for a reference it returns the file id
// instead of the value.
func (c *client) openStored(key string, stored []byte) (plain []byte, fileID string, err error) {
	plain, format, err := c.sealer.openAny(key, stored)
	if err != nil {
		return nil, "", c.openFailed(key, err)
	}
	if format != formatRef {
		return plain, "", nil
	}
	if c.files == nil {
		return nil, "", c.openFailed(key, errors.New("a reference to a value file, and large_values::directory is not set"))
	}
	if !validFileID(string(plain)) {
		return nil, "", c.openFailed(key, errors.New("a reference to a value file with a malformed id"))
	}
	return nil, string(plain), nil
}

// removeFileOf removes the value file a replaced value referenced. A
// failure only leaves a file for the next start's sweep.
func (c *client) removeFileOf(key string, stored []byte) {
	if _, format, err := parseHeader(stored); err != nil || format != formatRef {
		return // no file; and an inline value need not be decrypted to be replaced
	}
	if _, id, err := c.openStored(key, stored); err == nil && id != "" {
		c.removeFiles([]string{id})
	}
}

// Close closes the wrapped client.
func (c *client) Close(ctx context.Context) error {
	return c.inner.Close(ctx)
}

// Walk calls fn with every key and plaintext value; the Set operations fn
// returns are sealed before they reach the wrapped client, and stored in it
// whatever their size. A value file whose key fn deletes stays until the
// next start's sweep.
func (c *walkingClient) Walk(ctx context.Context, fn storage.WalkFunc) error {
	return c.walker.Walk(ctx, func(key string, stored []byte) ([]*storage.Operation, error) {
		plain, err := c.loadOnce(key, stored)
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
		return nil, c.openFailed(key, err)
	}
	return plain, nil
}

func (c *client) openFailed(key string, err error) error {
	err = fmt.Errorf("encrypted_storage: the value of %q cannot be read: %w", key, err)
	c.logger.Error("stored value cannot be decrypted", zap.String("key", key), zap.Error(err))
	return err
}

// checkKeys walks the stored values and fails if any was not sealed by this
// extension or was sealed with a key missing from the keyring. Without this
// check a wrong key_file would make the persistent queue reset itself
// ("starting with new ones") and drop every item it cannot read; failing at
// start keeps the data for the operator to add the old key back. It returns
// the ids of the value files that stored references name.
func checkKeys(ctx context.Context, w storage.Walker, keys keyring, s *sealer) (map[string]bool, error) {
	missing := map[string]int{}
	notSealed := 0
	files := map[string]bool{}
	err := w.Walk(ctx, func(key string, sealed []byte) ([]*storage.Operation, error) {
		id, format, err := parseHeader(sealed)
		switch {
		case err != nil:
			notSealed++
		case !hasKey(keys, id):
			missing[id]++
		case format == formatRef:
			// A reference that does not open is left to the owning
			// component, which reports it when it reads the value.
			if fileID, err := s.openWith(id, key, sealed); err == nil && validFileID(string(fileID)) {
				files[string(fileID)] = true
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("encrypted_storage: checking the stored values: %w", err)
	}
	if notSealed > 0 {
		return nil, fmt.Errorf("encrypted_storage: %d stored values are not sealed by encrypted_storage; "+
			"was this storage written without encryption? Drain it with the old configuration or remove it", notSealed)
	}
	if len(missing) > 0 {
		ids := make([]string, 0, len(missing))
		for id, n := range missing {
			ids = append(ids, fmt.Sprintf("%s (%d values)", id, n))
		}
		sort.Strings(ids)
		return nil, fmt.Errorf("encrypted_storage: stored values are sealed with keys missing from the keyring: %s; "+
			"add those keys back to key_file (nothing was discarded)", strings.Join(ids, ", "))
	}
	return files, nil
}

// checkValueFiles removes the value files nothing references and fails if
// a stored reference names a file that is not there, or if references exist
// and large_values::directory is not set: the persistent queue would drop
// every such item.
func checkValueFiles(files *valueFiles, referenced map[string]bool, logger *zap.Logger) error {
	if files == nil {
		if len(referenced) > 0 {
			return fmt.Errorf("encrypted_storage: %d stored values are in value files and large_values::directory is not set; "+
				"set it back to the directory that holds them (nothing was discarded)", len(referenced))
		}
		return nil
	}
	removed, missing, err := files.sweep(referenced)
	if removed > 0 {
		logger.Info("removed value files nothing references (left by a crash)", zap.Int("files", removed), zap.String("directory", files.dir))
	}
	if err != nil {
		logger.Warn("some value files nothing references could not be removed", zap.Error(err))
	}
	if len(missing) > 0 {
		return fmt.Errorf("encrypted_storage: %d stored values are in value files missing from %s; was large_values::directory "+
			"changed or emptied? Restore the files (nothing was discarded), or remove the storage to start an empty queue", len(missing), files.dir)
	}
	return nil
}

func hasKey(keys keyring, id string) bool {
	_, ok := keys.AEAD(id)
	return ok
}
