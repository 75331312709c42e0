package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validBase = `
postgres:
  address: 127.0.0.1:6432
spool:
  key_env: PAMTRAIL_SPOOL_KEY
users:
  - name: alice
    postgres_scram: "SCRAM-SHA-256$4096:1cqs/8TL14Rp37sA/yZ4iw==$It2FJWMm7IMObedMkwjZ+5DijdgG57qntpqxbTkdyZs=:Q2hTm1+ImYTLorJfDgfFdLPQql9gLIZEITECSHMCgoo="
accounts:
  - name: demo-postgres
    type: postgres
    host: 127.0.0.1
    database: demo
    user: pamtrail_demo
    secret: {env: DEMO_PW}
grants:
  - user: alice
    accounts: [demo-postgres]
`

func TestParseValidAppliesDefaults(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Parse([]byte(validBase), dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upload.Interval.D() != 10*time.Second || cfg.Spool.Fsync != "interval" || cfg.Accounts[0].Port != 5432 {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	if cfg.Spool.Dir != filepath.Join(dir, "spool") {
		t.Fatalf("spool dir not resolved against the config dir: %s", cfg.Spool.Dir)
	}
	if cfg.Accounts[0].FailurePolicy != "fail-open" || cfg.Accounts[0].Mode != "async" {
		t.Fatalf("account policy defaults: %+v", cfg.Accounts[0])
	}
	withMetrics, err := Parse([]byte(validBase+"metrics:\n  address: 127.0.0.1:9464\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if lag := withMetrics.Metrics.MaxUploadLag; lag == nil || *lag != DefaultMaxUploadLag {
		t.Fatalf("metrics.max_upload_lag default: %v", lag)
	}
	if _, ok := cfg.PostgresVerifier("alice"); !ok {
		t.Fatal("alice has no verifier")
	}
}

func TestValidationNamesTheField(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string // old, new applied to validBase
		append  string
		field   string
	}{
		{"bad port", [2]string{"database: demo", "database: demo\n    port: 70000"}, "", "accounts[0].port"},
		{"unknown grant account", [2]string{"accounts: [demo-postgres]", "accounts: [nope]"}, "", "grants[0].accounts[0]"},
		{"unknown grant user", [2]string{"- user: alice", "- user: bob"}, "", "grants[0].user"},
		{"bad verifier", [2]string{`postgres_scram: "SCRAM`, `postgres_scram: "MD5`}, "", "users[0].postgres_scram"},
		{"bad fsync", [2]string{"key_env: PAMTRAIL_SPOOL_KEY", "key_env: K\n  fsync: sometimes"}, "", "spool.fsync"},
		{"no fsync interval under always", [2]string{"key_env: PAMTRAIL_SPOOL_KEY", "key_env: K\n  fsync: always\n  fsync_interval: 0s"}, "", "spool.fsync_interval"},
		{"segment smaller than the largest record", [2]string{"key_env: PAMTRAIL_SPOOL_KEY", "key_env: K\n  segment_bytes: 16MiB"}, "", "spool.segment_bytes"},
		{"bad duration", [2]string{"key_env: PAMTRAIL_SPOOL_KEY", "key_env: K\nupload:\n  interval: soon"}, "", "soon"},
		{"missing database", [2]string{"database: demo", ""}, "", "accounts[0].database"},
		{"bad type", [2]string{"type: postgres", "type: mysql"}, "", "accounts[0].type"},
		{"bad address", [2]string{"address: 127.0.0.1:6432", "address: localhost"}, "", "postgres.address"},
		{"gc percent too low", [2]string{"key_env: PAMTRAIL_SPOOL_KEY", "key_env: K\ngateway:\n  gc_percent: 5"}, "", "gateway.gc_percent"},
		{"negative event loops", [2]string{"address: 127.0.0.1:6432", "address: 127.0.0.1:6432\n  event_loops: -1"}, "", "postgres.event_loops"},
		{"upload lag bound shorter than two uploads", [2]string{}, "metrics:\n  address: 127.0.0.1:9464\n  max_upload_lag: 15s\n", "metrics.max_upload_lag"},
		{"upload lag bound off", [2]string{}, "metrics:\n  address: 127.0.0.1:9464\n  max_upload_lag: 0s\n", ""},
		{"unknown key", [2]string{}, "bogus: 1\n", "bogus"},
		{"ssh account without known_hosts", [2]string{}, "ssh:\n  address: 127.0.0.1:2222\n", ""},
		{"both secret sources", [2]string{"secret: {env: DEMO_PW}", "secret: {env: A, file: /x}"}, "", "accounts[0].secret"},
		{"bad policy", [2]string{"key_env: PAMTRAIL_SPOOL_KEY", "key_env: K\nrecording:\n  failure_policy: maybe"}, "", "recording.failure_policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := validBase
			if tt.replace[0] != "" {
				if !strings.Contains(src, tt.replace[0]) {
					t.Fatalf("test setup: %q not in base", tt.replace[0])
				}
				src = strings.Replace(src, tt.replace[0], tt.replace[1], 1)
			}
			src += tt.append
			_, err := Parse([]byte(src), t.TempDir())
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %v does not name %q", err, tt.field)
			}
		})
	}
}

