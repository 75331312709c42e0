// Package verify checks a recorded session against its hash chain and its
// signed checkpoints (gateway/chain), reading the events back as they are
// stored in Elasticsearch. It names what it finds: modified, missing,
// reordered, inserted or truncated events and bad signatures, each with the
// first sequence number concerned, and says how far the session is covered
// by signatures. An unsigned tail (a gateway killed before its next
// checkpoint) is reported as such, never as tampering.
package verify

import (
	"encoding/base64"
	"fmt"
	"sort"

	"github.com/pamtrail/pamtrail/gateway/chain"
	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Finding kinds.
const (
	Modified     = "modified"
	Missing      = "missing"
	Reordered    = "reordered"
	Inserted     = "inserted"
	Truncated    = "truncated" // events after the last checkpoint present were removed
	BadSignature = "bad-signature"
)

// Kinds lists the finding kinds in report order.
var Kinds = []string{Modified, Missing, Reordered, Inserted, Truncated, BadSignature}

// Finding is every problem of one kind, with the first seq concerned.
type Finding struct {
	Kind     string `json:"kind"`
	FirstSeq int64  `json:"first_seq"`
	Count    int    `json:"count"`
	Detail   string `json:"detail"`
}

// Range is an inclusive seq range.
type Range struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// Report is the verdict on one session.
type Report struct {
	SessionID string `json:"session_id"`
	// Status is "intact" when there is no finding, "tampered" when there
	// is, and "unchained" for a session recorded without a hash chain (by
	// a gateway older than tamper evidence): nothing can be verified.
	Status string `json:"status"`
	// ChainVersion is the chain format the session was recorded in
	// (chain.Version; 0 when unchained).
	ChainVersion int `json:"chain_version,omitempty"`
	Events       int `json:"events"`
	// LastSeq is the highest sequence number present (-1: none).
	LastSeq int64 `json:"last_seq"`
	// SignedTo is the last seq covered by a valid checkpoint (-1: none).
	SignedTo int64 `json:"signed_to"`
	// EndSigned says whether the session's end record is covered by a
	// valid signature.
	EndSigned bool `json:"end_signed"`
	// Sealed says a valid final checkpoint closes the session.
	Sealed bool `json:"sealed"`
	// UnsignedTail is what follows the last valid checkpoint: chained, but
	// not yet vouched for (a session still running, or a gateway that died).
	UnsignedTail *Range    `json:"unsigned_tail,omitempty"`
	Checkpoints  int       `json:"checkpoints"`
	KeyIDs       []string  `json:"key_ids,omitempty"`
	Findings     []Finding `json:"findings,omitempty"`
}

// Intact reports whether the session verified: chained, nothing found.
func (r Report) Intact() bool { return r.Status == StatusIntact }

// Statuses of a Report.
const (
	StatusIntact    = "intact"
	StatusTampered  = "tampered"
	StatusUnchained = "unchained"
)

// SessionState is what the sessions index says about the session: the
// last checkpoint the collector saw, kept apart from the events, so that
// deleting a session's last events does not go unnoticed.
type SessionState struct {
	Status     string             // active, ended, failed, lost; "" if unknown
	Checkpoint *schema.Checkpoint // nil if none was recorded
}

// checkCheckpoint verifies a stored checkpoint's signature against the
// trusted keys; it returns the parsed statement or why it does not hold.
func checkCheckpoint(c schema.Checkpoint, sessionID string, trusted map[string]keys.PublicKey) (chain.Checkpoint, error) {
	head, err := chain.ParseHash(c.Head)
	if err != nil {
		return chain.Checkpoint{}, fmt.Errorf("head: %v", err)
	}
	cp := chain.Checkpoint{SessionID: sessionID, GatewayID: c.GatewayID, KeyID: c.KeyID, From: c.From, To: c.To, Head: head, Final: c.Final}
	key, ok := trusted[c.KeyID]
	if !ok {
		return cp, fmt.Errorf("signed by key %q, which is not among the trusted keys", c.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !key.Verify(cp.Message(), sig) {
		return cp, fmt.Errorf("the signature by key %s does not verify", c.KeyID)
	}
	return cp, nil
}

// findings accumulates findings per kind.
type findings map[string]*Finding

func (f findings) add(kind string, seq int64, detail string) {
	if x, ok := f[kind]; ok {
		x.Count++
		if seq < x.FirstSeq {
			x.FirstSeq, x.Detail = seq, detail
		}
		return
	}
	f[kind] = &Finding{Kind: kind, FirstSeq: seq, Count: 1, Detail: detail}
}

// maxPoolSearch bounds the search for moved records: beyond it, broken links
// are reported as modified without trying to place them elsewhere.
const maxPoolSearch = 1024

// Session verifies one session's event documents. trusted maps key ids to
// the public keys a checkpoint may be signed with; state may be zero.
func Session(sessionID string, docs []Doc, trusted map[string]keys.PublicKey, state SessionState) (Report, error) {
	rep := Report{SessionID: sessionID, LastSeq: -1, SignedTo: -1, Events: len(docs)}
	found := findings{}
	var evs []*event
	bySeq := map[int64][]*event{}
	chained := false
	for _, d := range docs {
		e, err := parseDoc(d)
		if err != nil {
			return rep, err
		}
		chained = chained || e.hasLink
		if e.name == schema.EventHeartbeat && !e.hasLink {
			continue // liveness, not an event: it repeats the latest seq and is not chained
		}
		if e.seq < 0 {
			found.add(Inserted, -1, fmt.Sprintf("document %s has no valid pam.seq", d.ID))
			continue
		}
		evs = append(evs, e)
		bySeq[e.seq] = append(bySeq[e.seq], e)
		rep.LastSeq = max(rep.LastSeq, e.seq)
	}
	for seq, list := range bySeq { // the document with the recorder's id first
		want := fmt.Sprintf("%s:%d", sessionID, seq)
		sort.SliceStable(list, func(i, j int) bool { return list[i].docID == want && list[j].docID != want })
	}
	var canon chain.Canon
	version := chainVersion(sessionID, bySeq, rep.LastSeq)
	genesis := chain.Genesis(version, sessionID)
	linksAt := func(e *event, prev chain.Hash, seq int64) bool {
		if !e.hasLink {
			return false
		}
		h, err := e.linkAt(&canon, version, prev, seq)
		return err == nil && h == e.link
	}

	// Records whose link fails where they are stored are the candidates
	// for a record moved to another seq.
	var pool []*event
	for _, e := range evs {
		prev, known := genesis, true
		if e.seq > 0 {
			before := bySeq[e.seq-1]
			known = len(before) > 0 && before[0].hasLink
			if known {
				prev = before[0].link
			}
		}
		if (known && !linksAt(e, prev, e.seq)) || len(bySeq[e.seq]) > 1 {
			pool = append(pool, e)
		}
	}
	if len(pool) > maxPoolSearch {
		pool = nil
	}

	resolved := make([]*event, rep.LastSeq+1)
	prev, prevKnown := genesis, true
	for seq := int64(0); seq <= rep.LastSeq; seq++ {
		var genuine *event
		if prevKnown {
			genuine = pickLinking(bySeq[seq], bySeq[seq+1], prev, seq, linksAt)
			if genuine == nil {
				for _, e := range pool {
					if !e.consumed && e.seq != seq && linksAt(e, prev, seq) {
						genuine = e
						found.add(Reordered, min(seq, e.seq), fmt.Sprintf("the event stored as seq %d belongs at seq %d", e.seq, seq))
						break
					}
				}
			}
		}
		if genuine == nil {
			for _, e := range bySeq[seq] {
				if !e.consumed {
					genuine = e
					break
				}
			}
			if genuine == nil {
				found.add(Missing, seq, fmt.Sprintf("seq %d is absent", seq))
				prevKnown = false
				continue
			}
			if prevKnown {
				found.add(Modified, seq, fmt.Sprintf("seq %d (%s) does not match its chain link", seq, genuine.name))
			}
		}
		genuine.consumed = true
		resolved[seq] = genuine
		prev, prevKnown = genuine.link, genuine.hasLink
	}
	for _, e := range evs {
		if !e.consumed {
			found.add(Inserted, e.seq, fmt.Sprintf("document %s claims seq %d, which another event holds", e.docID, e.seq))
		}
	}

	checkCheckpoints(&rep, sessionID, resolved, trusted, state, found)
	for _, k := range Kinds {
		if f, ok := found[k]; ok {
			rep.Findings = append(rep.Findings, *f)
		}
	}
	switch {
	case !chained && rep.Checkpoints == 0:
		rep.Status, rep.Findings, rep.UnsignedTail = StatusUnchained, nil, nil
	case len(rep.Findings) == 0:
		rep.Status, rep.ChainVersion = StatusIntact, int(version)
	default:
		rep.Status, rep.ChainVersion = StatusTampered, int(version)
	}
	return rep, nil
}

// chainVersion tells which chain version the session was recorded in: the
// first version under which one of its events links, trying seq 0 against
// each version's genesis first (the genesis names the version), then each
// later event against its stored predecessor. With none (nothing links at
// all) it is the current one. Letting the links choose gives a forger
// nothing: every version covers every attribute of every event, so an event
// links under either only as recorded or as relinked, and relinking is what
// the checkpoints' signatures catch.
func chainVersion(sessionID string, bySeq map[int64][]*event, lastSeq int64) chain.Version {
	var c chain.Canon
	for seq := int64(0); seq <= lastSeq; seq++ {
		for _, e := range bySeq[seq] {
			if !e.hasLink {
				continue
			}
			for _, v := range chain.Versions {
				prevs := []chain.Hash{chain.Genesis(v, sessionID)}
				if seq > 0 {
					prevs = prevs[:0]
					for _, p := range bySeq[seq-1] {
						if p.hasLink {
							prevs = append(prevs, p.link)
						}
					}
				}
				for _, prev := range prevs {
					if h, err := e.linkAt(&c, v, prev, seq); err == nil && h == e.link {
						return v
					}
				}
			}
		}
	}
	return chain.Current
}

// pickLinking returns the unconsumed candidate that links after prev; when
// several do (a forgery computed from the same link), the one the next
// record links to.
func pickLinking(cands, next []*event, prev chain.Hash, seq int64, linksAt func(*event, chain.Hash, int64) bool) *event {
	var linking []*event
	for _, e := range cands {
		if !e.consumed && linksAt(e, prev, seq) {
			linking = append(linking, e)
		}
	}
	if len(linking) <= 1 {
		if len(linking) == 1 {
			return linking[0]
		}
		return nil
	}
	for _, e := range linking {
		for _, n := range next {
			if linksAt(n, e.link, seq+1) {
				return e
			}
		}
	}
	return linking[0]
}

// checkCheckpoints verifies each checkpoint event and the session
// document's copy, and fills in what the signatures cover.
func checkCheckpoints(rep *Report, sessionID string, resolved []*event, trusted map[string]keys.PublicKey, state SessionState, found findings) {
	keyIDs := map[string]bool{}
	finalAt := int64(-1)
	endSeq := int64(-1)
	for seq, e := range resolved {
		if e == nil {
			continue
		}
		if e.name == schema.EventSessionEnd {
			endSeq = int64(seq)
		}
		if e.name != schema.EventCheckpoint {
			continue
		}
		rep.Checkpoints++
		stored := checkpointOf(e)
		cp, err := checkCheckpoint(stored, sessionID, trusted)
		if err != nil {
			found.add(BadSignature, int64(seq), fmt.Sprintf("checkpoint at seq %d: %v", seq, err))
			continue
		}
		if cp.To >= int64(seq) || cp.To < 0 {
			found.add(BadSignature, int64(seq), fmt.Sprintf("checkpoint at seq %d covers seq %d, which is not before it", seq, cp.To))
			continue
		}
		if resolved[cp.To] == nil {
			continue // the signed event is missing, and reported so
		}
		if resolved[cp.To].link != cp.Head {
			found.add(Modified, cp.From, fmt.Sprintf("the chain up to seq %d differs from what checkpoint %d signed (events in %d..%d were rewritten)", cp.To, seq, cp.From, cp.To))
			continue
		}
		keyIDs[cp.KeyID] = true
		rep.SignedTo = max(rep.SignedTo, cp.To)
		if cp.Final {
			finalAt = int64(seq)
		}
	}
	if finalAt >= 0 {
		rep.Sealed = true
		rep.SignedTo = max(rep.SignedTo, finalAt) // nothing may follow; the checkpoint itself is chained
		for seq := finalAt + 1; seq < int64(len(resolved)); seq++ {
			if resolved[seq] != nil {
				found.add(Inserted, seq, fmt.Sprintf("seq %d follows the session's final checkpoint (seq %d)", seq, finalAt))
				break
			}
		}
	}
	// The sessions index keeps the last checkpoint apart from the events:
	// if it is validly signed and reaches further than the events do, the
	// end of the session was removed.
	if sc := state.Checkpoint; sc != nil {
		if cp, err := checkCheckpoint(*sc, sessionID, trusted); err == nil {
			keyIDs[cp.KeyID] = true
			if cp.To+1 > rep.LastSeq {
				found.add(Truncated, rep.LastSeq+1, fmt.Sprintf("the session document holds a checkpoint signed at seq %d; the events stop at seq %d", cp.To+1, rep.LastSeq))
			}
		}
	}
	if endSeq < 0 && (state.Status == schema.StatusEnded) && found[Truncated] == nil {
		found.add(Truncated, rep.LastSeq+1, fmt.Sprintf("the session ended but its events stop at seq %d without an end record", rep.LastSeq))
	}
	rep.EndSigned = endSeq >= 0 && endSeq <= rep.SignedTo
	if !rep.Sealed && rep.LastSeq > rep.SignedTo {
		rep.UnsignedTail = &Range{From: rep.SignedTo + 1, To: rep.LastSeq}
	}
	for id := range keyIDs {
		rep.KeyIDs = append(rep.KeyIDs, id)
	}
	sort.Strings(rep.KeyIDs)
}

func checkpointOf(e *event) schema.Checkpoint {
	c := schema.Checkpoint{Final: e.bool(schema.AttrCheckpointFinal)}
	c.GatewayID, _ = e.str(schema.AttrGatewayID)
	c.KeyID, _ = e.str(schema.AttrCheckpointKeyID)
	c.Head, _ = e.str(schema.AttrCheckpointHead)
	c.Signature, _ = e.str(schema.AttrCheckpointSignature)
	var ok bool
	if c.From, ok = e.int(schema.AttrCheckpointFrom); !ok {
		c.From = -1
	}
	if c.To, ok = e.int(schema.AttrCheckpointTo); !ok {
		c.To = -1
	}
	return c
}
