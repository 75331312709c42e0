package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Signing keys are Ed25519 keys with which a gateway signs its sessions'
// checkpoints (gateway/chain). They are separate from the spool keys: the
// spool key hides recordings, the signing key vouches for them, and a
// verifier needs only the public half.
//
// A signing keyring file (mode 0600) lists the gateway's private keys, the
// last one current. Next to it, "<file>.pub" lists the public keys of every
// key the ring ever held, so checkpoints signed before a rotation stay
// verifiable; it is what verifiers are given.

const (
	signingFileVersion = 1
	signingIDDomain    = "pamtrail signing key id v1\x00"
	// signingIDSize is the key id length in bytes (16 hex characters).
	signingIDSize = 8
)

// SigningKey is one Ed25519 private key with its id.
type SigningKey struct {
	ID      string
	Created time.Time
	private ed25519.PrivateKey
}

// String returns the id only.
func (k SigningKey) String() string { return "signing key " + k.ID }

// GoString keeps %#v from printing the private key.
func (k SigningKey) GoString() string { return "keys.SigningKey{ID: " + k.ID + "}" }

// KeyID implements the recorder's Signer.
func (k SigningKey) KeyID() string { return k.ID }

// Sign implements the recorder's Signer.
func (k SigningKey) Sign(msg []byte) []byte { return ed25519.Sign(k.private, msg) }

// Public returns the public half.
func (k SigningKey) Public() PublicKey {
	return PublicKey{ID: k.ID, Created: k.Created, Key: k.private.Public().(ed25519.PublicKey)}
}

// PublicKey is a verifier's view of a signing key.
type PublicKey struct {
	ID      string
	Created time.Time
	Key     ed25519.PublicKey
}

// Verify reports whether sig is the key's signature of msg.
func (p PublicKey) Verify(msg, sig []byte) bool {
	return len(p.Key) == ed25519.PublicKeySize && ed25519.Verify(p.Key, msg, sig)
}

// SigningKeyID derives a key id from a public key.
func SigningKeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(append([]byte(signingIDDomain), pub...))
	return hex.EncodeToString(h[:signingIDSize])
}

// NewSigningKey returns a fresh Ed25519 key.
func NewSigningKey() (SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("keys: generating a signing key: %w", err)
	}
	return SigningKey{ID: SigningKeyID(pub), Created: time.Now().UTC(), private: priv}, nil
}

type signingFile struct {
	Version int            `json:"version"`
	Keys    []signingEntry `json:"signing_keys"`
}

type signingEntry struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Seed    string    `json:"seed"` // base64 of the 32-byte Ed25519 seed
}

type publicFile struct {
	Version int           `json:"version"`
	Keys    []publicEntry `json:"public_keys"`
}

type publicEntry struct {
	ID        string    `json:"id"`
	Created   time.Time `json:"created"`
	PublicKey string    `json:"public_key"` // base64 of 32 bytes
}

// PublicPath is where the public keys of the signing keyring at path live.
func PublicPath(path string) string { return path + ".pub" }

// LoadSigning reads a signing keyring and returns its current key. Like
// the spool keyring, it must not be accessible by group or others.
func LoadSigning(path string) (SigningKey, error) {
	data, err := readPrivate("signing keyring", path)
	if err != nil {
		return SigningKey{}, err
	}
	ring, err := parseSigning(data)
	if err != nil {
		return SigningKey{}, fmt.Errorf("keys: signing keyring %s: %w", path, err)
	}
	return ring[len(ring)-1], nil
}

func parseSigning(data []byte) ([]SigningKey, error) {
	var f signingFile
	if err := decodeKeyFile(data, "signing keyring", &f, &f.Version, signingFileVersion); err != nil {
		return nil, err
	}
	if len(f.Keys) == 0 {
		return nil, errors.New("signing keyring has no keys")
	}
	out := make([]SigningKey, 0, len(f.Keys))
	for i, e := range f.Keys {
		seed, err := base64.StdEncoding.DecodeString(e.Seed)
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("signing_keys[%d] (id %s): seed is not base64 of %d bytes", i, idLabelN(e.ID, signingIDSize), ed25519.SeedSize)
		}
		priv := ed25519.NewKeyFromSeed(seed)
		k := SigningKey{ID: SigningKeyID(priv.Public().(ed25519.PublicKey)), Created: e.Created, private: priv}
		if k.ID != e.ID {
			return nil, fmt.Errorf("signing_keys[%d]: id %s does not match its key material (the file is damaged or was edited)", i, idLabelN(e.ID, signingIDSize))
		}
		out = append(out, k)
	}
	return out, nil
}

