// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package encryptedstorage

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage/internal/metadata"
	"github.com/pamtrail/pamtrail/gateway/keys"
)

var (
	fileStorageID = component.MustNewID("file_storage")
	exporterID    = component.MustNewID("elasticsearch")
)

// testHost offers the extensions a collector would.
type testHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h testHost) GetExtensions() map[component.ID]component.Component { return h.exts }

// fixture is a real file_storage extension over a temporary directory, with
// the encrypted extension configured on top.
type fixture struct {
	t       *testing.T
	dir     string
	keyFile string
	inner   extension.Extension
	host    testHost
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), keyFile: filepath.Join(t.TempDir(), "queue.keys")}
	_, err := keys.CreateFile(f.keyFile, false)
	require.NoError(t, err)
	fsFactory := filestorage.NewFactory()
	cfg := fsFactory.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = f.dir
	cfg.FSync = true
	require.NoError(t, cfg.Validate())
	f.inner, err = fsFactory.Create(context.Background(), extensionSettings(fsFactory.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, f.inner.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, f.inner.Shutdown(context.Background())) })
	f.host = testHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{fileStorageID: f.inner}}
	return f
}

func extensionSettings(typ component.Type) extension.Settings {
	return extension.Settings{
		ID:                component.NewID(typ),
		TelemetrySettings: componenttest.NewNopTelemetrySettings(),
		BuildInfo:         component.NewDefaultBuildInfo(),
	}
}

// start creates and starts the encrypted extension with the fixture's key
// file; it is shut down when the test ends.
func (f *fixture) start(cfg *Config) *encryptedStorage {
	f.t.Helper()
	e, err := f.create(cfg)
	require.NoError(f.t, err)
	require.NoError(f.t, e.Start(context.Background(), f.host))
	return e
}

func (f *fixture) create(cfg *Config) (*encryptedStorage, error) {
	if cfg == nil {
		cfg = &Config{Storage: fileStorageID, KeyFile: f.keyFile}
	}
	ext, err := NewFactory().Create(context.Background(), extensionSettings(metadata.Type), cfg)
	if err != nil {
		return nil, err
	}
	e := ext.(*encryptedStorage)
	f.t.Cleanup(func() { require.NoError(f.t, e.Shutdown(context.Background())) })
	return e, nil
}

func (f *fixture) client(e storage.Extension) storage.Client {
	f.t.Helper()
	c, err := e.GetClient(context.Background(), component.KindExporter, exporterID, "logs")
	require.NoError(f.t, err)
	return c
}

// rawClient reads the wrapped storage directly, as an attacker with the
// queue file would.
func (f *fixture) rawClient() storage.Client {
	f.t.Helper()
	c, err := f.inner.(storage.Extension).GetClient(context.Background(), component.KindExporter, exporterID, "logs")
	require.NoError(f.t, err)
	return c
}

// bboltFiles returns the contents of every file file_storage wrote.
func (f *fixture) bboltFiles() map[string][]byte {
	f.t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(f.dir)
	require.NoError(f.t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(f.dir, e.Name()))
		require.NoError(f.t, err)
		out[e.Name()] = b
	}
	require.NotEmpty(f.t, out, "file_storage wrote no file")
	return out
}

// TestNoPlaintextOnDisk writes a canary through every write path (Set, Batch,
// Walk) and checks the bbolt file never holds it, while the values read back.
func TestNoPlaintextOnDisk(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	e := f.start(nil)
	c := f.client(e)
	canary := func(i int) []byte { return []byte(fmt.Sprintf("canary-%d-7f3a9c1e-select-password", i)) }

	require.NoError(t, c.Set(ctx, "1", canary(1)))
	require.NoError(t, c.Batch(ctx, storage.SetOperation("2", canary(2)), storage.SetOperation("3", canary(3))))
	w, ok := c.(storage.Walker)
	require.True(t, ok, "a file_storage client can be walked, so the wrapper must offer Walk too")
	visited := map[string]string{}
	require.NoError(t, w.Walk(ctx, func(key string, value []byte) ([]*storage.Operation, error) {
		visited[key] = string(value)
		if key == "3" {
			return []*storage.Operation{storage.SetOperation("4", canary(4))}, nil
		}
		return nil, nil
	}))
	assert.Equal(t, map[string]string{"1": string(canary(1)), "2": string(canary(2)), "3": string(canary(3))}, visited)
	for i := 1; i <= 4; i++ {
		got, err := c.Get(ctx, fmt.Sprint(i))
		require.NoError(t, err)
		assert.Equal(t, canary(i), got)
	}
	require.NoError(t, c.Close(ctx))

	for name, data := range f.bboltFiles() {
		info, err := os.Stat(filepath.Join(f.dir, name))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "%s", name)
		assert.False(t, bytes.Contains(data, []byte("canary-")), "%s holds a plaintext value", name)
		assert.True(t, bytes.Contains(data, []byte(sealMagic)), "%s holds no sealed value: the test looked at the wrong file", name)
	}
}

