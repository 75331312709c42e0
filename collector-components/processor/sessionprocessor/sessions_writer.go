// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"go.uber.org/zap"
)

// Why a writer inside the processor rather than an exporter: the session
// state lives here, and the elasticsearch exporter can only `create` with a
// fixed id (no update). An exporter of our own would need the processor to
// emit synthetic "session document" records into a second pipeline through a
// connector; that adds config surface and a second queue that could reorder
// states, for no gain over writing the current state directly. The writer
// upserts whole documents with the bulk `index` action and `_id` = session id,
// so every write replaces the document with the session's current state.

const (
	// maxDocsPerBulk bounds one bulk request.
	maxDocsPerBulk = 500
	// initialRetryInterval is the first backoff after a failed write.
	initialRetryInterval = time.Second
	// maxErrorQuote bounds how much of an Elasticsearch error is logged.
	maxErrorQuote = 512
)

// sessionsWriter keeps the sessions index current. It runs on its own
// goroutine: it is woken after each flush (so an active session is written at
// most once per flush), after lost detection and after a summary; a failed
// write is retried with exponential backoff until it succeeds, always with
// the newest state.
type sessionsWriter struct {
	cfg       SessionsIndexConfig
	es        *elasticsearch.Client
	transport *http.Transport
	tracker   *tracker
	now       func() time.Time
	logger    *zap.Logger
	failures  func(ctx context.Context)

	wake chan struct{} // capacity 1
}

func newSessionsWriter(cfg SessionsIndexConfig, t *tracker, now func() time.Time, logger *zap.Logger, failures func(context.Context)) (*sessionsWriter, error) {
	tlsCfg, err := cfg.TLS.LoadTLSConfig(context.Background())
	if err != nil {
		return nil, fmt.Errorf("sessions_index::tls: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{cfg.Endpoint},
		Username:  cfg.User,
		Password:  string(cfg.Password),
		Transport: transport,
		// Retries are ours, with backoff and the newest state each time.
		DisableRetry: true,
	})
	if err != nil {
		return nil, fmt.Errorf("sessions_index: %w", err)
	}
	return &sessionsWriter{
		cfg: cfg, es: es, transport: transport, tracker: t, now: now,
		logger: logger, failures: failures, wake: make(chan struct{}, 1),
	}, nil
}

// notify asks for a write; it never blocks.
func (w *sessionsWriter) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run writes on every notification until ctx ends, backing off after
// failures.
func (w *sessionsWriter) run(ctx context.Context) {
	defer w.transport.CloseIdleConnections()
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		err := w.writePending(ctx)
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		w.failures(ctx)
		backoff = min(max(2*backoff, initialRetryInterval), w.cfg.MaxRetryInterval)
		w.logger.Warn("writing session documents failed; retrying",
			zap.String("index", w.cfg.Index), zap.Duration("retry_in", backoff), zap.Error(err))
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		w.notify()
	}
}

// pendingDoc is one document to write and the state revision it shows.
type pendingDoc struct {
	id       string
	revision int64
	body     []byte
}

// takeUnwritten renders the documents of every session changed since it was
// last written.
func (w *sessionsWriter) takeUnwritten() ([]pendingDoc, error) {
	t := w.tracker
	t.mu.Lock()
	defer t.mu.Unlock()
	now := w.now()
	docs := make([]pendingDoc, 0, len(t.unwritten))
	for id := range t.unwritten {
		s, ok := t.sessions[id]
		if !ok {
			delete(t.unwritten, id)
			continue
		}
		body, err := json.Marshal(s.document(now))
		if err != nil {
			return nil, fmt.Errorf("encoding the document of session %q: %w", id, err)
		}
		docs = append(docs, pendingDoc{id: id, revision: s.Revision, body: body})
	}
	return docs, nil
}

// markWritten clears the pending flag of documents that still show the
// current state.
func (w *sessionsWriter) markWritten(docs []pendingDoc) {
	t := w.tracker
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range docs {
		if s, ok := t.sessions[d.id]; !ok || s.Revision == d.revision {
			delete(t.unwritten, d.id)
		}
	}
}

// writePending writes every pending document, in bulk requests of at most
// maxDocsPerBulk.
func (w *sessionsWriter) writePending(ctx context.Context) error {
	docs, err := w.takeUnwritten()
	if err != nil {
		return err
	}
	for len(docs) > 0 {
		n := min(len(docs), maxDocsPerBulk)
		written, err := w.bulkIndex(ctx, docs[:n])
		w.markWritten(written)
		if err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}

// bulkIndex sends one bulk request of index actions and returns the
// documents Elasticsearch accepted.
func (w *sessionsWriter) bulkIndex(ctx context.Context, docs []pendingDoc) ([]pendingDoc, error) {
	var body bytes.Buffer
	for _, d := range docs {
		action, _ := json.Marshal(map[string]any{"index": map[string]any{"_index": w.cfg.Index, "_id": d.id}})
		body.Write(action)
		body.WriteByte('\n')
		body.Write(d.body)
		body.WriteByte('\n')
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	res, err := w.es.Bulk(bytes.NewReader(body.Bytes()), w.es.Bulk.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("bulk request to %s: %w", w.cfg.Index, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the bulk response: %w", err)
	}
	if res.IsError() {
		return nil, fmt.Errorf("bulk request to %s: %s: %s", w.cfg.Index, res.Status(), truncateRunes(string(raw), maxErrorQuote))
	}
	var parsed struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			ID     string          `json:"_id"`
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &parsed); err != nil {
		return nil, fmt.Errorf("decoding the bulk response: %w", err)
	}
	if len(parsed.Items) != len(docs) {
		return nil, fmt.Errorf("bulk response has %d items for %d documents", len(parsed.Items), len(docs))
	}
	var accepted []pendingDoc
	var firstErr error
	for i, item := range parsed.Items {
		result := item["index"]
		if result.Status >= 200 && result.Status < 300 {
			accepted = append(accepted, docs[i])
			continue
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("indexing session %q: status %d: %s", docs[i].id, result.Status,
				truncateRunes(string(result.Error), maxErrorQuote))
		}
	}
	return accepted, firstErr
}
