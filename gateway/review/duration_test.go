package review

import (
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{850 * time.Nanosecond, "850 ns"},
		{450 * time.Microsecond, "450 µs"},
		{1250 * time.Microsecond, "1.2 ms"},
		{35 * time.Millisecond, "35 ms"},
		{999 * time.Millisecond, "999 ms"},
		{time.Second, "1.0 s"},
		{12345 * time.Millisecond, "12.3 s"},
		{125 * time.Second, "2 min 5 s"},
		{59*time.Minute + 59600*time.Millisecond, "1 h 0 min"},
		{3*time.Hour + 2*time.Minute + 40*time.Second, "3 h 3 min"},
		{-2 * time.Second, "-2.0 s"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.in); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1337, "1.3 KiB"}, {300_000, "293.0 KiB"}, {5 << 30, "5.0 GiB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.in); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
