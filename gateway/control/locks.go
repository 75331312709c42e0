package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Lock kinds.
const (
	LockUser    = "user"
	LockAccount = "account"
)

// Lock stops a user or an account from having sessions until it expires
// or is removed.
type Lock struct {
	Kind    string    `json:"kind"` // user or account
	Name    string    `json:"name"`
	Reason  string    `json:"reason,omitempty"`
	By      string    `json:"by"` // the admin identity that set it
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"` // zero: until unlocked
}

// Target names what the lock is on, as user:NAME or account:NAME.
func (l Lock) Target() string { return l.Kind + ":" + l.Name }

// active reports whether the lock holds at now.
func (l Lock) active(now time.Time) bool { return l.Expires.IsZero() || now.Before(l.Expires) }

// locks is the gateway's lock list, persisted in one JSON file (0600) so
// it survives restarts; a reload reads it again.
type locks struct {
	path string
	mu   sync.Mutex
	list []Lock
}

// loadLocks reads the file; a missing file is an empty list.
func loadLocks(path string) (*locks, error) {
	l := &locks{path: path}
	if path == "" {
		return l, nil
	}
	list, err := readLocks(path)
	if err != nil {
		return nil, err
	}
	l.list = list
	return l, nil
}

func readLocks(path string) ([]Lock, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("admin.locks_file: %w", err)
	}
	var list []Lock
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("admin.locks_file %s: %w", path, err)
	}
	for i, l := range list {
		if (l.Kind != LockUser && l.Kind != LockAccount) || l.Name == "" {
			return nil, fmt.Errorf("admin.locks_file %s: lock %d: kind must be user or account, with a name", path, i)
		}
	}
	return list, nil
}

// reload replaces the list with the file's content.
func (l *locks) reload() error {
	if l.path == "" {
		return nil
	}
	list, err := readLocks(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.list = list
	l.mu.Unlock()
	return nil
}

// find returns the lock that holds on user or account at now.
func (l *locks) find(user, account string, now time.Time) (Lock, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range l.list {
		if k.active(now) && (k.Kind == LockUser && k.Name == user || k.Kind == LockAccount && k.Name == account) {
			return k, true
		}
	}
	return Lock{}, false
}

// active returns the locks in force, dropping expired ones.
func (l *locks) active(now time.Time) []Lock {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Lock
	for _, k := range l.list {
		if k.active(now) {
			out = append(out, k)
		}
	}
	return out
}

// add sets a lock, replacing one on the same target, and persists.
func (l *locks) add(k Lock, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(l.list), func(o Lock) bool { return o.Target() == k.Target() || !o.active(now) })
	next = append(next, k)
	if err := l.save(next); err != nil {
		return err
	}
	l.list = next
	return nil
}

// remove lifts the lock on a target; false when there was none.
func (l *locks) remove(kind, name string, now time.Time) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	target := Lock{Kind: kind, Name: name}.Target()
	found := false
	next := slices.DeleteFunc(slices.Clone(l.list), func(o Lock) bool {
		if o.Target() == target && o.active(now) {
			found = true
		}
		return o.Target() == target || !o.active(now)
	})
	if !found {
		return false, nil
	}
	if err := l.save(next); err != nil {
		return false, err
	}
	l.list = next
	return true, nil
}

// save writes the list atomically (temp file, fsync, rename), mode 0600.
func (l *locks) save(list []Lock) error {
	if l.path == "" {
		return nil
	}
	if list == nil {
		list = []Lock{}
	}
	raw, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("admin.locks_file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(l.path), ".locks-*")
	if err != nil {
		return fmt.Errorf("admin.locks_file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(raw, '\n')); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), l.path)
	}
	if err != nil {
		return fmt.Errorf("admin.locks_file: %w", err)
	}
	return nil
}
