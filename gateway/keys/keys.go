// Package keys holds the AES-256 keys that seal the gateway's spool.
//
// A keyring is a small JSON file (mode 0600) listing one or more keys; the
// last one is current and seals new spool segments, the older ones stay so
// that segments sealed before a rotation remain readable until they are
// uploaded. A key can also come from an environment variable holding the
// base64 of 32 random bytes, for deployments that inject secrets that way.
//
// Key ids are derived from the key material (a truncated SHA-256), so an id
// never reveals the key, the same key always has the same id wherever it comes
// from, and a damaged key file is caught when the stored id no longer matches.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// fileVersion is the keyring file format version written by this package.
const fileVersion = 1

// idDomain separates key-id hashing from any other use of SHA-256 over the
// same bytes.
const idDomain = "pamtrail spool key id v1\x00"

// Key is one AES-256 key with its id. The secret is unexported so that a Key
// printed with %v or marshalled by accident reveals only its id.
type Key struct {
	ID      string
	Created time.Time
	secret  [KeySize]byte
}

// String returns the id only: key material must never reach a log.
func (k Key) String() string { return "key " + k.ID }

// GoString keeps %#v from printing the secret too.
func (k Key) GoString() string { return "keys.Key{ID: " + strconv.Quote(k.ID) + "}" }

// AEAD returns an AES-256-GCM instance for the key.
func (k Key) AEAD() (cipher.AEAD, error) {
	block, err := aes.NewCipher(k.secret[:])
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", k.ID, err)
	}
	return cipher.NewGCM(block)
}

// NewKey returns a fresh random key.
func NewKey() (Key, error) {
	var secret [KeySize]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return Key{}, fmt.Errorf("keys: reading random bytes: %w", err)
	}
	return keyFromSecret(secret, time.Now().UTC()), nil
}

func keyFromSecret(secret [KeySize]byte, created time.Time) Key {
	return Key{ID: deriveID(secret[:]), Created: created, secret: secret}
}

// deriveID returns the 8-hex-character id of a key.
func deriveID(secret []byte) string {
	h := sha256.New()
	h.Write([]byte(idDomain))
	h.Write(secret)
	return hex.EncodeToString(h.Sum(nil)[:keyIDSize])
}

// Ring is an ordered set of keys; the last one is current.
type Ring struct {
	keys  []Key
	aeads map[string]cipher.AEAD
}

// NewRing builds a ring from keys ordered oldest first. It rejects an empty
// list and duplicate ids.
func NewRing(keys ...Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("keys: keyring has no keys")
	}
	r := &Ring{keys: slices.Clone(keys), aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if _, dup := r.aeads[k.ID]; dup {
			return nil, fmt.Errorf("keys: keys[%d]: duplicate key id %s", i, k.ID)
		}
		a, err := k.AEAD()
		if err != nil {
			return nil, err
		}
		r.aeads[k.ID] = a
	}
	return r, nil
}

// Keys returns the keys, oldest first.
func (r *Ring) Keys() []Key { return slices.Clone(r.keys) }

// Current returns the key that seals new data.
func (r *Ring) Current() Key { return r.keys[len(r.keys)-1] }

// CurrentAEAD returns the current key's id and cipher. Together with AEAD it
// lets the spool use a Ring without knowing how keys are stored.
func (r *Ring) CurrentAEAD() (string, cipher.AEAD) {
	id := r.Current().ID
	return id, r.aeads[id]
}

// AEAD returns the cipher of the key with the given id.
func (r *Ring) AEAD(id string) (cipher.AEAD, bool) {
	a, ok := r.aeads[id]
	return a, ok
}

// IDs returns the key ids, oldest first.
func (r *Ring) IDs() []string {
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.ID
	}
	return ids
}

// keyringFile is the on-disk JSON form.
type keyringFile struct {
	Version int        `json:"version"`
	Keys    []keyEntry `json:"keys"`
}

type keyEntry struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Key     string    `json:"key"` // base64 (standard encoding) of 32 bytes
}

// Load reads a keyring file. It refuses a file readable or writable by group
// or others, since anyone who can read it can read every recording.
func Load(path string) (*Ring, error) {
	data, err := readPrivate("keyring", path)
	if err != nil {
		return nil, err
	}
	r, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("keys: keyring %s: %w", path, err)
	}
	return r, nil
}

// readPrivate reads a file of secrets, refusing one that group or others
// may access. what names the file in errors ("keyring").
func readPrivate(what, path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %s %s: %w", what, path, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("keys: %s %s has mode %#o: it must not be accessible by group or others (chmod 600)", what, path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %s %s: %w", what, path, err)
	}
	return data, nil
}

