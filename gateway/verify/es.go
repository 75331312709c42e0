package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Store reads what verification needs from Elasticsearch.
//
// Every search refuses partial results: when a shard fails (a rejected
// search, a scroll-context limit, a node gone), Elasticsearch would
// otherwise answer with the other shards' documents alone, and a session
// read in part looks tampered with, or absent.
type Store struct {
	ES *elasticsearch.Client
	// Index is the events indices' pattern; empty is
	// schema.EventsIndexPattern.
	Index string
}

func (s Store) eventsIndex() string {
	if s.Index != "" {
		return s.Index
	}
	return schema.EventsIndexPattern
}

// pageSize is how many event documents one search or scroll page holds.
const pageSize = 5000

// eventsPage is one page of a session's events.
type eventsPage struct {
	ScrollID string `json:"_scroll_id"`
	Shards   shards `json:"_shards"`
	Hits     struct {
		Hits []struct {
			ID     string          `json:"_id"`
			Source json.RawMessage `json:"_source"`
		} `json:"hits"`
	} `json:"hits"`
}

// shards is a search response's shard summary. A scroll page after the
// first reports a failed shard here, not as an error.
type shards struct {
	Total    int `json:"total"`
	Failed   int `json:"failed"`
	Failures []struct {
		Index  string `json:"index"`
		Reason struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"reason"`
	} `json:"failures"`
}

func (sh shards) err() error {
	if sh.Failed == 0 {
		return nil
	}
	if len(sh.Failures) > 0 {
		f := sh.Failures[0]
		return fmt.Errorf("%d of %d shards failed (%s: %s: %s): the answer would be partial", sh.Failed, sh.Total, f.Index, f.Reason.Type, f.Reason.Reason)
	}
	return fmt.Errorf("%d of %d shards failed: the answer would be partial", sh.Failed, sh.Total)
}

// Events returns every event document of a session, as indexed. A session
// that fits in one page is read with one search; a larger one with a
// scroll, which holds a context on every shard of the events indices until
// it is cleared, so only the sessions that need one open one.
func (s Store) Events(ctx context.Context, sessionID string) ([]Doc, error) {
	query := map[string]any{
		"size":  pageSize,
		"query": map[string]any{"term": map[string]any{"attributes." + schema.AttrSessionID: sessionID}},
		"sort":  []any{"_doc"},
	}
	read := func(res *esapi.Response, err error) (eventsPage, error) {
		var page eventsPage
		if err := decode(res, err, &page); err != nil {
			return page, fmt.Errorf("reading the events of session %s: %w", sessionID, err)
		}
		if err := page.Shards.err(); err != nil {
			return page, fmt.Errorf("reading the events of session %s: %w", sessionID, err)
		}
		return page, nil
	}
	search := func(opts ...func(*esapi.SearchRequest)) (eventsPage, error) {
		opts = append(opts, s.ES.Search.WithContext(ctx), s.ES.Search.WithIndex(s.eventsIndex()), s.ES.Search.WithBody(jsonBody(query)),
			s.ES.Search.WithIgnoreUnavailable(true), s.ES.Search.WithAllowPartialSearchResults(false))
		return read(s.ES.Search(opts...))
	}
	page, err := search()
	if err != nil {
		return nil, err
	}
	if len(page.Hits.Hits) < pageSize {
		return appendDocs(nil, page), nil
	}
	page, err = search(s.ES.Search.WithScroll(time.Minute))
	scrollID := page.ScrollID
	// However the read ends, its scroll is cleared: a context left to its
	// keep-alive holds every shard's until then, and a verification of many
	// sessions failing one after another would pile them up to the node's
	// limit, failing searches of everyone else.
	defer func() { s.clearScroll(ctx, scrollID) }()
	var docs []Doc
	for {
		if err != nil {
			return nil, err
		}
		docs = appendDocs(docs, page)
		if len(page.Hits.Hits) < pageSize || page.ScrollID == "" {
			return docs, nil
		}
		page, err = read(s.ES.Scroll(s.ES.Scroll.WithContext(ctx), s.ES.Scroll.WithScrollID(page.ScrollID), s.ES.Scroll.WithScroll(time.Minute)))
		if page.ScrollID != "" {
			scrollID = page.ScrollID
		}
	}
}

// clearScroll releases a scroll context, also when ctx has ended (the read
// was cancelled or timed out): the context would otherwise stay open.
func (s Store) clearScroll(ctx context.Context, scrollID string) {
	if scrollID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if res, err := s.ES.ClearScroll(s.ES.ClearScroll.WithContext(ctx), s.ES.ClearScroll.WithScrollID(scrollID)); err == nil {
		res.Body.Close()
	}
}

func appendDocs(docs []Doc, page eventsPage) []Doc {
	for _, h := range page.Hits.Hits {
		docs = append(docs, Doc{ID: h.ID, Source: h.Source})
	}
	return docs
}

// State reads the session document's status and checkpoint.
func (s Store) State(ctx context.Context, sessionID string) (SessionState, error) {
	res, err := s.ES.Get(schema.SessionsIndex, sessionID, s.ES.Get.WithContext(ctx))
	if err == nil && res.StatusCode == http.StatusNotFound {
		res.Body.Close()
		return SessionState{}, nil
	}
	var doc struct {
		Source struct {
			Status     string             `json:"status"`
			Checkpoint *schema.Checkpoint `json:"checkpoint"`
		} `json:"_source"`
	}
	if err := decode(res, err, &doc); err != nil {
		return SessionState{}, fmt.Errorf("reading the session document of %s: %w", sessionID, err)
	}
	return SessionState{Status: doc.Source.Status, Checkpoint: doc.Source.Checkpoint}, nil
}

// SessionsSince lists the sessions that started at or after since, by
// session id (refused logins have no session and are not listed); a
// non-empty gatewayID keeps only that gateway's.
func (s Store) SessionsSince(ctx context.Context, since time.Time, gatewayID string) ([]string, error) {
	var ids []string
	var after []any
	filter := []any{
		map[string]any{"term": map[string]any{"event_name": schema.EventSessionStart}},
		map[string]any{"range": map[string]any{"@timestamp": map[string]any{"gte": since.UTC().Format(time.RFC3339Nano)}}},
	}
	if gatewayID != "" {
		filter = append(filter, map[string]any{"term": map[string]any{"attributes." + schema.AttrGatewayID: gatewayID}})
	}
	for {
		query := map[string]any{
			"size":    1000,
			"_source": false,
			"query":   map[string]any{"bool": map[string]any{"filter": filter}},
			"fields":  []string{"attributes." + schema.AttrSessionID},
			"sort":    []any{map[string]any{"attributes." + schema.AttrSessionID: "asc"}},
		}
		if after != nil {
			query["search_after"] = after
		}
		res, err := s.ES.Search(s.ES.Search.WithContext(ctx), s.ES.Search.WithIndex(s.eventsIndex()),
			s.ES.Search.WithBody(jsonBody(query)), s.ES.Search.WithIgnoreUnavailable(true), s.ES.Search.WithAllowPartialSearchResults(false))
		var page struct {
			Hits struct {
				Hits []struct {
					Fields map[string][]string `json:"fields"`
					Sort   []any               `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := decode(res, err, &page); err != nil {
			return nil, fmt.Errorf("listing sessions: %w", err)
		}
		for _, h := range page.Hits.Hits {
			if v := h.Fields["attributes."+schema.AttrSessionID]; len(v) > 0 {
				ids = append(ids, v[0])
			}
			after = h.Sort
		}
		if len(page.Hits.Hits) < 1000 {
			return ids, nil
		}
	}
}

