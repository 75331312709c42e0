package server

import (
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/config"
)

func TestBuildRedactorUsesConfiguredRulesAndFunctions(t *testing.T) {
	r := buildRedactor([]config.RedactionRule{{Name: "ticket", Pattern: `TICKET-(?P<secret>\d+)`}}, []string{"vault_decrypt"})
	tests := []struct{ in, secret string }{
		{"select vault_decrypt(col, 'k-123') from t", "k-123"},
		{"select pgp_sym_decrypt(col, 'builtin-key') from t", "builtin-key"}, // built-ins stay
		{"update t set note = 'TICKET-4711'", "4711"},
	}
	for _, tt := range tests {
		got, n := r.SQL(tt.in)
		if n == 0 || strings.Contains(got, tt.secret) {
			t.Errorf("SQL(%q) = %q (%d redactions); %q must be masked", tt.in, got, n, tt.secret)
		}
	}
}
