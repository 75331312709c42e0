package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
	"github.com/pamtrail/pamtrail/gateway/verify"
)

// Exit statuses of `sessions verify`.
const (
	verifyIntact    = 0
	verifyTampered  = 1
	verifyUsage     = 2
	verifyCannotRun = 3 // Elasticsearch unreachable, no such session, no keys...
)

// verifyTimeout bounds one verification run (--since may cover many
// sessions).
const verifyTimeout = 10 * time.Minute

// keyFiles is the repeatable --keys flag.
type keyFiles []string

func (k *keyFiles) String() string     { return strings.Join(*k, ",") }
func (k *keyFiles) Set(v string) error { *k = append(*k, v); return nil }

func registerKeysFlag(fs *flag.FlagSet) *keyFiles {
	var k keyFiles
	fs.Var(&k, "keys", "trusted public keys file (pamtrail keygen --signing writes FILE.pub); repeatable. Default: the keys published in the "+schema.KeysIndex+" index")
	return &k
}

// trustedKeys loads the public keys a checkpoint may be signed with: the
// given files only, or else the published index.
func trustedKeys(ctx context.Context, store verify.Store, files keyFiles) (map[string]keys.PublicKey, string, error) {
	var list []keys.PublicKey
	source := "index " + schema.KeysIndex
	if len(files) > 0 {
		source = strings.Join(files, ", ")
		for _, f := range files {
			pubs, err := keys.LoadPublic(f)
			if err != nil {
				return nil, "", err
			}
			list = append(list, pubs...)
		}
	} else {
		var err error
		if list, err = store.Keys(ctx); err != nil {
			return nil, "", err
		}
	}
	trusted := map[string]keys.PublicKey{}
	for _, k := range list {
		if old, dup := trusted[k.ID]; dup && !old.Key.Equal(k.Key) {
			return nil, "", fmt.Errorf("two different public keys claim id %s", k.ID)
		}
		trusted[k.ID] = k
	}
	return trusted, source, nil
}

// verifySession reads one session back and verifies it.
func verifySession(ctx context.Context, store verify.Store, id string, trusted map[string]keys.PublicKey) (verify.Report, error) {
	docs, err := store.Events(ctx, id)
	if err != nil {
		return verify.Report{}, err
	}
	if len(docs) == 0 {
		return verify.Report{}, fmt.Errorf("%w %s: no events", review.ErrNoSession, id)
	}
	state, err := store.State(ctx, id)
	if err != nil {
		return verify.Report{}, err
	}
	return verify.Session(id, docs, trusted, state)
}

