package postgres

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pamtrail/pamtrail/gateway/policy"
)

// Blocking a statement (an enforce policy's SQL rules).
//
// A blocked statement never reaches the server. In its place the gateway
// sends a statement that fails during parse analysis, before anything runs:
//
//	SELECT 'pamtrail:blocked:<id>'::pg_catalog.int4
//
// so the server itself produces the error at the blocked statement's
// position, with everything PostgreSQL does after an error: the implicit
// transaction of a simple Query or a pipeline rolls back, an explicit
// transaction becomes failed ('E'), the statements after it in the same
// Query string do not run, an extended-protocol batch skips to Sync, and a
// failed transaction answers 25P02 as it would to the original. A Parse of
// a blocked statement fails at Parse, as one the server refused would: the
// named statement does not exist afterwards. The gateway then rewrites that
// one ErrorResponse, recognised by its unique id, into SQLSTATE 42501 naming
// the rule. Synthesizing the responses in the gateway instead would have to
// re-implement the server's transaction and pipeline rules, and the server
// would still commit the implicit transaction a blocked statement aborted.
//
// A simple Query holding several statements is split as the server splits
// it (splitStatements); only the blocked ones are replaced.

// sqlFilter rewrites client messages whose statements an enforce policy
// blocks, and the server's errors for them.
type sqlFilter struct {
	policy *policy.Set
	client rewriter
	server rewriter

	mu      sync.Mutex
	blocked map[string]*policy.Match // by substitute id, until its error is seen
	order   []string
	waiting atomic.Int32 // len(blocked), read by the server side without the lock
}

// maxBlockedWaiting bounds substitutes whose error never came back (the
// server skipped them after an earlier error).
const maxBlockedWaiting = 1024

const blockedMarker = "pamtrail:blocked:"

func newSQLFilter(set *policy.Set, maxMessage int) *sqlFilter {
	f := &sqlFilter{policy: set, blocked: map[string]*policy.Match{}}
	f.client = rewriter{maxLen: maxMessage, hold: func(typ byte) bool { return typ == 'Q' || typ == 'P' }, replace: f.clientMessage}
	f.server = rewriter{maxLen: maxMessage, hold: func(typ byte) bool { return typ == 'E' && f.waiting.Load() > 0 }, replace: f.serverMessage}
	return f
}

// clientMessage returns msg, or msg with its blocked statements replaced.
func (f *sqlFilter) clientMessage(msg []byte) []byte {
	body := msg[5:]
	switch msg[0] {
	case 'Q':
		stmts := splitStatements(string(trimNul(body)))
		changed := false
		for i, st := range stmts {
			if m := f.policy.SQL(st); m.Blocks() {
				stmts[i], changed = f.substitute(m), true
			}
		}
		if !changed {
			return msg
		}
		q := append([]byte(strings.Join(stmts, ";\n")), 0)
		return appendMessage(nil, 'Q', q)
	case 'P':
		name, rest, ok := bytes.Cut(body, []byte{0})
		if !ok {
			return msg
		}
		text, params, ok := bytes.Cut(rest, []byte{0})
		if !ok {
			return msg
		}
		m := f.policy.SQL(string(text))
		if !m.Blocks() {
			return msg
		}
		out := append(append([]byte(nil), name...), 0)
		out = append(append(out, f.substitute(m)...), 0)
		return appendMessage(nil, 'P', append(out, params...))
	}
	return msg
}

// substitute remembers a blocked statement and returns the statement sent
// in its place.
func (f *sqlFilter) substitute(m *policy.Match) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	f.mu.Lock()
	if len(f.order) >= maxBlockedWaiting {
		delete(f.blocked, f.order[0])
		f.order = f.order[1:]
	}
	f.blocked[id] = m
	f.order = append(f.order, id)
	f.waiting.Store(int32(len(f.blocked)))
	f.mu.Unlock()
	return "SELECT '" + blockedMarker + id + "'::pg_catalog.int4"
}

// serverMessage rewrites the error a substitute caused.
func (f *sqlFilter) serverMessage(msg []byte) []byte {
	e := parseErrorFields(&decoder{}, msg[5:]) // the marker is ASCII in every client encoding
	i := strings.Index(e.message, blockedMarker)
	if i < 0 {
		return msg
	}
	id := e.message[i+len(blockedMarker):]
	if len(id) < 16 {
		return msg
	}
	id = id[:16]
	f.mu.Lock()
	m, ok := f.blocked[id]
	if ok {
		delete(f.blocked, id)
		for j, o := range f.order {
			if o == id {
				f.order = append(f.order[:j], f.order[j+1:]...)
				break
			}
		}
		f.waiting.Store(int32(len(f.blocked)))
	}
	f.mu.Unlock()
	if !ok {
		return msg
	}
	return appendError(nil, "ERROR", &wireError{code: codeInsufficientPrivilege,
		message: fmt.Sprintf("pamtrail: statement blocked by policy %q, rule %q", m.Policy, m.Rule),
		detail:  "The account's policy forbids this statement; it was not sent to the server."})
}

// rewriter splits a stream into messages and lets replace swap whole
// messages of the types hold selects, which it holds back until complete.
// Other bytes pass in the chunks they came in, without a copy.
type rewriter struct {
	maxLen  int
	hold    func(typ byte) bool
	replace func(msg []byte) []byte

	hdr     [5]byte
	hdrN    int
	remain  int
	holding bool
	held    []byte
	out     []byte
}

// apply returns what to forward for chunk p: p itself when nothing in it is
// held or replaced. The result is valid until the next call.
func (r *rewriter) apply(p []byte) ([]byte, error) {
	r.out = r.out[:0]
	modified := r.holding
	seg := 0 // start of the pass-through bytes of p not yet in out
	for i := 0; i < len(p); {
		if r.hdrN < 5 {
			if r.hdrN == 0 {
				r.holding = r.hold(p[i])
				if r.holding {
					r.out = append(r.out, p[seg:i]...)
					modified = true
				}
			}
			n := min(5-r.hdrN, len(p)-i)
			copy(r.hdr[r.hdrN:], p[i:i+n])
			r.hdrN += n
			if r.holding {
				r.held = append(r.held, p[i:i+n]...)
			}
			i += n
			if r.hdrN < 5 {
				break
			}
			length := int(binary.BigEndian.Uint32(r.hdr[1:]))
			if length < 4 || length > r.maxLen {
				return nil, protocolErrorf("invalid message length %d for message type %q", length, r.hdr[0])
			}
			r.remain = length - 4
		}
		n := min(r.remain, len(p)-i)
		if r.holding {
			r.held = append(r.held, p[i:i+n]...)
		}
		i += n
		r.remain -= n
		if r.remain == 0 {
			r.hdrN = 0
			if r.holding {
				r.out = append(r.out, r.replace(r.held)...)
				r.held = r.held[:0]
				if cap(r.held) > captureRetain {
					r.held = nil
				}
				r.holding = false
				seg = i
			}
		}
	}
	if !modified {
		return p, nil
	}
	if !r.holding {
		r.out = append(r.out, p[seg:]...)
	}
	return r.out, nil
}
