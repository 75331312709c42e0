// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package summary

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// endedSession is a finished PostgreSQL session with one finding and its
// transcript, as the tracker builds it.
func endedSession() *state.Session {
	return &state.Session{
		ID: "s1", User: "alice", Account: "demo-postgres", ResourceType: schema.ResourcePostgres,
		Status: schema.StatusEnded, EndReason: schema.EndClientQuit, Queries: 2, Seqs: state.SeqSet{{From: 0, To: 3}},
		RiskLevel: 3, Tables: state.ObjectSet{"payroll"}, Dropped: state.ObjectSet{"payroll"},
		Findings: []state.Finding{{RuleID: "sql.drop_object", Severity: "high", Reason: "drops a database object", Seq: 2, Excerpt: "DROP TABLE payroll"}},
	}
}

// fixedTranscript is the events of endedSession, as the events index holds them.
type fixedTranscript []TranscriptLine

func (f fixedTranscript) Transcript(context.Context, string, int) ([]TranscriptLine, error) {
	return f, nil
}

var endedTranscript = fixedTranscript{
	{Seq: 1, Event: schema.EventDBQuery, Text: "SELECT 1", Response: "SELECT 1"},
	{Seq: 2, Event: schema.EventDBQuery, Text: "DROP TABLE payroll", Response: "DROP TABLE"},
}

func testOpenAIConfig(url string) OpenAIConfig {
	return OpenAIConfig{BaseURL: url, Model: "test-model", Timeout: 200 * time.Millisecond, MaxInputChars: 200_000}
}

func chatReply(content string) string {
	raw, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion",
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": content}}},
	})
	return string(raw)
}

func TestOpenAISummary(t *testing.T) {
	const key = "sk-test-key"
	tests := []struct {
		name string
		// handler answers the chat-completions request.
		handler      func(w http.ResponseWriter, r *http.Request)
		wantProvider string
		wantText     string // substring of the summary text
		wantFallback string // substring of fallback_reason; "" for none
		wantWarnings []state.Warning
	}{
		{
			name: "success",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, chatReply("```json\n"+`{"summary": "Alice dropped the payroll table.", "warnings": [`+
					`{"text": "Dropped table payroll", "seq": 2}, {"text": "points nowhere", "seq": 99}, {"text": "no seq"}]}`+"\n```"))
			},
			wantProvider: ProviderOpenAI,
			wantText:     "Alice dropped the payroll table.",
			wantWarnings: []state.Warning{{Text: "Dropped table payroll", Seq: 2}},
		},
		{
			name: "malformed reply",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, chatReply("Sure! Here is a summary: alice did things."))
			},
			wantProvider: ProviderRules,
			wantText:     "tables dropped: payroll",
			wantFallback: "openai: malformed reply",
			wantWarnings: []state.Warning{{Text: "drops a database object: DROP TABLE payroll", Seq: 2}},
		},
		{
			name: "timeout",
			handler: func(_ http.ResponseWriter, r *http.Request) {
				<-r.Context().Done() // never answers
			},
			wantProvider: ProviderRules,
			wantText:     "tables dropped: payroll",
			wantFallback: "openai: no reply within 200ms",
			wantWarnings: []state.Warning{{Text: "drops a database object: DROP TABLE payroll", Seq: 2}},
		},
		{
			name: "server error",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, `{"error": {"message": "overloaded"}}`, http.StatusInternalServerError)
			},
			wantProvider: ProviderRules,
			wantText:     "tables dropped: payroll",
			wantFallback: "openai: endpoint answered HTTP 500",
			wantWarnings: []state.Warning{{Text: "drops a database object: DROP TABLE payroll", Seq: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests := make(chan chatRequest, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				assert.Equal(t, "/v1/chat/completions", r.URL.Path)
				assert.Equal(t, "Bearer "+key, r.Header.Get("Authorization"))
				var req chatRequest
				assert.NoError(t, json.NewDecoder(r.Body).Decode(&req))
				requests <- req
				tt.handler(w, r)
			}))
			defer srv.Close()
			transport := &http.Transport{}
			defer transport.CloseIdleConnections()

			cfg := testOpenAIConfig(srv.URL + "/v1")
			cfg.APIKey = key
			z := New(ProviderOpenAI, NewOpenAI(cfg, &http.Client{Transport: transport}, endedTranscript), zap.NewNop())

			s := endedSession()
			s.Summary = z.Summarize(context.Background(), s, time.Now())
			summary := s.Document(time.Now())[schema.SessionSummary].(map[string]any)

			assert.Equal(t, tt.wantProvider, summary["provider"])
			assert.Contains(t, summary["text"], tt.wantText)
			if tt.wantFallback == "" {
				assert.NotContains(t, summary, "fallback_reason")
			} else {
				assert.Contains(t, summary["fallback_reason"], tt.wantFallback)
			}
			assert.Equal(t, tt.wantWarnings, s.Summary.Warnings)
			// The model got the redacted transcript and the model name.
			gotRequest := <-requests
			assert.Equal(t, "test-model", gotRequest.Model)
			require.Len(t, gotRequest.Messages, 2)
			assert.Contains(t, gotRequest.Messages[1].Content, "[seq 2] SQL: DROP TABLE payroll")
		})
	}
}

func TestOpenAIInputIsCapped(t *testing.T) {
	var got chatRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		io.WriteString(w, chatReply(`{"summary": "ok", "warnings": []}`))
	}))
	defer srv.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	cfg := testOpenAIConfig(srv.URL)
	cfg.MaxInputChars = 500
	long := make(fixedTranscript, 1000)
	for i := range long {
		long[i] = TranscriptLine{Seq: 1, Event: schema.EventDBQuery, Text: "SELECT 1"}
	}
	_, err := NewOpenAI(cfg, &http.Client{Transport: transport}, long).summarize(context.Background(), endedSession(), time.Now())
	require.NoError(t, err)
	assert.LessOrEqual(t, len(got.Messages[1].Content), 500+len("…"))
}

func TestParseChatReplyCapsUntrustedText(t *testing.T) {
	long := strings.Repeat("word ", 5000)
	raw := chatReply(`{"summary": "` + long + `", "warnings": [{"text": "` + long + `", "seq": 1}]}`)
	res, err := parseChatReply([]byte(raw), endedSession(), time.Now())
	require.NoError(t, err)
	assert.LessOrEqual(t, len(res.Text), maxSummaryChars+len("…"))
	require.Len(t, res.Warnings, 1)
	assert.LessOrEqual(t, len(strings.Fields(res.Warnings[0].Text)), maxWarningWords+1)
}