// TestPersistsAcrossRestart: a new extension with the same key reads what
// the previous one stored.
func TestPersistsAcrossRestart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(f.start(nil))
	require.NoError(t, c.Set(ctx, "qmv0", []byte("queue metadata")))
	require.NoError(t, c.Close(ctx))

	c = f.client(f.start(nil))
	got, err := c.Get(ctx, "qmv0")
	require.NoError(t, err)
	assert.Equal(t, "queue metadata", string(got))
	missing, err := c.Get(ctx, "absent")
	require.NoError(t, err)
	assert.Nil(t, missing)
	require.NoError(t, c.Close(ctx))
}

// TestBatch checks Get results land in the caller's operations, the caller's
// Set values are left as they were, and Delete works.
func TestBatch(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(f.start(nil))
	defer func() { require.NoError(t, c.Close(ctx)) }()

	set := storage.SetOperation("a", []byte("value a"))
	require.NoError(t, c.Batch(ctx, set, storage.SetOperation("b", []byte("value b"))))
	assert.Equal(t, "value a", string(set.Value), "the caller's value must not be replaced by its sealed form")

	getA, getB, getMissing := storage.GetOperation("a"), storage.GetOperation("b"), storage.GetOperation("zz")
	require.NoError(t, c.Batch(ctx, getA, storage.DeleteOperation("b"), getB, getMissing))
	assert.Equal(t, "value a", string(getA.Value))
	assert.Nil(t, getB.Value, "deleted earlier in the same batch")
	assert.Nil(t, getMissing.Value)
}

// TestTamperedValueIsRejected: values swapped between keys on disk, or
// altered, fail to read with a clear error.
func TestTamperedValueIsRejected(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(f.start(nil))
	require.NoError(t, c.Set(ctx, "1", []byte("first request")))
	require.NoError(t, c.Set(ctx, "2", []byte("second request")))
	require.NoError(t, c.Close(ctx))

	raw := f.rawClient()
	one, err := raw.Get(ctx, "1")
	require.NoError(t, err)
	two, err := raw.Get(ctx, "2")
	require.NoError(t, err)
	altered := bytes.Clone(one)
	altered[len(altered)-5] ^= 0x80
	require.NoError(t, raw.Batch(ctx, storage.SetOperation("1", two), storage.SetOperation("2", one), storage.SetOperation("3", altered)))
	require.NoError(t, raw.Close(ctx))

	c = f.client(f.start(nil))
	defer func() { require.NoError(t, c.Close(ctx)) }()
	for _, key := range []string{"1", "2", "3"} {
		got, err := c.Get(ctx, key)
		assert.ErrorIs(t, err, errAuth, "key %s", key)
		assert.ErrorContains(t, err, fmt.Sprintf("the value of %q", key))
		assert.Nil(t, got)
	}
	get := storage.GetOperation("2")
	assert.ErrorIs(t, c.Batch(ctx, get), errAuth)
	assert.Nil(t, get.Value)
}

// TestKeyRotation: after `pamtrail keygen --rotate`, old values stay readable
// and new ones are sealed with the new key.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(f.start(nil))
	require.NoError(t, c.Set(ctx, "old", []byte("sealed before rotation")))
	require.NoError(t, c.Close(ctx))

	newKeyV, err := keys.RotateFile(f.keyFile)
	require.NoError(t, err)
	c = f.client(f.start(nil))
	got, err := c.Get(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, "sealed before rotation", string(got))
	require.NoError(t, c.Set(ctx, "new", []byte("sealed after rotation")))
	require.NoError(t, c.Close(ctx))

	raw := f.rawClient()
	sealed, err := raw.Get(ctx, "new")
	require.NoError(t, err)
	require.NoError(t, raw.Close(ctx))
	id, _, err := parseHeader(sealed)
	require.NoError(t, err)
	assert.Equal(t, newKeyV.ID, id)
}

// TestMissingKeyFailsWithoutDiscarding: a keyring without the key that sealed
// the stored values makes GetClient fail, naming the key id, instead of
// letting the queue reset; with the key back, every value is still there.
func TestMissingKeyFailsWithoutDiscarding(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(f.start(nil))
	require.NoError(t, c.Set(ctx, "1", []byte("kept")))
	require.NoError(t, c.Close(ctx))
	original, err := os.ReadFile(f.keyFile)
	require.NoError(t, err)
	oldRing, err := keys.Parse(original)
	require.NoError(t, err)

	wrong := filepath.Join(t.TempDir(), "other.keys")
	_, err = keys.CreateFile(wrong, false)
	require.NoError(t, err)
	e := f.start(&Config{Storage: fileStorageID, KeyFile: wrong})
	_, err = e.GetClient(ctx, component.KindExporter, exporterID, "logs")
	require.Error(t, err)
	assert.ErrorContains(t, err, oldRing.Current().ID+" (1 values)")
	assert.ErrorContains(t, err, "nothing was discarded")

	got, err := f.client(f.start(nil)).Get(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, "kept", string(got))
}

