// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package encryptedstorage // import "github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage"

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Why large values live in files of their own: file_storage keeps every
// value inside bbolt's B-tree, and bbolt rewrites a whole node whenever one
// key in it changes. A node holds at least two keys, and the persistent
// queue's items are whole export requests (megabytes during a catch-up),
// one of them sharing a node with the queue's metadata key, which every
// enqueue, dequeue and acknowledgement rewrites. Measured: the collector
// wrote 4.25 GB to disk to queue 300,000 records of about 1 KB. With a value
// of at least large_values.min_bytes written once to a file, the B-tree
// only holds a sealed reference to it (the file's id) and its nodes stay a
// few hundred bytes.
//
// Durability: a value file is written and fsynced, and so is its directory,
// before the transaction that references it commits; a file is removed only
// after the transaction that stopped referencing it committed. A crash in
// between leaves a file nothing references, which the next start removes
// (sweep). So every committed reference names a durable file.

// valueFileSuffix ends every value file's name; anything else in a client's
// directory is left alone.
const valueFileSuffix = ".value"

// valueFiles is the directory of one client's large values.
type valueFiles struct {
	dir string
}

// openValueFiles creates (mode 0700) the directory of the client named
// clientName under root: one per client, named by a digest of the client
// name because that name may hold any character.
func openValueFiles(root, clientName string) (*valueFiles, error) {
	sum := sha256.Sum256([]byte(clientName))
	dir := filepath.Join(root, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("large_values::directory: %w", err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := syncDir(d); err != nil {
			return nil, fmt.Errorf("large_values::directory: %w", err)
		}
	}
	return &valueFiles{dir: dir}, nil
}

// newFileID returns a random id for a new value file: 128 bits, so ids
// never repeat and a reference cannot be made to name another value's file
// by guessing.
func newFileID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading a random file id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func validFileID(id string) bool { return len(id) == 32 && isLowerHex(id) }

// fileKey is the storage key a value file's content is sealed under: the
// value's key and the file's id, so that a file moved to another key or
// swapped with another file of the same key fails authentication.
func fileKey(key, id string) string { return key + "\x00" + id }

func (v *valueFiles) path(id string) string { return filepath.Join(v.dir, id+valueFileSuffix) }

// write creates the file id with data (mode 0600) and fsyncs it. The
// directory entry becomes durable with syncDir.
func (v *valueFiles) write(id string, data []byte) error {
	f, err := os.OpenFile(v.path(id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(v.path(id))
		return fmt.Errorf("writing value file %s: %w", v.path(id), err)
	}
	return nil
}

func (v *valueFiles) syncDir() error { return syncDir(v.dir) }

func (v *valueFiles) read(id string) ([]byte, error) {
	return os.ReadFile(v.path(id))
}

// remove deletes a file nothing references any more; a file already gone
// is not an error.
func (v *valueFiles) remove(id string) error {
	if err := os.Remove(v.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// sweep removes the value files that referenced does not name (left by a
// crash between writing a file and committing its reference, or between
// committing a deletion and removing the file), and returns how many it
// removed and the referenced ids that have no file.
func (v *valueFiles) sweep(referenced map[string]bool) (removed int, missing []string, err error) {
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		return 0, nil, err
	}
	present := map[string]bool{}
	var errs []error
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), valueFileSuffix)
		if !ok || !validFileID(id) || e.IsDir() {
			continue
		}
		if referenced[id] {
			present[id] = true
			continue
		}
		if err := v.remove(id); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	for id := range referenced {
		if !present[id] {
			missing = append(missing, id)
		}
	}
	return removed, missing, errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
