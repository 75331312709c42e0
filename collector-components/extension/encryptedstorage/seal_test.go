// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package encryptedstorage

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/pamtrail/pamtrail/gateway/keys"
)

var update = flag.Bool("update", false, "rewrite testdata/sealed_v1.hex")

func newRing(t testing.TB, ks ...keys.Key) *keys.Ring {
	t.Helper()
	if len(ks) == 0 {
		ks = []keys.Key{newKey(t)}
	}
	r, err := keys.NewRing(ks...)
	require.NoError(t, err)
	return r
}

func newKey(t testing.TB) keys.Key {
	t.Helper()
	k, err := keys.NewKey()
	require.NoError(t, err)
	return k
}

var queueClient = clientName(component.KindExporter, component.MustNewID("elasticsearch"), "logs")

func TestSealRoundTrip(t *testing.T) {
	s := newSealer(newRing(t), queueClient)
	tests := []struct {
		name  string
		value []byte
	}{
		{"empty", []byte{}},
		{"one byte", []byte{0}},
		{"text", []byte("select * from accounts")},
		{"1 MiB", bytes.Repeat([]byte{0xab}, 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := s.seal("42", tt.value)
			require.NoError(t, err)
			assert.Len(t, sealed, headerSize+len(tt.value)+16)
			if len(tt.value) > 4 {
				assert.NotContains(t, string(sealed), string(tt.value))
			}
			plain, err := s.open("42", sealed)
			require.NoError(t, err)
			assert.Equal(t, tt.value, plain)
			assert.NotNil(t, plain, "an empty value is found, not missing")
		})
	}
	again, err := s.seal("42", []byte("x"))
	require.NoError(t, err)
	other, err := s.seal("42", []byte("x"))
	require.NoError(t, err)
	assert.NotEqual(t, again, other, "each value gets its own nonce")

	plain, err := s.open("42", nil)
	require.NoError(t, err)
	assert.Nil(t, plain, "a missing value stays missing")
}

// TestSealRejectsTampering flips one byte in each part of a sealed value, and
// moves a value to another key and to another component.
func TestSealRejectsTampering(t *testing.T) {
	ring := newRing(t)
	s := newSealer(ring, queueClient)
	sealed, err := s.seal("7", []byte("recorded statement: drop table audit"))
	require.NoError(t, err)

	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	withKeyID := func(id string) []byte {
		b := bytes.Clone(sealed)
		copy(b[5:13], id)
		return b
	}
	tests := []struct {
		name   string
		sealer *sealer
		key    string
		value  []byte
		want   error
	}{
		{"magic", s, "7", flip(0), errNotSealed},
		{"version", s, "7", flip(4), errNotSealed},
		{"key id of another key", s, "7", withKeyID("ffffffff"), errUnknownKey},
		{"key id not hex", s, "7", withKeyID("zzzzzzzz"), errNotSealed},
		{"nonce", s, "7", flip(15), errAuth},
		{"ciphertext", s, "7", flip(headerSize + 3), errAuth},
		{"tag", s, "7", flip(len(sealed) - 1), errAuth},
		{"truncated", s, "7", sealed[:len(sealed)-1], errAuth},
		{"short header", s, "7", sealed[:headerSize-1], errNotSealed},
		{"moved to another key", s, "8", sealed, errAuth},
		{"moved to another component", newSealer(ring, clientName(component.KindExporter, component.MustNewID("debug"), "logs")), "7", sealed, errAuth},
		{"plaintext left by file_storage", s, "7", []byte("plain queue item"), errNotSealed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := tt.sealer.open(tt.key, tt.value)
			assert.ErrorIs(t, err, tt.want)
			assert.Nil(t, plain)
		})
	}
}

func TestSealWrongKey(t *testing.T) {
	sealed, err := newSealer(newRing(t), queueClient).seal("1", []byte("secret"))
	require.NoError(t, err)
	_, err = newSealer(newRing(t), queueClient).open("1", sealed)
	assert.ErrorIs(t, err, errUnknownKey)
	assert.ErrorContains(t, err, string(sealed[5:13]), "the error names the missing key id")
}

// TestSealRotation: values sealed before a rotation stay readable, new values
// use the new key.
func TestSealRotation(t *testing.T) {
	oldKey, newKeyV := newKey(t), newKey(t)
	before := newSealer(newRing(t, oldKey), queueClient)
	sealedOld, err := before.seal("1", []byte("before"))
	require.NoError(t, err)

	after := newSealer(newRing(t, oldKey, newKeyV), queueClient)
	plain, err := after.open("1", sealedOld)
	require.NoError(t, err)
	assert.Equal(t, "before", string(plain))
	sealedNew, err := after.seal("2", []byte("after"))
	require.NoError(t, err)
	id, _, err := parseHeader(sealedNew)
	require.NoError(t, err)
	assert.Equal(t, newKeyV.ID, id)
}

// TestSealGolden keeps format version 1 readable: a value sealed by an
// earlier build must open with the same key forever.
func TestSealGolden(t *testing.T) {
	keyring, err := os.ReadFile(filepath.Join("testdata", "golden_keyring.json"))
	require.NoError(t, err)
	ring, err := keys.Parse(keyring)
	require.NoError(t, err)
	s := newSealer(ring, queueClient)
	const plaintext = "golden queue item: pam.db.query select 1"
	path := filepath.Join("testdata", "sealed_v1.hex")
	if *update {
		sealed, err := s.seal("17", []byte(plaintext))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, []byte(hex.EncodeToString(sealed)+"\n"), 0o600))
	}
	golden, err := os.ReadFile(path)
	require.NoError(t, err)
	sealed, err := hex.DecodeString(strings.TrimSpace(string(golden)))
	require.NoError(t, err)
	plain, err := s.open("17", sealed)
	require.NoError(t, err)
	assert.Equal(t, plaintext, string(plain))
	_, err = s.open("18", sealed)
	assert.ErrorIs(t, err, errAuth)
}

// FuzzOpen feeds arbitrary bytes, as read back from a queue file, to open:
// it must return an error or the plaintext, never panic, and never accept a
// value it did not seal.
func FuzzOpen(f *testing.F) {
	ring := newRing(f)
	s := newSealer(ring, queueClient)
	sealed, err := s.seal("3", []byte("seed value"))
	require.NoError(f, err)
	f.Add(sealed)
	f.Add([]byte("PTES"))
	f.Add([]byte("PTES\x010123abcd"))
	f.Add(append([]byte("PTES\x02"), sealed[5:]...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		plain, err := s.open("3", data)
		if err == nil && !bytes.Equal(data, sealed) {
			t.Fatalf("open accepted %x, which was never sealed", data)
		}
		if err == nil && string(plain) != "seed value" {
			t.Fatalf("open returned %q", plain)
		}
	})
}
