// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionsindex // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/sessionsindex"

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
	templates "github.com/pamtrail/pamtrail/dashboards/elasticsearch"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

const (
	// maxDocsPerBulk bounds one bulk request.
	maxDocsPerBulk = 500
	// maxConflictRounds bounds the read-merge-write rounds of one Update;
	// each round loses only to a write that made progress, so running out
	// means heavy contention and the caller's retry is the right answer.
	maxConflictRounds = 20
	// maxCached bounds the versions remembered between updates.
	maxCached = 20_000
	// maxErrorQuote bounds how much of an Elasticsearch error is quoted.
	maxErrorQuote = 512
)

// ClientConfig is how to reach the cluster.
type ClientConfig struct {
	Endpoints []string
	User      string
	Password  string
	APIKey    string
	TLS       *tls.Config
	// Timeout bounds one request.
	Timeout time.Duration
	// Index is the sessions index; EventsIndex is read for transcripts.
	Index       string
	EventsIndex string
}

// version is a document's place in Elasticsearch's history of it: a write
// conditioned on it fails if anyone wrote in between.
type version struct {
	session     *state.Session // nil: the document did not exist
	seqNo, term int64
}

// Elasticsearch is the shared store: the sessions index.
type Elasticsearch struct {
	cfg       ClientConfig
	es        *elasticsearch.Client
	transport *http.Transport
	now       func() time.Time

	mu sync.Mutex
	// known remembers the version this collector last read or wrote, so a
	// session that keeps coming here is written without reading it first.
	// A stale entry costs one 409 and a read.
	known        map[string]version
	troubleSince time.Time // start of the current trouble-free span
	mapped       bool      // the index has the fields the store queries
}

// NewElasticsearch returns a store writing to cfg.Index.
func NewElasticsearch(cfg ClientConfig, now func() time.Time) (*Elasticsearch, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = cfg.TLS
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: cfg.Endpoints,
		Username:  cfg.User,
		Password:  cfg.Password,
		APIKey:    cfg.APIKey,
		Transport: transport,
		// A request that fails on one node is retried on the next one
		// (connection errors, 502-504); every request here is safe to
		// repeat: writes are conditional on the version they read.
		MaxRetries: len(cfg.Endpoints) + 1,
	})
	if err != nil {
		return nil, err
	}
	return &Elasticsearch{cfg: cfg, es: es, transport: transport, now: now, known: map[string]version{}, troubleSince: now()}, nil
}

// Close implements Store.
func (e *Elasticsearch) Close() { e.transport.CloseIdleConnections() }

// TroubleFree implements Store.
func (e *Elasticsearch) TroubleFree(now time.Time) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return now.Sub(e.troubleSince)
}

func (e *Elasticsearch) trouble(err error) error {
	if err != nil {
		e.mu.Lock()
		e.troubleSince = e.now()
		e.mu.Unlock()
	}
	return err
}

// Update implements Store: read what is not known, merge, write each
// document conditioned on the version merged into; sessions whose write lost
// a race are read again and merged again.
func (e *Elasticsearch) Update(ctx context.Context, ids []string, mutate Mutate) error {
	if err := e.trouble(e.ensureMapping(ctx)); err != nil {
		return err
	}
	pending := ids
	for round := 0; len(pending) > 0; round++ {
		if round == maxConflictRounds {
			return fmt.Errorf("sessions index: %d sessions still conflict after %d rounds", len(pending), round)
		}
		if err := e.trouble(e.readUnknown(ctx, pending)); err != nil {
			return err
		}
		var conflicted []string
		for len(pending) > 0 {
			n := min(len(pending), maxDocsPerBulk)
			lost, err := e.writeRound(ctx, pending[:n], mutate)
			if err := e.trouble(err); err != nil {
				return err
			}
			conflicted = append(conflicted, lost...)
			pending = pending[n:]
		}
		pending = conflicted
	}
	return nil
}