// keyDoc is one document of the keys index.
type keyDoc struct {
	KeyID     string    `json:"key_id"`
	PublicKey string    `json:"public_key"`
	Created   time.Time `json:"created,omitzero"`
}

// Keys reads the published public keys. A document whose id does not
// match its key is refused.
func (s Store) Keys(ctx context.Context) ([]keys.PublicKey, error) {
	query := map[string]any{"size": 10000, "query": map[string]any{"match_all": map[string]any{}}}
	res, err := s.ES.Search(s.ES.Search.WithContext(ctx), s.ES.Search.WithIndex(schema.KeysIndex),
		s.ES.Search.WithBody(jsonBody(query)), s.ES.Search.WithIgnoreUnavailable(true), s.ES.Search.WithAllowPartialSearchResults(false))
	var page struct {
		Hits struct {
			Hits []struct {
				Source keyDoc `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := decode(res, err, &page); err != nil {
		return nil, fmt.Errorf("reading %s: %w", schema.KeysIndex, err)
	}
	var out []keys.PublicKey
	for _, h := range page.Hits.Hits {
		k, err := keys.ParsePublicKey(h.Source.KeyID, h.Source.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", schema.KeysIndex, err)
		}
		k.Created = h.Source.Created
		out = append(out, k)
	}
	return out, nil
}

// PublishKeys writes public keys to the keys index, one document per key
// id. Publishing the same key again changes nothing; a different key under
// an existing id is refused by Elasticsearch (create only).
func (s Store) PublishKeys(ctx context.Context, pubs []keys.PublicKey) error {
	// Created with the other indices' replica setting, so a single node
	// stays green and a cluster keeps a copy when a node goes.
	res, err := s.ES.Indices.Create(schema.KeysIndex, s.ES.Indices.Create.WithContext(ctx),
		s.ES.Indices.Create.WithBody(strings.NewReader(`{"settings":{"index":{"number_of_shards":1,"auto_expand_replicas":"0-1"}}}`)))
	if err == nil && res.StatusCode == http.StatusBadRequest {
		res.Body.Close() // it exists already
	} else if err := decode(res, err, nil); err != nil {
		return fmt.Errorf("creating %s: %w", schema.KeysIndex, err)
	}
	for _, k := range pubs {
		body := jsonBody(keyDoc{KeyID: k.ID, PublicKey: k.Base64(), Created: k.Created})
		res, err := s.ES.Create(schema.KeysIndex, k.ID, body, s.ES.Create.WithContext(ctx), s.ES.Create.WithRefresh("true"))
		if err == nil && res.StatusCode == http.StatusConflict {
			res.Body.Close()
			continue // already published (ids are derived from the key)
		}
		if err := decode(res, err, nil); err != nil {
			return fmt.Errorf("publishing key %s to %s: %w", k.ID, schema.KeysIndex, err)
		}
	}
	return nil
}

// Refresh makes recent writes searchable, so a verification right after a
// session sees all of it.
func (s Store) Refresh(ctx context.Context) {
	res, err := s.ES.Indices.Refresh(s.ES.Indices.Refresh.WithContext(ctx),
		s.ES.Indices.Refresh.WithIndex(s.eventsIndex(), schema.SessionsIndex), s.ES.Indices.Refresh.WithIgnoreUnavailable(true))
	if err == nil {
		res.Body.Close()
	}
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

func decode(res *esapi.Response, err error, into any) error {
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.IsError() {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
		return fmt.Errorf("elasticsearch: %s: %s", res.Status(), strings.TrimSpace(string(b)))
	}
	if into == nil {
		return nil
	}
	return json.NewDecoder(res.Body).Decode(into)
}
