package postgres

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"sync"
)

// Secret lengths of BackendKeyData: protocol 3.0 has a 4-byte secret;
// 3.2 lets the server choose up to 256 bytes.
const (
	secretLen30      = 4
	secretLen32      = 32
	maxCancelSecret  = 256
	protocolMinor32  = 2
	cancelHeaderSize = 12 // length, request code, process id
)

// cancelKey is the BackendKeyData pair a client uses to cancel a query:
// the backend's process id and a secret.
type cancelKey struct {
	pid    uint32
	secret []byte
}

// parseBackendKeyData reads a BackendKeyData body: a process id and a
// secret of 4 bytes (protocol 3.0) up to 256 (3.2).
func parseBackendKeyData(body []byte) (cancelKey, bool) {
	if len(body) < 4+secretLen30 || len(body) > 4+maxCancelSecret {
		return cancelKey{}, false
	}
	return cancelKey{pid: binary.BigEndian.Uint32(body), secret: append([]byte(nil), body[4:]...)}, true
}

// appendBackendKeyData writes k as a BackendKeyData message.
func appendBackendKeyData(dst []byte, k cancelKey) []byte {
	body := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(k.secret)), k.pid)
	return appendMessage(dst, 'K', append(body, k.secret...))
}

// appendCancelRequest writes the CancelRequest packet for k.
func appendCancelRequest(dst []byte, k cancelKey) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(cancelHeaderSize+len(k.secret)))
	dst = binary.BigEndian.AppendUint32(dst, cancelRequestCode)
	dst = binary.BigEndian.AppendUint32(dst, k.pid)
	return append(dst, k.secret...)
}

// parseCancelRequest reads the body of a CancelRequest packet (after its
// length): request code, process id, secret.
func parseCancelRequest(body []byte) (cancelKey, bool) {
	if len(body) < cancelHeaderSize-4+secretLen30 || len(body) > cancelHeaderSize-4+maxCancelSecret {
		return cancelKey{}, false
	}
	return cancelKey{pid: binary.BigEndian.Uint32(body[4:]), secret: body[8:]}, true
}

// cancelTarget is where a gateway key's cancel request goes: the upstream
// server and the key it gave the gateway.
type cancelTarget struct {
	upstream cancelKey
	send     func(ctx context.Context, key cancelKey) error
}

// cancelRegistry maps the keys the gateway hands to clients to upstream
// keys. A client is told the server's real process id, so that
// pg_terminate_backend, pg_stat_activity and NOTIFY sender pids mean what
// they mean on a direct connection; the secret is the gateway's own. The
// upstream secret never leaves the gateway, so a client can cancel only its
// own sessions' queries, and a process id (visible to every user in
// pg_stat_activity) is useless without its session's secret. Several
// upstream servers may reuse one process id: each registration keeps its
// own secret and target.
type cancelRegistry struct {
	mu      sync.Mutex
	targets map[uint32][]registered
}

type registered struct {
	secret []byte
	target cancelTarget
}

func newCancelRegistry() *cancelRegistry {
	return &cancelRegistry{targets: map[uint32][]registered{}}
}

// register creates a gateway key with the server's process id pid and a
// fresh random secret of secretLen bytes for target.
func (r *cancelRegistry) register(pid uint32, secretLen int, target cancelTarget) cancelKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		secret := make([]byte, secretLen)
		_, _ = rand.Read(secret)
		if r.find(pid, secret) >= 0 {
			continue
		}
		r.targets[pid] = append(r.targets[pid], registered{secret: secret, target: target})
		return cancelKey{pid: pid, secret: secret}
	}
}

// find returns the index of the registration of (pid, secret), or -1. The
// secret is compared in constant time so it cannot be guessed byte by byte.
func (r *cancelRegistry) find(pid uint32, secret []byte) int {
	found := -1
	for i, reg := range r.targets[pid] {
		if subtle.ConstantTimeCompare(reg.secret, secret) == 1 {
			found = i
		}
	}
	return found
}

func (r *cancelRegistry) unregister(k cancelKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	regs := r.targets[k.pid]
	i := r.find(k.pid, k.secret)
	if i < 0 {
		return
	}
	regs = append(regs[:i], regs[i+1:]...)
	if len(regs) == 0 {
		delete(r.targets, k.pid)
	} else {
		r.targets[k.pid] = regs
	}
}

// lookup returns the target of a client's key.
func (r *cancelRegistry) lookup(k cancelKey) (cancelTarget, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.find(k.pid, k.secret)
	if i < 0 {
		return cancelTarget{}, false
	}
	return r.targets[k.pid][i].target, true
}