// readUnknown fetches the current version of sessions not in known.
func (e *Elasticsearch) readUnknown(ctx context.Context, ids []string) error {
	e.mu.Lock()
	var unknown []string
	for _, id := range ids {
		if _, ok := e.known[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	e.mu.Unlock()
	if len(unknown) == 0 {
		return nil
	}
	versions, err := e.mget(ctx, unknown)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.known)+len(versions) > maxCached {
		clear(e.known)
	}
	for id, v := range versions {
		e.known[id] = v
	}
	return nil
}

type docAction struct {
	id      string
	session *state.Session
	body    []byte
}

// writeRound merges and writes ids once and returns those whose write lost a
// race.
func (e *Elasticsearch) writeRound(ctx context.Context, ids []string, mutate Mutate) ([]string, error) {
	var body bytes.Buffer
	var actions []docAction
	now := e.now()
	e.mu.Lock()
	snapshot := make(map[string]version, len(ids))
	for _, id := range ids {
		snapshot[id] = e.known[id]
	}
	e.mu.Unlock()
	for _, id := range ids {
		v := snapshot[id]
		s := state.New(id)
		if v.session != nil {
			s = v.session.Clone()
		}
		if !mutate(s) {
			continue
		}
		doc, err := json.Marshal(s.Document(now))
		if err != nil {
			return nil, fmt.Errorf("encoding the document of session %q: %w", id, err)
		}
		meta := map[string]any{"_index": e.cfg.Index, "_id": id}
		op := "create"
		if v.session != nil {
			op = "index"
			meta["if_seq_no"], meta["if_primary_term"] = v.seqNo, v.term
		}
		action, _ := json.Marshal(map[string]any{op: meta})
		body.Write(action)
		body.WriteByte('\n')
		body.Write(doc)
		body.WriteByte('\n')
		actions = append(actions, docAction{id: id, session: s})
	}
	if len(actions) == 0 {
		return nil, nil
	}
	items, err := e.bulk(ctx, body.Bytes(), len(actions))
	if err != nil {
		return nil, err
	}
	var conflicted []string
	var firstErr error
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, item := range items {
		a := actions[i]
		switch {
		case item.Status >= 200 && item.Status < 300:
			e.known[a.id] = version{session: a.session, seqNo: item.SeqNo, term: item.PrimaryTerm}
		case item.Status == http.StatusConflict:
			delete(e.known, a.id)
			conflicted = append(conflicted, a.id)
		default:
			delete(e.known, a.id)
			if firstErr == nil {
				firstErr = fmt.Errorf("writing session %q: status %d: %s", a.id, item.Status,
					state.TruncateRunes(string(item.Error), maxErrorQuote))
			}
		}
	}
	return conflicted, firstErr
}

type bulkItem struct {
	Status      int             `json:"status"`
	SeqNo       int64           `json:"_seq_no"`
	PrimaryTerm int64           `json:"_primary_term"`
	Error       json.RawMessage `json:"error"`
}

func (e *Elasticsearch) bulk(ctx context.Context, body []byte, n int) ([]bulkItem, error) {
	raw, err := e.do(ctx, func(ctx context.Context) (*http.Response, error) {
		res, err := e.es.Bulk(bytes.NewReader(body), e.es.Bulk.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		return &http.Response{StatusCode: res.StatusCode, Body: res.Body}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("bulk request to %s: %w", e.cfg.Index, err)
	}
	var parsed struct {
		Items []map[string]bulkItem `json:"items"`
	}
	if err := json.Unmarshal(raw, &parsed); err != nil {
		return nil, fmt.Errorf("decoding the bulk response: %w", err)
	}
	if len(parsed.Items) != n {
		return nil, fmt.Errorf("bulk response has %d items for %d documents", len(parsed.Items), n)
	}
	items := make([]bulkItem, n)
	for i, item := range parsed.Items {
		for _, result := range item { // one key: create or index
			items[i] = result
		}
	}
	return items, nil
}

// mget reads the current version of ids; a missing document is a version
// with no session.
func (e *Elasticsearch) mget(ctx context.Context, ids []string) (map[string]version, error) {
	body, _ := json.Marshal(map[string]any{"ids": ids})
	raw, err := e.do(ctx, func(ctx context.Context) (*http.Response, error) {
		res, err := e.es.Mget(bytes.NewReader(body), e.es.Mget.WithIndex(e.cfg.Index), e.es.Mget.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		return &http.Response{StatusCode: res.StatusCode, Body: res.Body}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading sessions from %s: %w", e.cfg.Index, err)
	}
	var parsed struct {
		Docs []struct {
			ID          string          `json:"_id"`
			Found       bool            `json:"found"`
			SeqNo       int64           `json:"_seq_no"`
			PrimaryTerm int64           `json:"_primary_term"`
			Source      json.RawMessage `json:"_source"`
			Error       json.RawMessage `json:"error"`
		} `json:"docs"`
	}
	if err := json.Unmarshal(raw, &parsed); err != nil {
		return nil, fmt.Errorf("decoding the mget response: %w", err)
	}
	versions := make(map[string]version, len(parsed.Docs))
	for _, d := range parsed.Docs {
		if len(d.Error) > 0 && bytes.Contains(d.Error, []byte("index_not_found_exception")) {
			versions[d.ID] = version{} // the first write creates the index from the template
			continue
		}
		if len(d.Error) > 0 {
			return nil, fmt.Errorf("reading session %q: %s", d.ID, state.TruncateRunes(string(d.Error), maxErrorQuote))
		}
		if !d.Found {
			versions[d.ID] = version{}
			continue
		}
		s, err := state.FromDocument(d.ID, d.Source)
		if err != nil {
			return nil, err
		}
		versions[d.ID] = version{session: s, seqNo: d.SeqNo, term: d.PrimaryTerm}
	}
	return versions, nil
}

// Get implements Store.
func (e *Elasticsearch) Get(ctx context.Context, id string) (*state.Session, error) {
	versions, err := e.mget(ctx, []string{id})
	if err != nil {
		return nil, e.trouble(err)
	}
	return versions[id].session, nil
}

// do runs one request with the configured timeout and returns the body of
// a 2xx answer.
func (e *Elasticsearch) do(ctx context.Context, req func(context.Context) (*http.Response, error)) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	res, err := req(ctx)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, fmt.Errorf("HTTP %d: %s", res.StatusCode, state.TruncateRunes(string(raw), maxErrorQuote))
	}
	return raw, nil
}

// ensureMapping adds the fields of our sessions template to an index that
// exists already, so that an index created by an older template (without
// last_received, summary_pending, state) serves the finders after an
// upgrade. A missing index is created from the template by the first write.
func (e *Elasticsearch) ensureMapping(ctx context.Context) error {
	e.mu.Lock()
	done := e.mapped
	e.mu.Unlock()
	if done {
		return nil
	}
	mapping, err := templateMapping()
	if err != nil {
		return err
	}
	_, err = e.do(ctx, func(ctx context.Context) (*http.Response, error) {
		res, err := e.es.Indices.PutMapping([]string{e.cfg.Index}, bytes.NewReader(mapping),
			e.es.Indices.PutMapping.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if res.StatusCode == http.StatusNotFound {
			res.Body.Close()
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
		}
		return &http.Response{StatusCode: res.StatusCode, Body: res.Body}, nil
	})
	if err != nil {
		return fmt.Errorf("updating the mapping of %s: %w", e.cfg.Index, err)
	}
	e.mu.Lock()
	e.mapped = true
	e.mu.Unlock()
	return nil
}

// templateMapping is the mappings of dashboards/elasticsearch's sessions
// template, the one definition of the document's fields.
func templateMapping() ([]byte, error) {
	all, err := templates.Templates()
	if err != nil {
		return nil, err
	}
	for _, t := range all {
		if t.Name != schema.SessionsIndex {
			continue
		}
		var parsed struct {
			Template struct {
				Mappings json.RawMessage `json:"mappings"`
			} `json:"template"`
		}
		if err := json.Unmarshal(t.Body, &parsed); err != nil {
			return nil, fmt.Errorf("%s: %w", t.File, err)
		}
		return parsed.Template.Mappings, nil
	}
	return nil, fmt.Errorf("no %s template among the embedded templates", schema.SessionsIndex)
}
