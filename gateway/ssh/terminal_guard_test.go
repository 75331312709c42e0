package ssh

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/policy"
)

func rebootGuard(screen string, refused *[]string) *terminalGuard {
	set, _ := policy.Compile(&config.Policy{Name: "p", Mode: config.PolicyEnforce, Commands: []config.CommandRule{{ID: "r", Program: "reboot"}}})
	return &terminalGuard{set: set, plain: true, screen: func() string { return screen },
		refused: func(text string, m *policy.Match) { *refused = append(*refused, text) }}
}

// Keys pass untouched unless Enter would run a blocked line: then that
// Enter becomes ^E ^U Enter (line cleared, fresh prompt). The line is the
// screen's, or the keys typed ahead of the echo (a paste).
func TestTerminalGuard(t *testing.T) {
	tests := []struct {
		name, screen, keys, want string
		refused                  []string
	}{
		{"allowed", "ls -l", "\r", "\r", nil},
		{"completed on screen", "reboot ", "\r", "\x05\x15\r", []string{"reboot"}},
		{"pasted before the echo", "", "sudo reboot\r", "sudo reboot\x05\x15\r", []string{"sudo reboot"}},
		{"edited away", "", "reboot\x15ls\r", "reboot\x15ls\r", nil},
		{"two lines, second blocked", "", "ls\rreboot\r", "ls\rreboot\x05\x15\r", []string{"reboot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var refused []string
			g := rebootGuard(tt.screen, &refused)
			if got := string(g.filter([]byte(tt.keys))); got != tt.want {
				t.Fatalf("forwarded %q, want %q", got, tt.want)
			}
			if strings.Join(refused, "|") != strings.Join(tt.refused, "|") {
				t.Fatalf("refused %q, want %q", refused, tt.refused)
			}
		})
	}
}

// FuzzTerminalGuard: any keys, a screen that never shows a blocked line,
// and keys that cannot spell "reboot" even with editing (not a
// subsequence): everything passes unchanged.
func FuzzTerminalGuard(f *testing.F) {
	f.Add([]byte("ls\r\x1b[A\t\x7f\x15\x03"))
	f.Fuzz(func(t *testing.T, keys []byte) {
		var refused []string
		g := rebootGuard("echo hi", &refused)
		out := g.filter(keys)
		if subsequence(keys, "reboot") {
			return
		}
		if !bytes.Equal(out, keys) || len(refused) > 0 {
			t.Fatalf("keys %q became %q (refused %q)", keys, out, refused)
		}
	})
}

func subsequence(b []byte, s string) bool {
	for _, c := range b {
		if len(s) > 0 && c == s[0] {
			s = s[1:]
		}
	}
	return s == ""
}
