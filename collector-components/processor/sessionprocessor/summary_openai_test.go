// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

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
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.uber.org/zap"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

// endedSession is a finished PostgreSQL session with one finding and its
// transcript, as the tracker builds it.
func endedSession() *sessionState {
	return &sessionState{
		ID: "s1", User: "alice", Account: "demo-postgres", ResourceType: schema.ResourcePostgres,
		Status: schema.StatusEnded, EndReason: schema.EndClientQuit, Queries: 2, MaxSeq: 3,
		RiskLevel: 3, Tables: objectSet{"payroll"}, Dropped: objectSet{"payroll"},
		Findings:   []findingState{{RuleID: "sql.drop_object", Severity: "high", Reason: "drops a database object", Seq: 2, Excerpt: "DROP TABLE payroll"}},
		transcript: []byte("[seq 1] SQL: SELECT 1 => SELECT 1\n[seq 2] SQL: DROP TABLE payroll => DROP TABLE\n"),
	}
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
		wantWarnings []summaryWarning
	}{
		{
			name: "success",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, chatReply("```json\n"+`{"summary": "Alice dropped the payroll table.", "warnings": [`+
					`{"text": "Dropped table payroll", "seq": 2}, {"text": "points nowhere", "seq": 99}, {"text": "no seq"}]}`+"\n```"))
			},
			wantProvider: providerOpenAI,
			wantText:     "Alice dropped the payroll table.",
			wantWarnings: []summaryWarning{{Text: "Dropped table payroll", Seq: 2}},
		},
		{
			name: "malformed reply",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, chatReply("Sure! Here is a summary: alice did things."))
			},
			wantProvider: providerRules,
			wantText:     "tables dropped: payroll",
			wantFallback: "openai: malformed reply",
			wantWarnings: []summaryWarning{{Text: "drops a database object: DROP TABLE payroll", Seq: 2}},
		},
		{
			name: "timeout",
			handler: func(_ http.ResponseWriter, r *http.Request) {
				<-r.Context().Done() // never answers
			},
			wantProvider: providerRules,
			wantText:     "tables dropped: payroll",
			wantFallback: "openai: no reply within 200ms",
			wantWarnings: []summaryWarning{{Text: "drops a database object: DROP TABLE payroll", Seq: 2}},
		},
		{
			name: "server error",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, `{"error": {"message": "overloaded"}}`, http.StatusInternalServerError)
			},
			wantProvider: providerRules,
			wantText:     "tables dropped: payroll",
			wantFallback: "openai: endpoint answered HTTP 500",
			wantWarnings: []summaryWarning{{Text: "drops a database object: DROP TABLE payroll", Seq: 2}},
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

			cfg := createDefaultConfig().(*Config).Summary.OpenAI
			cfg.BaseURL, cfg.Model, cfg.Timeout = srv.URL+"/v1", "test-model", 200*time.Millisecond
			now := newTestClock()
			z := newSummarizer(nil, newOpenAIClient(cfg, key, &http.Client{Transport: transport}), now.Now, zap.NewNop(), func() {})

			s := endedSession()
			s.Summary = z.summarize(context.Background(), s)
			summary := s.document(now.Now())[schema.SessionSummary].(map[string]any)

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
	cfg := createDefaultConfig().(*Config).Summary.OpenAI
	cfg.BaseURL, cfg.Model, cfg.MaxInputChars = srv.URL, "m", 500
	s := endedSession()
	s.transcript = []byte(strings.Repeat("[seq 1] SQL: SELECT 1\n", 1000))
	_, err := newOpenAIClient(cfg, "", &http.Client{Transport: transport}).summarize(context.Background(), s, time.Now())
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

// TestSummaryNeverBlocksThePipeline: while the model endpoint hangs, the
// session's end event is acknowledged at once, the document is written
// without a summary, and the summary arrives when the endpoint answers.
func TestSummaryNeverBlocksThePipeline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, chatReply(`{"summary": "Alice ran one query.", "warnings": []}`))
	}))
	defer srv.Close()
	t.Setenv("PAMTRAIL_TEST_OPENAI_KEY", "k")

	cfg := testConfig(time.Hour, 1, 10)
	cfg.Summary.Provider = providerOpenAI
	cfg.Summary.OpenAI.BaseURL, cfg.Summary.OpenAI.Model = srv.URL, "m"
	cfg.Summary.OpenAI.APIKeyEnv = "PAMTRAIL_TEST_OPENAI_KEY"
	p := newTestProcessor(t, &cfg, consumertest.NewNop())
	startProcessor(t, p)

	ld := sessionLogs("s1", 0, 3)
	recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	recs.At(0).SetEventName(schema.EventSessionStart)
	recs.At(1).Attributes().PutStr(schema.AttrDBQueryText, "SELECT 1")
	recs.At(2).SetEventName(schema.EventSessionEnd)
	recs.At(2).Attributes().PutStr(schema.AttrEndReason, schema.EndClientQuit)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))

	summaryOf := func() map[string]any {
		doc := documents(p)["s1"]
		summary, _ := doc[schema.SessionSummary].(map[string]any)
		return summary
	}
	assert.Equal(t, schema.StatusEnded, documents(p)["s1"][schema.SessionStatus])
	assert.Nil(t, summaryOf(), "the summary cannot exist while the model has not answered")
	close(release)
	require.Eventually(t, func() bool { return summaryOf() != nil }, eventuallyTimeout, eventuallyTick)
	assert.Equal(t, providerOpenAI, summaryOf()["provider"])
	assert.Equal(t, "Alice ran one query.", summaryOf()["text"])
}
