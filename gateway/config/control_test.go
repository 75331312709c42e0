package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

const validToken = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

// Policies and the admin API: valid settings parse with their defaults,
// and every mistake names its field.
func TestPolicyAndAdminValidation(t *testing.T) {
	guarded := strings.Replace(validBase, "    secret: {env: DEMO_PW}\n", "    secret: {env: DEMO_PW}\n    policy: guard\n", 1)
	policy := "policies:\n  - name: guard\n    mode: enforce\n    sql:\n      - {id: no-drop, statement: DROP DATABASE}\n"
	admin := "admin:\n  address: 127.0.0.1:7443\n  identities:\n    - {name: ops, token_sha256: " + validToken + "}\n"
	dir := t.TempDir()
	cfg, err := Parse([]byte(guarded+policy+admin), dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.LocksFile != filepath.Join(dir, "locks.json") || cfg.PolicyFor("demo-postgres") == nil {
		t.Fatalf("defaults: locks_file %q, policy %+v", cfg.Admin.LocksFile, cfg.PolicyFor("demo-postgres"))
	}
	tests := []struct {
		name, yaml, field string
	}{
		{"unknown policy", strings.Replace(guarded, "policy: guard", "policy: nope", 1), "accounts[0].policy"},
		{"bad mode", guarded + strings.Replace(policy, "enforce", "block", 1), "policies[0].mode"},
		{"no rules", guarded + "policies:\n  - {name: guard, mode: audit}\n", "policies[0]"},
		{"statement and pattern", guarded + strings.Replace(policy, "statement: DROP DATABASE", "statement: DROP, pattern: x", 1), "policies[0].sql[0]"},
		{"bad statement", guarded + strings.Replace(policy, "DROP DATABASE", "'DROP;'", 1), "policies[0].sql[0].statement"},
		{"bad pattern", guarded + strings.Replace(policy, "statement: DROP DATABASE", "pattern: '('", 1), "policies[0].sql[0].pattern"},
		{"duplicate rule id", guarded + policy + "      - {id: no-drop, statement: TRUNCATE}\n", "policies[0].sql[1].id"},
		{"program with a path", guarded + "policies:\n  - name: guard\n    mode: enforce\n    commands:\n      - {id: r, program: /sbin/reboot}\n", "policies[0].commands[0].program"},
		{"relative under", guarded + "policies:\n  - name: guard\n    mode: enforce\n    files:\n      - {id: f, under: etc}\n", "policies[0].files[0].under"},
		{"bad operation", guarded + "policies:\n  - name: guard\n    mode: enforce\n    files:\n      - {id: f, under: /etc, operations: [chmod]}\n", "policies[0].files[0].operations[0]"},
		{"admin off loopback without tls", validBase + strings.Replace(admin, "127.0.0.1:7443", "10.0.0.5:7443", 1), "admin.tls"},
		{"admin without identities", validBase + "admin:\n  address: 127.0.0.1:7443\n", "admin.identities"},
		{"token not a sha256", validBase + strings.Replace(admin, validToken, "secret", 1), "admin.identities[0].token_sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), t.TempDir())
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a validation error naming %s, got %v", tt.field, err)
			}
			for _, f := range ve.Fields {
				if f.Field == tt.field {
					return
				}
			}
			t.Fatalf("no error for %s in:\n%v", tt.field, err)
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "127.9.9.9:1": true, "[::1]:1": true, "localhost:1": true,
		"0.0.0.0:1": false, ":1": false, "10.0.0.1:1": false, "gw.example:1": false, "junk": false} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