func TestEmptyFile(t *testing.T) {
	if _, err := Parse(nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("got %v", err)
	}
}

func TestAuthorize(t *testing.T) {
	cfg, err := Parse([]byte(validBase), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users = append(cfg.Users, User{Name: "bob", PostgresSCRAM: cfg.Users[0].PostgresSCRAM})
	tests := []struct {
		user, account, typ string
		want               error
	}{
		{"alice", "demo-postgres", "postgres", nil},
		{"alice", "nope", "postgres", ErrUnknownAccount},
		{"alice", "demo-postgres", "ssh", ErrUnknownAccount},
		{"bob", "demo-postgres", "postgres", ErrNoGrant},
	}
	for _, tt := range tests {
		_, err := cfg.Authorize(tt.user, tt.account, tt.typ)
		if !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
			t.Errorf("Authorize(%s,%s,%s) = %v, want %v", tt.user, tt.account, tt.typ, err, tt.want)
		}
	}
}

func TestSecretRef(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(good, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loose, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PAMTRAIL_TEST_SECRET", "from-env")
	tests := []struct {
		name    string
		ref     SecretRef
		want    string
		wantErr string
	}{
		{"file", SecretRef{File: good}, "s3cret", ""},
		{"env", SecretRef{Env: "PAMTRAIL_TEST_SECRET"}, "from-env", ""},
		{"unset env", SecretRef{Env: "PAMTRAIL_TEST_UNSET"}, "", "not set"},
		{"loose perms", SecretRef{File: loose}, "", "chmod 600"},
		{"missing file", SecretRef{File: filepath.Join(dir, "none")}, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ref.Resolve()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"4096": 4096, "64KiB": 64 << 10, "1 GiB": 1 << 30, "2MB": 2000000} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := ParseByteSize("lots"); err == nil {
		t.Error("want error")
	}
}

func TestQuickstartConfigParses(t *testing.T) {
	// The quickstart references runtime files under .pamtrail; only check
	// that everything except those references validates.
	raw, err := os.ReadFile("../../examples/quickstart/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(raw, t.TempDir())
	if err != nil && !strings.Contains(err.Error(), "_file") {
		t.Fatalf("quickstart config: %v", err)
	}
}

func TestEnvironmentExpansion(t *testing.T) {
	t.Setenv("PAMTRAIL_TEST_PG_PORT", "15432")
	tests := []struct {
		name, replace, wantErr string
		wantPort               int
	}{
		{"set variable", "host: 127.0.0.1\n    port: ${PAMTRAIL_TEST_PG_PORT}", "", 15432},
		{"default used", "host: 127.0.0.1\n    port: ${PAMTRAIL_TEST_UNSET:-6543}", "", 6543},
		{"unset without default", "host: 127.0.0.1\n    port: ${PAMTRAIL_TEST_UNSET}", "PAMTRAIL_TEST_UNSET is not set", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(validBase, "host: 127.0.0.1", tt.replace, 1)
			cfg, err := Parse([]byte(src), t.TempDir())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "line ") {
					t.Fatalf("err = %v, want %q with a line number", err, tt.wantErr)
				}
				return
			}
			if err != nil || cfg.Accounts[0].Port != tt.wantPort {
				t.Fatalf("port %v, err %v", cfg, err)
			}
			// The SCRAM verifier's bare "$" survives expansion.
			if _, ok := cfg.PostgresVerifier("alice"); !ok {
				t.Fatal("verifier damaged by expansion")
			}
		})
	}
}
