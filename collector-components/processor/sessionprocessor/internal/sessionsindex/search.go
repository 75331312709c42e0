// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionsindex // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/sessionsindex"

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/summary"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// ActiveBefore implements Store.
func (e *Elasticsearch) ActiveBefore(ctx context.Context, before time.Time) ([]string, error) {
	return e.findIDs(ctx, map[string]any{"bool": map[string]any{"filter": []any{
		map[string]any{"term": map[string]any{schema.SessionStatus: schema.StatusActive}},
		map[string]any{"range": map[string]any{schema.SessionLastReceived: map[string]any{"lt": before.UTC().Format(time.RFC3339Nano)}}},
	}}})
}

// SummaryPendingBefore implements Store.
func (e *Elasticsearch) SummaryPendingBefore(ctx context.Context, before time.Time) ([]string, error) {
	return e.findIDs(ctx, map[string]any{"bool": map[string]any{"filter": []any{
		map[string]any{"term": map[string]any{schema.SessionSummaryPending: true}},
		map[string]any{"range": map[string]any{schema.SessionLastReceived: map[string]any{"lt": before.UTC().Format(time.RFC3339Nano)}}},
	}}})
}

func (e *Elasticsearch) findIDs(ctx context.Context, query map[string]any) ([]string, error) {
	if err := e.trouble(e.ensureMapping(ctx)); err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{"query": query, "size": findLimit, "_source": false})
	var parsed struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := e.search(ctx, e.cfg.Index, body, &parsed); err != nil {
		return nil, e.trouble(err)
	}
	ids := make([]string, 0, len(parsed.Hits.Hits))
	for _, h := range parsed.Hits.Hits {
		ids = append(ids, h.ID)
	}
	return ids, nil
}

func (e *Elasticsearch) search(ctx context.Context, index string, body []byte, out any) error {
	raw, err := e.do(ctx, func(ctx context.Context) (*http.Response, error) {
		// A failed shard fails the search, to be retried: a partial answer
		// would leave sessions unswept and summaries short of statements.
		res, err := e.es.Search(e.es.Search.WithIndex(index), e.es.Search.WithBody(bytes.NewReader(body)),
			e.es.Search.WithIgnoreUnavailable(true), e.es.Search.WithAllowPartialSearchResults(false), e.es.Search.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		return &http.Response{StatusCode: res.StatusCode, Body: res.Body}, nil
	})
	if err != nil {
		return fmt.Errorf("searching %s: %w", index, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding the search response of %s: %w", index, err)
	}
	return nil
}

// transcriptPage is how many events one transcript search reads.
const transcriptPage = 1000

// Transcript implements summary.Transcripts: the session's statements,
// commands and file operations from the events index, in seq order, until
// maxChars of text.
func (e *Elasticsearch) Transcript(ctx context.Context, sessionID string, maxChars int) ([]summary.TranscriptLine, error) {
	const attr = "attributes."
	var lines []summary.TranscriptLine
	chars := 0
	var after []any
	for chars < maxChars {
		req := map[string]any{
			"size": transcriptPage,
			"query": map[string]any{"bool": map[string]any{"filter": []any{
				map[string]any{"term": map[string]any{attr + schema.AttrSessionID: sessionID}},
				map[string]any{"terms": map[string]any{"event_name": []string{schema.EventDBQuery, schema.EventSSHCommand, schema.EventSSHFile}}},
			}}},
			"sort": []any{map[string]any{attr + schema.AttrSeq: "asc"}},
		}
		if after != nil {
			req["search_after"] = after
		}
		body, _ := json.Marshal(req)
		var parsed struct {
			Hits struct {
				Hits []struct {
					Source struct {
						Event string         `json:"event_name"`
						Attrs map[string]any `json:"attributes"`
					} `json:"_source"`
					Sort []any `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := e.search(ctx, e.cfg.EventsIndex, body, &parsed); err != nil {
			return nil, err
		}
		hits := parsed.Hits.Hits
		for _, h := range hits {
			l := transcriptLine(h.Source.Event, h.Source.Attrs)
			chars += len(l.Text) + len(l.Response)
			lines = append(lines, l)
		}
		if len(hits) < transcriptPage {
			break
		}
		after = hits[len(hits)-1].Sort
	}
	return lines, nil
}

func transcriptLine(event string, attrs map[string]any) summary.TranscriptLine {
	str := func(key string) string { v, _ := attrs[key].(string); return v }
	seq, _ := attrs[schema.AttrSeq].(float64)
	l := summary.TranscriptLine{Seq: int64(seq), Event: event, Response: str(schema.AttrResponseText)}
	switch event {
	case schema.EventDBQuery:
		l.Text = str(schema.AttrDBQueryText)
	case schema.EventSSHCommand:
		l.Text = str(schema.AttrSSHCommand)
	case schema.EventSSHFile:
		l.Text = str(schema.AttrFileOperation) + " " + str(schema.AttrFilePath)
	}
	return l
}
