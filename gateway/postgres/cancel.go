package postgres

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"sync"
)

// cancelKey is the BackendKeyData pair a client uses to cancel a query.
type cancelKey struct {
	pid    uint32
	secret uint32
}

// cancelTarget is where a gateway key's cancel request goes: the upstream
// server and the key it gave the gateway.
type cancelTarget struct {
	upstream cancelKey
	send     func(ctx context.Context, key cancelKey) error
}

// cancelRegistry maps the keys the gateway hands to clients to upstream
// keys. Clients never see upstream keys, so they can cancel only their own
// sessions' queries, and a guessed key is useless without its secret.
type cancelRegistry struct {
	mu      sync.Mutex
	targets map[uint32]registered
}

type registered struct {
	secret uint32
	target cancelTarget
}

func newCancelRegistry() *cancelRegistry {
	return &cancelRegistry{targets: map[uint32]registered{}}
}

// register creates a fresh gateway key for target.
func (r *cancelRegistry) register(target cancelTarget) cancelKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var b [8]byte
		_, _ = rand.Read(b[:])
		k := cancelKey{pid: binary.BigEndian.Uint32(b[:4]) & 0x7fffffff, secret: binary.BigEndian.Uint32(b[4:])}
		if _, taken := r.targets[k.pid]; taken || k.pid == 0 {
			continue
		}
		r.targets[k.pid] = registered{secret: k.secret, target: target}
		return k
	}
}

func (r *cancelRegistry) unregister(k cancelKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reg, ok := r.targets[k.pid]; ok && reg.secret == k.secret {
		delete(r.targets, k.pid)
	}
}

// lookup returns the target of a client's key; the secret is compared in
// constant time so it cannot be guessed byte by byte.
func (r *cancelRegistry) lookup(k cancelKey) (cancelTarget, bool) {
	r.mu.Lock()
	reg, ok := r.targets[k.pid]
	r.mu.Unlock()
	var want, got [4]byte
	binary.BigEndian.PutUint32(want[:], reg.secret)
	binary.BigEndian.PutUint32(got[:], k.secret)
	if !ok || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return cancelTarget{}, false
	}
	return reg.target, true
}