// runSessionsVerify checks sessions against their hash chains and signed
// checkpoints. Exit 0 means every session verified intact.
func runSessionsVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newSessionsCommand("verify", stdout, stderr)
	files := registerKeysFlag(c.fs)
	var since string
	c.fs.StringVar(&since, "since", "", "verify every session started in this window (24h, 7d) or since this RFC 3339 time, instead of one")
	requireSealed := c.fs.Bool("require-sealed", false, "also exit 1 when a session's end is not covered by a signature")
	gatewayID := c.fs.String("gateway", "", "with --since: only sessions recorded by this gateway id")
	pos, err := parseInterspersed(c.fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return verifyUsage
	case since == "" && len(pos) != 1:
		return c.usageError("want one session id, or --since")
	case since != "" && len(pos) != 0:
		return c.usageError("give a session id or --since, not both")
	case *gatewayID != "" && since == "":
		return c.usageError("--gateway goes with --since")
	}
	from, err := parseSince(since, time.Now())
	if err != nil {
		return c.usageError("%v", err)
	}
	es, err := c.es.elasticsearch()
	if err != nil {
		return c.usageError("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	reports, source, err := runVerify(ctx, es, pos, from, *gatewayID, *files)
	if err != nil {
		c.fail(err)
		return verifyCannotRun
	}
	code := verifyIntact
	for _, r := range reports {
		if !r.Intact() || (*requireSealed && !r.EndSigned) {
			code = verifyTampered
		}
	}
	if c.jsonOut {
		if c.writeJSON(map[string]any{"trusted_keys": source, "sessions": reports}) != 0 {
			return verifyCannotRun
		}
		return code
	}
	fmt.Fprintf(stdout, "trusted keys: %s\n", review.Sanitize(source, false))
	for _, r := range reports {
		writeReport(stdout, r)
	}
	return code
}

func runVerify(ctx context.Context, es *elasticsearch.Client, ids []string, since time.Time, gatewayID string, files keyFiles) ([]verify.Report, string, error) {
	store := verify.Store{ES: es}
	store.Refresh(ctx)
	trusted, source, err := trustedKeys(ctx, store, files)
	if err != nil {
		return nil, "", err
	}
	if len(ids) == 0 {
		if ids, err = store.SessionsSince(ctx, since, gatewayID); err != nil {
			return nil, "", err
		}
	}
	reports := make([]verify.Report, 0, len(ids))
	for _, id := range ids {
		r, err := verifySession(ctx, store, id, trusted)
		if err != nil {
			return nil, "", err
		}
		reports = append(reports, r)
	}
	return reports, source, nil
}

// writeReport prints one verdict. Details come from documents anyone with
// index access could have written, so they are sanitized for the terminal.
func writeReport(w io.Writer, r verify.Report) {
	fmt.Fprintf(w, "session %s: %s\n", review.Sanitize(r.SessionID, false), strings.ToUpper(r.Status))
	if r.Status == verify.StatusUnchained {
		fmt.Fprintf(w, "  %d events recorded without a hash chain (by a gateway older than tamper evidence): nothing to verify\n", r.Events)
		return
	}
	fmt.Fprintf(w, "  %d events, seq 0..%d; %s\n", r.Events, r.LastSeq, integritySummary(r))
	for _, f := range r.Findings {
		fmt.Fprintf(w, "  %-14s first at seq %d (%d in all): %s\n", f.Kind, f.FirstSeq, f.Count, review.Sanitize(f.Detail, false))
	}
}

// integritySummary is the one-line coverage statement `sessions show` and
// `sessions verify` print.
func integritySummary(r verify.Report) string {
	var b strings.Builder
	switch {
	case r.SignedTo < 0:
		b.WriteString("no valid checkpoint: nothing is signed")
	default:
		fmt.Fprintf(&b, "signed through seq %d (%d checkpoints, key %s)", r.SignedTo, r.Checkpoints, review.Sanitize(strings.Join(r.KeyIDs, ", "), false))
	}
	if r.EndSigned {
		b.WriteString("; end signed")
	} else {
		b.WriteString("; end NOT signed")
	}
	if t := r.UnsignedTail; t != nil {
		fmt.Fprintf(&b, "; unsigned tail seq %d..%d (after the last checkpoint: a session still running, or a gateway stopped before its next upload cycle)", t.From, t.To)
	}
	return b.String()
}

// showIntegrity is the verification line of `sessions show`; a session
// that cannot be verified says why instead of failing the whole view, and
// one recorded without a chain (an older gateway) shows nothing.
func showIntegrity(ctx context.Context, es *elasticsearch.Client, id string, files keyFiles) (*verify.Report, string) {
	store := verify.Store{ES: es}
	trusted, _, err := trustedKeys(ctx, store, files)
	if err != nil {
		return nil, "Integrity: not verified: " + err.Error()
	}
	r, err := verifySession(ctx, store, id, trusted)
	if err != nil {
		return nil, "Integrity: not verified: " + err.Error()
	}
	if r.Status == verify.StatusUnchained {
		return nil, ""
	}
	line := "Integrity: " + strings.ToUpper(r.Status) + " — " + integritySummary(r)
	for _, f := range r.Findings {
		line += fmt.Sprintf("\n  %s first at seq %d: %s", f.Kind, f.FirstSeq, review.Sanitize(f.Detail, false))
	}
	return &r, line
}
