// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package encryptedstorage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

const testMinFileBytes = 1024

// largeValuesConfig is the fixture's configuration with value files under
// dir.
func (f *fixture) largeValuesConfig(dir string) *Config {
	return &Config{Storage: fileStorageID, KeyFile: f.keyFile, LargeValues: LargeValuesConfig{Directory: dir, MinBytes: testMinFileBytes}}
}

// valueFileNames lists the value files under root (every client).
func valueFileNames(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, valueFileSuffix) {
			out = append(out, path)
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

func largeValue(tag string) []byte {
	return bytes.Repeat([]byte("canary-"+tag+"-select-password;"), 2*testMinFileBytes/20)
}

// TestLargeValuesGoToFiles: a value of at least min_bytes is sealed into a
// file of its own (0600 in a 0700 directory, no plaintext), the B-tree holds
// only a small sealed reference, every read path returns the value, and
// replacing or deleting it removes the file.
func TestLargeValuesGoToFiles(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	root := filepath.Join(t.TempDir(), "values")
	c := f.client(f.start(f.largeValuesConfig(root)))

	big, small := largeValue("1"), []byte("queue metadata")
	require.NoError(t, c.Batch(ctx, storage.SetOperation("1", big), storage.SetOperation("qmv0", small)))
	files := valueFileNames(t, root)
	require.Len(t, files, 1, "one large value, one file")
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.False(t, bytes.Contains(data, []byte("canary-")), "the value file holds plaintext")
	for path, want := range map[string]os.FileMode{files[0]: 0o600, filepath.Dir(files[0]): 0o700} {
		info, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, want, info.Mode().Perm(), path)
	}

	require.NoError(t, c.Close(ctx)) // bbolt locks its file: one client at a time
	raw := f.rawClient()
	for key, format := range map[string]byte{"1": formatRef, "qmv0": formatValue} {
		stored, err := raw.Get(ctx, key)
		require.NoError(t, err)
		_, got, err := parseHeader(stored)
		require.NoError(t, err)
		assert.Equal(t, format, got, "key %s", key)
		assert.Less(t, len(stored), 200, "key %s: the B-tree holds more than a reference", key)
	}
	require.NoError(t, raw.Close(ctx))
	c = f.client(f.start(f.largeValuesConfig(root)))

	got, err := c.Get(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, big, got)
	walked := map[string]string{}
	require.NoError(t, c.(storage.Walker).Walk(ctx, func(key string, value []byte) ([]*storage.Operation, error) {
		walked[key] = string(value)
		return nil, nil
	}))
	assert.Equal(t, map[string]string{"1": string(big), "qmv0": string(small)}, walked)

	replacement := largeValue("2")
	require.NoError(t, c.Set(ctx, "1", replacement))
	after := valueFileNames(t, root)
	require.Len(t, after, 1, "the replaced value's file must be removed")
	assert.NotEqual(t, files[0], after[0])
	got, err = c.Get(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, replacement, got)

	get := storage.GetOperation("1")
	require.NoError(t, c.Batch(ctx, storage.DeleteOperation("1"), get))
	assert.Nil(t, get.Value, "deleted earlier in the same batch")
	assert.Empty(t, valueFileNames(t, root), "a deleted value's file must be removed")
	require.NoError(t, c.Close(ctx))
}

// TestValueFilesAfterACrash: at start, files no reference names (a crash
// between writing a file and committing, or between committing a deletion
// and removing the file) are removed; referenced ones are kept and read.
func TestValueFilesAfterACrash(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	root := filepath.Join(t.TempDir(), "values")
	cfg := f.largeValuesConfig(root)
	c := f.client(f.start(cfg))
	big := largeValue("kept")
	require.NoError(t, c.Set(ctx, "7", big))
	require.NoError(t, c.Close(ctx))
	kept := valueFileNames(t, root)
	require.Len(t, kept, 1)
	dir := filepath.Dir(kept[0])
	orphan := filepath.Join(dir, strings.Repeat("ab", 16)+valueFileSuffix)
	unrelated := filepath.Join(dir, "README")
	for _, p := range []string{orphan, unrelated} {
		require.NoError(t, os.WriteFile(p, []byte("left behind"), 0o600))
	}

	c = f.client(f.start(cfg))
	assert.Equal(t, kept, valueFileNames(t, root), "the orphan must be removed, the referenced file kept")
	assert.FileExists(t, unrelated, "only value files are swept")
	got, err := c.Get(ctx, "7")
	require.NoError(t, err)
	assert.Equal(t, big, got)
	require.NoError(t, c.Close(ctx))
}

