// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

// Package summary writes the end-of-session summary: the offline rules
// provider, or an OpenAI-compatible model with the rules summary as its
// fallback.
package summary // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/summary"

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"
)

// Summarizer runs the configured provider.
type Summarizer struct {
	provider string
	openai   *OpenAI // set for ProviderOpenAI
	logger   *zap.Logger
}

// New returns a summarizer for provider; openai is used when provider is
// ProviderOpenAI.
func New(provider string, openai *OpenAI, logger *zap.Logger) *Summarizer {
	return &Summarizer{provider: provider, openai: openai, logger: logger}
}

// Enabled reports whether sessions get summaries at all.
func (z *Summarizer) Enabled() bool { return z.provider != ProviderNone }

// Inline reports whether the provider is fast and deterministic enough to
// run inside a state merge, so that the summary is written in the same
// optimistic-concurrency update that finishes the session.
func (z *Summarizer) Inline() bool { return z.provider == ProviderRules }

// Summarize runs the provider; the openai provider falls back to rules on
// any failure and says why.
func (z *Summarizer) Summarize(ctx context.Context, s *state.Session, now time.Time) *state.Summary {
	if z.openai == nil {
		return Rules(s, now)
	}
	result, err := z.openai.summarize(ctx, s, now)
	if err == nil {
		return result
	}
	z.logger.Warn("openai summary failed; using the rules summary",
		zap.String("session.id", s.ID), zap.Error(err))
	fallback := Rules(s, now)
	fallback.FallbackReason = state.TruncateRunes(err.Error(), maxWarningChars)
	return fallback
}
