// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package encryptedstorage // import "github.com/pamtrail/pamtrail/collector-components/extension/encryptedstorage"

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sealed value format:
//
//	 0  magic "PTES"
//	 4  format (1 byte): 1 a value, 2 a reference to a value file (the
//	    plaintext is the file's id; see values.go)
//	 5  key id (8 ASCII hex characters) of the key that sealed the value
//	13  nonce (12 random bytes)
//	25  AES-256-GCM ciphertext and 16-byte tag
//
// AAD: a domain label, then the owning client's name (component kind, id and
// storage name) and the storage key, each length-prefixed, then the first 13
// header bytes. A value copied to another key or into another component's
// storage fails authentication, so an attacker with write access to the
// queue file cannot reorder or swap requests undetected.
//
// The nonce is random: the persistent queue rewrites its metadata on every
// enqueue and dequeue, so there is no per-key counter that would survive a
// restart. Random 96-bit nonces are safe for 2^32 values per key; at the
// collector's rates (a few values per exported request) that is years, and
// `pamtrail keygen --rotate` starts a new key long before.
const (
	sealMagic     = "PTES"
	formatValue   = 1
	formatRef     = 2
	keyIDSize     = 8
	nonceSize     = 12
	headerSize    = len(sealMagic) + 1 + keyIDSize + nonceSize
	aadHeaderSize = len(sealMagic) + 1 + keyIDSize
	aadLabel      = "pamtrail encrypted_storage v1\x00"
)

// keyring supplies the ciphers; *keys.Ring implements it. The current key
// seals, any key in the ring opens what it sealed.
type keyring interface {
	CurrentAEAD() (id string, aead cipher.AEAD)
	AEAD(id string) (cipher.AEAD, bool)
}

var (
	// errNotSealed marks a value that was not written by this extension,
	// e.g. left by a plain file_storage in the same directory.
	errNotSealed = errors.New("value is not sealed by encrypted_storage")
	// errUnknownKey marks a value sealed with a key missing from the keyring.
	errUnknownKey = errors.New("value is sealed with a key that is not in the keyring")
	// errAuth marks a value that fails authentication: it was altered, or
	// moved from another key or component.
	errAuth = errors.New("value failed authentication (altered on disk, or moved from another key or component)")
)

// sealer seals and opens the values of one storage client.
type sealer struct {
	keys   keyring
	client string // bound into every value's AAD
}

func newSealer(keys keyring, clientName string) *sealer {
	return &sealer{keys: keys, client: clientName}
}

// seal returns the sealed form of value stored under key.
func (s *sealer) seal(key string, value []byte) ([]byte, error) {
	return s.sealFormat(formatValue, key, value)
}

// sealRef returns the sealed reference to the value file fileID, stored
// under key.
func (s *sealer) sealRef(key, fileID string) ([]byte, error) {
	return s.sealFormat(formatRef, key, []byte(fileID))
}

func (s *sealer) sealFormat(format byte, key string, value []byte) ([]byte, error) {
	id, aead := s.keys.CurrentAEAD()
	if len(id) != keyIDSize || aead == nil || aead.NonceSize() != nonceSize {
		return nil, fmt.Errorf("current key %q is not an AES-GCM key with an 8-character id", id)
	}
	out := make([]byte, headerSize, headerSize+len(value)+aead.Overhead())
	copy(out, sealMagic)
	out[len(sealMagic)] = format
	copy(out[len(sealMagic)+1:], id)
	nonce := out[aadHeaderSize:headerSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("reading a random nonce: %w", err)
	}
	return aead.Seal(out, nonce, value, s.aad(key, out[:aadHeaderSize])), nil
}

// open returns the plaintext of a sealed value stored under key. A nil
// value (not found) opens to nil.
func (s *sealer) open(key string, sealed []byte) ([]byte, error) {
	plain, format, err := s.openAny(key, sealed)
	if err == nil && format == formatRef {
		return nil, fmt.Errorf("%w: a reference to a value file where a value was expected", errNotSealed)
	}
	return plain, err
}

// openAny opens a sealed value or reference and says which it is.
func (s *sealer) openAny(key string, sealed []byte) ([]byte, byte, error) {
	if sealed == nil {
		return nil, formatValue, nil
	}
	id, format, err := parseHeader(sealed)
	if err != nil {
		return nil, 0, err
	}
	plain, err := s.openWith(id, key, sealed)
	return plain, format, err
}

func (s *sealer) openWith(id, key string, sealed []byte) ([]byte, error) {
	aead, ok := s.keys.AEAD(id)
	if !ok {
		return nil, fmt.Errorf("%w: key id %s", errUnknownKey, id)
	}
	plain, err := aead.Open(nil, sealed[aadHeaderSize:headerSize], sealed[headerSize:], s.aad(key, sealed[:aadHeaderSize]))
	if err != nil {
		return nil, errAuth
	}
	if plain == nil {
		plain = []byte{} // an empty value is found, not missing
	}
	return plain, nil
}

// parseHeader checks the fixed header and returns the key id and the
// format. It reads untrusted bytes from disk and must never panic.
func parseHeader(sealed []byte) (string, byte, error) {
	if len(sealed) < headerSize || string(sealed[:len(sealMagic)]) != sealMagic {
		return "", 0, errNotSealed
	}
	format := sealed[len(sealMagic)]
	if format != formatValue && format != formatRef {
		return "", 0, fmt.Errorf("%w: unsupported format %d (want %d or %d)", errNotSealed, format, formatValue, formatRef)
	}
	id := string(sealed[len(sealMagic)+1 : aadHeaderSize])
	if !isLowerHex(id) {
		return "", 0, fmt.Errorf("%w: malformed key id", errNotSealed)
	}
	return id, format, nil
}

func (s *sealer) aad(key string, header []byte) []byte {
	aad := make([]byte, 0, len(aadLabel)+2*binary.MaxVarintLen64+len(s.client)+len(key)+len(header))
	aad = append(aad, aadLabel...)
	aad = binary.AppendUvarint(aad, uint64(len(s.client)))
	aad = append(aad, s.client...)
	aad = binary.AppendUvarint(aad, uint64(len(key)))
	aad = append(aad, key...)
	return append(aad, header...)
}

// isLowerHex reports whether s is only lower-case hexadecimal digits, as key
// ids and value file ids are.
func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
