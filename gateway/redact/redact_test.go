package redact

import (
	"strings"
	"testing"
)

func TestSQL(t *testing.T) {
	r := New(Options{})
	tests := []struct {
		name, in, want string
		n              int
	}{
		{"alter role password", `ALTER ROLE x PASSWORD 'canary-secret'`, `ALTER ROLE x PASSWORD [REDACTED]`, 1},
		{"encrypted password", `create user bob with encrypted password 'it''s secret' login`, `create user bob with encrypted password [REDACTED] login`, 1},
		{"dollar quoted", `ALTER USER a PASSWORD $$s3cr3t$$;`, `ALTER USER a PASSWORD [REDACTED];`, 1},
		{"identified by", `CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'pw1')`, `CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password [REDACTED])`, 1},
		{"conninfo", `SELECT dblink_connect('host=db user=u password=hunter2 dbname=x')`, `SELECT dblink_connect('host=db user=u password=[REDACTED] dbname=x')`, 1},
		{"pgcrypto key", `SELECT pgp_sym_encrypt(card, 'k3y-material') FROM cards`, `SELECT pgp_sym_encrypt(card, '[REDACTED]') FROM cards`, 1},
		{"nested call", `select crypt('pw', gen_salt('bf'))`, `select crypt('[REDACTED]', gen_salt('[REDACTED]'))`, 2},
		{"mysql identified by", `CREATE USER 'u'@'%' IDENTIFIED BY 'canary-1'`, `CREATE USER 'u'@'%' IDENTIFIED BY [REDACTED]`, 1},
		{"mysql identified with as", `ALTER USER u IDENTIFIED WITH mysql_native_password AS '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'`, `ALTER USER u IDENTIFIED WITH mysql_native_password AS [REDACTED]`, 1},
		{"mariadb via using password()", `ALTER USER u IDENTIFIED VIA ed25519 USING PASSWORD('canary-2')`, `ALTER USER u IDENTIFIED VIA ed25519 USING PASSWORD('[REDACTED]')`, 1},
		{"mysql set password", `SET PASSWORD FOR 'u'@'%' = "canary-3"`, `SET PASSWORD FOR 'u'@'%' = [REDACTED]`, 1},
		{"mysql replication", `CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='canary-4'`, `CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD=[REDACTED]`, 1},
		{"mysql aes key", `SELECT AES_ENCRYPT(card, 'k3y') FROM cards`, `SELECT AES_ENCRYPT(card, '[REDACTED]') FROM cards`, 1},
		{"plain select untouched", `SELECT password_hint FROM users WHERE id = 1`, `SELECT password_hint FROM users WHERE id = 1`, 0},
		{"no hints", `SELECT 1`, `SELECT 1`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := r.SQL(tt.in)
			if got != tt.want || n != tt.n {
				t.Fatalf("SQL(%q) = %q, %d; want %q, %d", tt.in, got, n, tt.want, tt.n)
			}
		})
	}
}

func TestShell(t *testing.T) {
	r := New(Options{})
	tests := []struct {
		name, in, secret string
	}{
		{"export token", `export GITHUB_TOKEN=ghp_abcdef123`, "ghp_abcdef123"},
		{"export quoted", `export DB_PASSWORD="p a s s"`, "p a s s"},
		{"inline env", `AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG aws s3 ls`, "wJalrXUtnFEMI/K7MDENG"},
		{"password flag", `psql --password=hunter2 -h db`, "hunter2"},
		{"mysql -p", `mysql -u root -phunter2 prod`, "hunter2"},
		{"sshpass", `sshpass -p 'pw99' ssh host`, "pw99"},
		{"bearer", `curl -H "Authorization: Bearer eyJhbGciOi.x.y" https://api`, "eyJhbGciOi.x.y"},
		{"aws key id", `aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE`, "AKIAIOSFODNN7EXAMPLE"},
		{"private key", "cat id\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\n", "b3BlbnNzaC1rZXk"},
		{"url creds", `git clone https://bob:tok3n@git.example/x.git`, "tok3n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := r.Shell(tt.in)
			if strings.Contains(got, tt.secret) || n == 0 || !strings.Contains(got, Mask) {
				t.Fatalf("Shell(%q) = %q (%d redactions); secret %q must be masked", tt.in, got, n, tt.secret)
			}
		})
	}
	for _, benign := range []string{"mkdir -p /tmp/x", "ls -la", "echo password reset done", "grep -r key ."} {
		if got, n := r.Shell(benign); got != benign || n != 0 {
			t.Errorf("Shell(%q) = %q, %d; want unchanged", benign, got, n)
		}
	}
}

func TestSQLParams(t *testing.T) {
	r := New(Options{})
	tests := []struct {
		name   string
		text   string
		params []string
		want   []string
	}{
		{"password param", `ALTER ROLE bob PASSWORD $1`, []string{"s3cret"}, []string{Mask}},
		{"function param", `SELECT pgp_sym_decrypt(data, $2) FROM t WHERE id = $1`, []string{"7", "key!"}, []string{"7", Mask}},
		{"ordinary", `SELECT * FROM t WHERE id = $1`, []string{"7"}, []string{"7"}},
		{"lower-case password param", "create user eve with password\n\t$2", []string{"x", "pw"}, []string{"x", Mask}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := r.SQLParams(tt.text, tt.params)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v want %v", got, tt.want)
			}
			if tt.params[0] == Mask {
				t.Fatal("input slice modified")
			}
		})
	}
}

func TestExtraRule(t *testing.T) {
	rule, err := NewRule("ticket", `TICKET-(?P<secret>\d+)`, "ticket")
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{ExtraShell: []Rule{rule}, ExtraSQL: []Rule{rule}})
	if got, n := r.Shell("close TICKET-1234"); got != "close TICKET-"+Mask || n != 1 {
		t.Fatalf("got %q %d", got, n)
	}
	if _, err := NewRule("bad", "(", ""); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("want error naming the rule, got %v", err)
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"ALTER ROLE x PASSWORD 'a'", "select crypt('a', gen_salt('bf'", "export A_TOKEN=", "-----BEGIN RSA PRIVATE KEY-----"} {
		f.Add(s)
	}
	r := New(Options{})
	f.Fuzz(func(t *testing.T, s string) {
		out, n := r.SQL(s)
		if n == 0 && out != s {
			t.Fatalf("changed without counting: %q -> %q", s, out)
		}
		out, n = r.Shell(s)
		if n == 0 && out != s {
			t.Fatalf("changed without counting: %q -> %q", s, out)
		}
	})
}

// BenchmarkSQLParamsNoSecret is the cost on every prepared-statement
// execution without a secret (pgbench -M prepared).
func BenchmarkSQLParamsNoSecret(b *testing.B) {
	r := New(Options{})
	q := "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"
	params := []string{"48213"}
	for b.Loop() {
		r.SQLParams(q, params)
	}
}

func BenchmarkSQLNoSecret(b *testing.B) {
	r := New(Options{})
	q := "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"
	for b.Loop() {
		r.SQL(q)
	}
}
