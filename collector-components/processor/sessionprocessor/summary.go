// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// summarizer produces end-of-session summaries on its own goroutine, so a
// slow model never holds up the pipeline: the flush path only marks a session
// as waiting (tracker.requestSummary) and wakes it.
type summarizer struct {
	tracker *tracker
	openai  *openAIClient // nil unless summary::provider is openai
	now     func() time.Time
	logger  *zap.Logger
	// stored is called after a summary is attached to its session.
	stored func()

	wake chan struct{} // capacity 1
}

func newSummarizer(t *tracker, openai *openAIClient, now func() time.Time, logger *zap.Logger, stored func()) *summarizer {
	return &summarizer{tracker: t, openai: openai, now: now, logger: logger, stored: stored, wake: make(chan struct{}, 1)}
}

// notify asks the summarizer to look for work; it never blocks.
func (z *summarizer) notify() {
	select {
	case z.wake <- struct{}{}:
	default:
	}
}

// run summarizes waiting sessions until ctx ends. A session whose summary is
// interrupted by shutdown keeps SummaryPending in the persisted state and is
// summarized after the restart.
func (z *summarizer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-z.wake:
		}
		for _, id := range z.tracker.takeSummaryRequests() {
			input, ok := z.tracker.summaryInput(id)
			if !ok {
				continue
			}
			result := z.summarize(ctx, &input)
			if ctx.Err() != nil {
				return
			}
			z.tracker.storeSummary(id, result)
			z.stored()
		}
	}
}

// summarize runs the configured provider; the openai provider falls back to
// rules on any failure and says why.
func (z *summarizer) summarize(ctx context.Context, s *sessionState) *summaryResult {
	if z.openai == nil {
		return rulesSummary(s, z.now())
	}
	result, err := z.openai.summarize(ctx, s, z.now())
	if err == nil {
		return result
	}
	z.logger.Warn("openai summary failed; using the rules summary",
		zap.String("session.id", s.ID), zap.Error(err))
	fallback := rulesSummary(s, z.now())
	fallback.FallbackReason = truncateRunes(err.Error(), maxWarningChars)
	return fallback
}