// TestPlaintextStorageIsRefused: a directory written by a plain file_storage
// is not silently mixed with sealed values.
func TestPlaintextStorageIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	raw := f.rawClient()
	require.NoError(t, raw.Set(ctx, "qmv0", []byte("unencrypted metadata")))
	require.NoError(t, raw.Close(ctx))
	_, err := f.start(nil).GetClient(ctx, component.KindExporter, exporterID, "logs")
	assert.ErrorContains(t, err, "1 stored values are not sealed by encrypted_storage")
}

// TestStartErrors: every configuration problem found at Start names its
// field.
func TestStartErrors(t *testing.T) {
	f := newFixture(t)
	keyEnv := "PAMTRAIL_TEST_QUEUE_KEY"
	t.Setenv(keyEnv, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	t.Setenv("PAMTRAIL_TEST_SHORT_KEY", base64.StdEncoding.EncodeToString([]byte("short")))
	loose := filepath.Join(t.TempDir(), "loose.keys")
	_, err := keys.CreateFile(loose, false)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(loose, 0o644))
	tests := []struct {
		name    string
		cfg     *Config
		wantErr string // empty: Start succeeds
	}{
		{"key from env", &Config{Storage: fileStorageID, KeyEnv: keyEnv}, ""},
		{"missing key file", &Config{Storage: fileStorageID, KeyFile: filepath.Join(t.TempDir(), "none")}, "key_file: "},
		{"key file readable by others", &Config{Storage: fileStorageID, KeyFile: loose}, "chmod 600"},
		{"unset env", &Config{Storage: fileStorageID, KeyEnv: "PAMTRAIL_TEST_UNSET"}, "key_env: keys: environment variable PAMTRAIL_TEST_UNSET is not set"},
		{"short env key", &Config{Storage: fileStorageID, KeyEnv: "PAMTRAIL_TEST_SHORT_KEY"}, "want 32"},
		{"storage not configured", &Config{Storage: component.MustNewIDWithName("file_storage", "other"), KeyFile: f.keyFile}, `storage: extension "file_storage/other" is not configured`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := f.create(tt.cfg)
			require.NoError(t, err)
			err = e.Start(context.Background(), f.host)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), "BwcHBwcH", "key material must not appear in errors")
		})
	}

	t.Run("not a storage extension", func(t *testing.T) {
		other := component.MustNewID("health_check")
		host := testHost{Host: f.host, exts: map[component.ID]component.Component{other: nopComponent{}}}
		e, err := f.create(&Config{Storage: other, KeyFile: f.keyFile})
		require.NoError(t, err)
		assert.ErrorContains(t, e.Start(context.Background(), host), `storage: extension "health_check" is not a storage extension`)
	})
	t.Run("wraps itself", func(t *testing.T) {
		_, err := f.create(&Config{Storage: component.NewID(metadata.Type), KeyFile: f.keyFile})
		assert.ErrorContains(t, err, "cannot wrap itself")
	})
}

type nopComponent struct{}

func (nopComponent) Start(context.Context, component.Host) error { return nil }
func (nopComponent) Shutdown(context.Context) error              { return nil }

// TestLifecycle: Shutdown is safe before Start and twice; GetClient outside
// Start..Shutdown fails clearly; the wrapped extension is a dependency.
func TestLifecycle(t *testing.T) {
	f := newFixture(t)
	e, err := f.create(nil)
	require.NoError(t, err)
	assert.Equal(t, []component.ID{fileStorageID}, e.Dependencies())
	require.NoError(t, e.Shutdown(context.Background()), "Shutdown before Start")
	_, err = e.GetClient(context.Background(), component.KindExporter, exporterID, "logs")
	assert.ErrorContains(t, err, "before Start")

	require.NoError(t, e.Start(context.Background(), f.host))
	c := f.client(e)
	require.NoError(t, c.Close(context.Background()))
	require.NoError(t, e.Shutdown(context.Background()))
	require.NoError(t, e.Shutdown(context.Background()), "a second Shutdown is a no-op")
	_, err = e.GetClient(context.Background(), component.KindExporter, exporterID, "logs")
	assert.ErrorContains(t, err, "after Shutdown")
}
