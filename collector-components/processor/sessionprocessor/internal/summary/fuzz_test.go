// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package summary

import (
	"testing"
	"time"
)

// FuzzParseChatReply feeds arbitrary bytes as a model's reply: parsing must
// never panic, and what it accepts is capped and points at events of the
// session.
func FuzzParseChatReply(f *testing.F) {
	f.Add([]byte(chatReply(`{"summary": "ok", "warnings": [{"text": "x", "seq": 1}]}`)))
	f.Add([]byte(chatReply("```json\n{\"summary\": \"s\"}\n```")))
	f.Add([]byte(`{"choices": []}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s := endedSession()
		res, err := parseChatReply(raw, s, time.Unix(0, 0))
		if err != nil {
			return
		}
		if res.Text == "" || len(res.Text) > maxSummaryChars+len("…") || len(res.Warnings) > maxWarnings {
			t.Fatalf("accepted an out-of-bounds summary: %+v", res)
		}
		for _, w := range res.Warnings {
			if w.Seq < 0 || w.Seq > s.MaxSeq() || len(w.Text) > maxWarningChars+len("…") {
				t.Fatalf("accepted an out-of-bounds warning: %+v", w)
			}
		}
	})
}