// TestValueFilesProblemsFailStart: a reference whose file is missing, or
// references with large_values unset, make GetClient fail, as the
// persistent queue would otherwise drop those items; nothing is removed.
func TestValueFilesProblemsFailStart(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, f *fixture, root string) *Config
		wantErr string
	}{
		{
			name: "file missing",
			prepare: func(t *testing.T, f *fixture, root string) *Config {
				require.NoError(t, os.Remove(valueFileNames(t, root)[0]))
				return f.largeValuesConfig(root)
			},
			wantErr: "1 stored values are in value files missing from",
		},
		{
			name: "directory changed",
			prepare: func(t *testing.T, f *fixture, _ string) *Config {
				return f.largeValuesConfig(filepath.Join(t.TempDir(), "elsewhere"))
			},
			wantErr: "was large_values::directory changed or emptied",
		},
		{
			name: "large_values unset",
			prepare: func(_ *testing.T, f *fixture, _ string) *Config {
				return &Config{Storage: fileStorageID, KeyFile: f.keyFile, LargeValues: LargeValuesConfig{MinBytes: testMinFileBytes}}
			},
			wantErr: "1 stored values are in value files and large_values::directory is not set",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			root := filepath.Join(t.TempDir(), "values")
			c := f.client(f.start(f.largeValuesConfig(root)))
			require.NoError(t, c.Batch(ctx, storage.SetOperation("1", largeValue("1")), storage.SetOperation("qmv0", []byte("meta"))))
			require.NoError(t, c.Close(ctx))

			cfg := tt.prepare(t, f, root)
			before := valueFileNames(t, root)
			_, err := f.start(cfg).GetClient(ctx, component.KindExporter, exporterID, "logs")
			require.ErrorContains(t, err, tt.wantErr)
			assert.ErrorContains(t, err, "nothing was discarded")
			assert.Equal(t, before, valueFileNames(t, root))
		})
	}
}

// TestSwappedValueFilesAreRejected: a value file's content moved to another
// key's file fails authentication, and a file gone while running is an
// error naming the key.
func TestSwappedValueFilesAreRejected(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	root := filepath.Join(t.TempDir(), "values")
	c := f.client(f.start(f.largeValuesConfig(root)))
	require.NoError(t, c.Set(ctx, "1", largeValue("1")))
	first := valueFileNames(t, root)[0]
	require.NoError(t, c.Set(ctx, "2", largeValue("2")))
	var second string
	for _, p := range valueFileNames(t, root) {
		if p != first {
			second = p
		}
	}
	one, err := os.ReadFile(first)
	require.NoError(t, err)
	two, err := os.ReadFile(second)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(first, two, 0o600))
	require.NoError(t, os.WriteFile(second, one, 0o600))

	for _, key := range []string{"1", "2"} {
		got, err := c.Get(ctx, key)
		assert.ErrorIs(t, err, errAuth, "key %s", key)
		assert.ErrorContains(t, err, fmt.Sprintf("the value of %q", key))
		assert.Nil(t, got)
	}
	require.NoError(t, os.Remove(second))
	got, err := c.Get(ctx, "2")
	assert.ErrorContains(t, err, `the value of "2" is in a file that cannot be read`)
	assert.Nil(t, got)
	require.NoError(t, c.Close(ctx))
}

// TestEnablingLargeValues: values stored before large_values was set stay
// readable and deletable where they are; new large values go to files.
func TestEnablingLargeValues(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	old := largeValue("old")
	c := f.client(f.start(nil))
	require.NoError(t, c.Set(ctx, "1", old))
	require.NoError(t, c.Close(ctx))

	root := filepath.Join(t.TempDir(), "values")
	c = f.client(f.start(f.largeValuesConfig(root)))
	got, err := c.Get(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, old, got)
	require.NoError(t, c.Set(ctx, "2", largeValue("new")))
	assert.Len(t, valueFileNames(t, root), 1)
	require.NoError(t, c.Delete(ctx, "1"))
	got, err = c.Get(ctx, "1")
	require.NoError(t, err)
	assert.Nil(t, got)
	assert.Len(t, valueFileNames(t, root), 1, "deleting an inline value removes no file")
	require.NoError(t, c.Close(ctx))
}
