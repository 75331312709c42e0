// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/pamtrail/pamtrail/collector-components/internal/esenv"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/summary"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestModelSummaryNeverBlocksThePipeline: while the model endpoint hangs,
// the session's end is acknowledged at once and its document (in a real
// sessions index) is ended and pending; the summary arrives, once, when the
// endpoint answers.
func TestModelSummaryNeverBlocksThePipeline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, `{"choices": [{"message": {"role": "assistant", "content": "{\"summary\": \"Alice ran one query.\", \"warnings\": []}"}}]}`)
	}))
	defer srv.Close()
	t.Setenv("PAMTRAIL_TEST_OPENAI_KEY", "k")

	url := esenv.URL(t)
	cfg := createDefaultConfig().(*Config)
	cfg.Sessions.Endpoint, cfg.Sessions.Index = url, esenv.SessionsIndex(t, url)
	cfg.Sessions.EventsIndex = cfg.Sessions.Index + "-no-events" // an empty transcript
	cfg.Summary.Provider = summary.ProviderOpenAI
	cfg.Summary.OpenAI.BaseURL, cfg.Summary.OpenAI.Model = srv.URL, "m"
	cfg.Summary.OpenAI.APIKeyEnv = "PAMTRAIL_TEST_OPENAI_KEY"
	p := newTestProcessor(t, cfg, consumertest.NewNop())
	startProcessor(t, p)

	ld := sessionLogs("s1", 0, 3)
	recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	recs.At(0).SetEventName(schema.EventSessionStart)
	recs.At(1).Attributes().PutStr(schema.AttrDBQueryText, "SELECT 1")
	recs.At(2).SetEventName(schema.EventSessionEnd)
	recs.At(2).Attributes().PutStr(schema.AttrEndReason, schema.EndClientQuit)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))

	s, err := p.store.Get(context.Background(), "s1")
	require.NoError(t, err)
	assert.Equal(t, schema.StatusEnded, s.Status)
	assert.Nil(t, s.Summary, "the summary cannot exist while the model has not answered")
	assert.True(t, s.SummaryPending)
	close(release)
	require.Eventually(t, func() bool {
		s, err = p.store.Get(context.Background(), "s1")
		return err == nil && s.Summary != nil
	}, eventuallyTimeout, eventuallyTick)
	assert.Equal(t, summary.ProviderOpenAI, s.Summary.Provider)
	assert.Equal(t, "Alice ran one query.", s.Summary.Text)
	assert.False(t, s.SummaryPending)
}
