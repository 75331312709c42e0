package review

import (
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"1795777167805.640297", time.UnixMilli(1795777167805).Add(640297).UTC()},
		{"1795777167805", time.UnixMilli(1795777167805).UTC()},
		{"2026-11-27T10:59:27.805640297Z", time.Date(2026, 11, 27, 10, 59, 27, 805640297, time.UTC)},
		{"garbage", time.Time{}},
	}
	for _, tt := range tests {
		if got := parseTimestamp(tt.in); !got.Equal(tt.want) {
			t.Errorf("parseTimestamp(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestEventFromSourceFlattensAttributes(t *testing.T) {
	src := map[string]any{
		"@timestamp": "1795777167805.640297", "event_name": "pam.db.query",
		"body":       map[string]any{"text": "select 1"},
		"attributes": map[string]any{"session.id": "s1", "pam": map[string]any{"seq": float64(3)}},
	}
	e := eventFromSource("s1:3", src)
	if e.Str("session.id") != "s1" || e.Int("pam.seq") != 3 || e.Body != "select 1" || e.EventName != "pam.db.query" || e.Timestamp.IsZero() {
		t.Fatalf("%+v", e)
	}
	if e.Int("missing") != -1 {
		t.Fatal("missing attribute should be -1")
	}
}