// ParsePublic decodes a public key file (or the body of a published key
// list). Ids must match their keys, so a mislabelled key is refused.
func ParsePublic(data []byte) ([]PublicKey, error) {
	var f publicFile
	if err := decodeKeyFile(data, "public key file", &f, &f.Version, signingFileVersion); err != nil {
		return nil, err
	}
	out := make([]PublicKey, 0, len(f.Keys))
	for i, e := range f.Keys {
		p, err := ParsePublicKey(e.ID, e.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("public_keys[%d]: %w", i, err)
		}
		p.Created = e.Created
		out = append(out, p)
	}
	return out, nil
}

// ParsePublicKey checks one (id, base64 key) pair.
func ParsePublicKey(id, b64 string) (PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("key %s: public_key is not base64 of %d bytes", idLabelN(id, signingIDSize), ed25519.PublicKeySize)
	}
	pub := ed25519.PublicKey(raw)
	if SigningKeyID(pub) != id {
		return PublicKey{}, fmt.Errorf("key %s: the id does not match the public key", idLabelN(id, signingIDSize))
	}
	return PublicKey{ID: id, Key: pub}, nil
}

// LoadPublic reads a public key file.
func LoadPublic(path string) ([]PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: public keys %s: %w", path, err)
	}
	keys, err := ParsePublic(data)
	if err != nil {
		return nil, fmt.Errorf("keys: public keys %s: %w", path, err)
	}
	return keys, nil
}

// MarshalPublic encodes public keys in the public key file format.
func MarshalPublic(keys []PublicKey) ([]byte, error) {
	f := publicFile{Version: signingFileVersion, Keys: make([]publicEntry, len(keys))}
	for i, k := range keys {
		f.Keys[i] = publicEntry{ID: k.ID, Created: k.Created, PublicKey: base64.StdEncoding.EncodeToString(k.Key)}
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// CreateSigningFile writes a new signing keyring with one key to path and
// its public key file next to it. It refuses to replace an existing ring
// unless force is set.
func CreateSigningFile(path string, force bool) (SigningKey, error) {
	if Exists(path) && !force {
		return SigningKey{}, fmt.Errorf("keys: %s already exists; use --rotate to add a signing key, or --force to replace it", path)
	}
	k, err := NewSigningKey()
	if err != nil {
		return SigningKey{}, err
	}
	var published []PublicKey
	if force {
		published, _ = LoadPublic(PublicPath(path)) // keep old public keys: old signatures stay verifiable
	}
	return k, saveSigning(path, []SigningKey{k}, published)
}

// RotateSigningFile adds a fresh current key to the signing keyring at
// path. The ring keeps only the new private key (old checkpoints need no
// more signing); the public key file keeps every public key.
func RotateSigningFile(path string) (SigningKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SigningKey{}, fmt.Errorf("keys: signing keyring %s: %w", path, err)
	}
	ring, err := parseSigning(data)
	if err != nil {
		return SigningKey{}, fmt.Errorf("keys: signing keyring %s: %w", path, err)
	}
	published, err := LoadPublic(PublicPath(path))
	if err != nil && Exists(PublicPath(path)) {
		return SigningKey{}, err
	}
	for _, old := range ring {
		published = appendPublic(published, old.Public())
	}
	k, err := NewSigningKey()
	if err != nil {
		return SigningKey{}, err
	}
	return k, saveSigning(path, []SigningKey{k}, published)
}

func appendPublic(list []PublicKey, p PublicKey) []PublicKey {
	if slices.ContainsFunc(list, func(q PublicKey) bool { return q.ID == p.ID }) {
		return list
	}
	return append(list, p)
}

func saveSigning(path string, ring []SigningKey, published []PublicKey) error {
	f := signingFile{Version: signingFileVersion}
	for _, k := range ring {
		f.Keys = append(f.Keys, signingEntry{ID: k.ID, Created: k.Created, Seed: base64.StdEncoding.EncodeToString(k.private.Seed())})
		published = appendPublic(published, k.Public())
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("keys: encoding signing keyring: %w", err)
	}
	pub, err := MarshalPublic(published)
	if err != nil {
		return fmt.Errorf("keys: encoding public keys: %w", err)
	}
	// The public file first: a crash in between leaves a ring whose key is
	// already published, never a signing key nobody can verify.
	if err := writeFileAtomic(PublicPath(path), pub); err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'))
}

// idLabelN quotes an id for an error message unless it is too long to be
// one of size bytes.
func idLabelN(id string, size int) string {
	if len(id) > 2*size {
		return fmt.Sprintf("of %d characters, not an id", len(id))
	}
	return fmt.Sprintf("%q", id)
}

// Base64 is the public key in the form the key files and index hold.
func (p PublicKey) Base64() string { return base64.StdEncoding.EncodeToString(p.Key) }