// Parse decodes the JSON keyring format. Errors name the offending entry and
// never include key material.
func Parse(data []byte) (*Ring, error) {
	var f keyringFile
	if err := decodeKeyFile(data, "keyring", &f, &f.Version, fileVersion); err != nil {
		return nil, err
	}
	keys := make([]Key, 0, len(f.Keys))
	for i, e := range f.Keys {
		secret, err := decodeSecret(e.Key)
		if err != nil {
			return nil, fmt.Errorf("keys[%d] (id %s): %w", i, idLabel(e.ID), err)
		}
		k := keyFromSecret(secret, e.Created)
		if e.ID != k.ID {
			return nil, fmt.Errorf("keys[%d]: id %s does not match its key material (the file is damaged or was edited)", i, idLabel(e.ID))
		}
		keys = append(keys, k)
	}
	return NewRing(keys...)
}

// decodeKeyFile decodes one of pamtrail's versioned JSON key files into f
// and checks *version; what names the kind of file in errors.
func decodeKeyFile(data []byte, what string, f any, version *int, want int) error {
	if err := json.Unmarshal(data, f); err != nil {
		return fmt.Errorf("not a pamtrail %s (invalid JSON: %s)", what, jsonProblem(err))
	}
	if *version != want {
		return fmt.Errorf("unsupported %s version %d (want %d)", what, *version, want)
	}
	return nil
}

// jsonProblem describes a decoding error without quoting the input, which
// encoding/json does for some errors (and the input may be key material).
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type)
	default:
		return "a field has the wrong format (created must be an RFC 3339 time)"
	}
}

// idLabel quotes an id for an error message, unless it is too long to be
// one: key material pasted into the wrong field must not reach a log.
func idLabel(id string) string {
	if len(id) > 2*keyIDSize {
		return fmt.Sprintf("of %d characters, not an id", len(id))
	}
	return strconv.Quote(id)
}

// keyIDSize is the length of a key id in bytes (hex-encoded: twice that).
const keyIDSize = 4

// decodeSecret decodes base64 (standard, with or without padding) into a key.
func decodeSecret(s string) ([KeySize]byte, error) {
	var secret [KeySize]byte
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return secret, errors.New("key is not valid base64")
	}
	if len(raw) != KeySize {
		return secret, fmt.Errorf("key is %d bytes, want %d (AES-256)", len(raw), KeySize)
	}
	copy(secret[:], raw)
	return secret, nil
}

// FromEnv reads a single key from the named environment variable (base64 of
// 32 bytes).
func FromEnv(name string) (*Ring, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil, fmt.Errorf("keys: environment variable %s is not set", name)
	}
	secret, err := decodeSecret(v)
	if err != nil {
		return nil, fmt.Errorf("keys: environment variable %s: %w", name, err)
	}
	return NewRing(keyFromSecret(secret, time.Time{}))
}

// Marshal encodes the ring in the keyring file format.
func (r *Ring) Marshal() ([]byte, error) {
	f := keyringFile{Version: fileVersion, Keys: make([]keyEntry, len(r.keys))}
	for i, k := range r.keys {
		f.Keys[i] = keyEntry{ID: k.ID, Created: k.Created, Key: base64.StdEncoding.EncodeToString(k.secret[:])}
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// WithKey returns a new ring with k appended as the current key.
func (r *Ring) WithKey(k Key) (*Ring, error) {
	return NewRing(append(r.Keys(), k)...)
}

// Without returns a new ring without the keys for which drop returns true.
// The current key is always kept.
func (r *Ring) Without(drop func(Key) bool) (*Ring, error) {
	cur := r.Current().ID
	kept := make([]Key, 0, len(r.keys))
	for _, k := range r.keys {
		if k.ID == cur || !drop(k) {
			kept = append(kept, k)
		}
	}
	return NewRing(kept...)
}

// Save writes the ring to path atomically: a 0600 temporary file in the same
// directory, fsync, rename, fsync of the directory. A crash leaves either the
// old or the new keyring, never a truncated one.
func (r *Ring) Save(path string) error {
	data, err := r.Marshal()
	if err != nil {
		return fmt.Errorf("keys: encoding keyring: %w", err)
	}
	return writeFileAtomic(path, data)
}

func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("keys: writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	// CreateTemp already uses 0600; Chmod guards against an unusual umask
	// handling on exotic filesystems.
	if err = tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("keys: writing %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("keys: writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("keys: syncing %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("keys: writing %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("keys: replacing %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keys: syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("keys: syncing directory %s: %w", dir, err)
	}
	return nil
}

// Exists reports whether path exists (any error other than not-exist counts
// as existing, so that callers never overwrite something they cannot see).
func Exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
