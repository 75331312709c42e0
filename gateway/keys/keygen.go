package keys

import (
	"errors"
	"fmt"
)

// CreateFile writes a new keyring with one fresh key to path. It refuses to
// replace an existing file unless force is set: overwriting a keyring makes
// every segment sealed with it unreadable.
func CreateFile(path string, force bool) (Key, error) {
	if Exists(path) && !force {
		return Key{}, fmt.Errorf("keys: %s already exists; use --rotate to add a key, or --force to replace it (segments sealed with the old keys become unreadable)", path)
	}
	k, err := NewKey()
	if err != nil {
		return Key{}, err
	}
	r, err := NewRing(k)
	if err != nil {
		return Key{}, err
	}
	return k, r.Save(path)
}

// RotateFile adds a fresh current key to the keyring at path, keeping the
// older keys so that existing segments stay readable.
func RotateFile(path string) (Key, error) {
	r, err := Load(path)
	if err != nil {
		return Key{}, err
	}
	k, err := NewKey()
	if err != nil {
		return Key{}, err
	}
	rotated, err := r.WithKey(k)
	if err != nil {
		return Key{}, err
	}
	return k, rotated.Save(path)
}

// PruneFile removes from the keyring at path every key, except the current
// one, that no file counted in inUse (key id -> files) still needs. It
// returns the removed ids.
func PruneFile(path string, inUse map[string]int) ([]string, error) {
	if inUse == nil {
		return nil, errors.New("keys: prune needs the key usage of the spool")
	}
	r, err := Load(path)
	if err != nil {
		return nil, err
	}
	var removed []string
	pruned, err := r.Without(func(k Key) bool {
		if inUse[k.ID] > 0 {
			return false
		}
		removed = append(removed, k.ID)
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(removed) == 0 {
		return nil, nil
	}
	return removed, pruned.Save(path)
}
