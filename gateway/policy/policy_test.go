package policy

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pamtrail/pamtrail/gateway/config"
)

func quickstartSet(t testing.TB, mode string) *Set {
	t.Helper()
	s, err := Compile(&config.Policy{
		Name: "guard",
		Mode: mode,
		SQL: []config.SQLRule{
			{ID: "drop-database", Statement: "DROP DATABASE"},
			{ID: "alter-system", Statement: "alter system"},
			{ID: "copy-program", Pattern: `^copy\b.*\bprogram\b`},
			{ID: "truncate", Statement: "TRUNCATE"},
		},
		Commands: []config.CommandRule{
			{ID: "reboot", Program: "reboot"},
			{ID: "shutdown", Program: "shutdown"},
			{ID: "rm-root", Pattern: `^rm( -\S+)* /\*?$`},
		},
		Files: []config.FileRule{{ID: "etc-upload", Under: "/etc", Operations: []string{"upload"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSQL(t *testing.T) {
	s := quickstartSet(t, config.PolicyEnforce)
	tests := []struct {
		stmt string
		want string
	}{
		{"DROP DATABASE prod", "drop-database"},
		{"drop   database if exists prod", "drop-database"},
		{"/* hi */ DROP/**/DATABASE prod", "drop-database"},
		{"-- c\nDROP\n\tDATABASE x", "drop-database"},
		{"/* nested /* c */ */ drop database x", "drop-database"},
		{"ALTER SYSTEM SET work_mem = '1MB'", "alter-system"},
		{"COPY t TO PROGRAM 'rm -rf /'", "copy-program"},
		{"copy (select 1) to program 'id'", "copy-program"},
		{"truncate t", "truncate"},
		{"(TRUNCATE t)", "truncate"},
		{"SELECT 'DROP DATABASE x'", ""},
		{"select 1 -- drop database x", ""},
		{"DROP TABLE t", ""},
		{"COPY t TO STDOUT", ""},
		{"SELECT '/* not a comment */ drop database'", ""},
		{"", ""},
	}
	for _, tt := range tests {
		m := s.SQL(tt.stmt)
		got := ""
		if m != nil {
			got = m.Rule
			if !m.Blocks() || m.Policy != "guard" {
				t.Errorf("SQL(%q) = %+v, want an enforce match of policy guard", tt.stmt, m)
			}
		}
		if got != tt.want {
			t.Errorf("SQL(%q) rule = %q, want %q", tt.stmt, got, tt.want)
		}
	}
}

func TestCommand(t *testing.T) {
	s := quickstartSet(t, config.PolicyEnforce)
	tests := []struct {
		line string
		want string
	}{
		{"reboot", "reboot"},
		{"/sbin/reboot now", "reboot"},
		{"sudo reboot", "reboot"},
		{"sudo -u root -n reboot", "reboot"},
		{"FOO=1 env -i BAR=2 nohup reboot", "reboot"},
		{"echo hi; reboot", "reboot"},
		{"true && shutdown -h now", "shutdown"},
		{"ls | sudo shutdown", "shutdown"},
		{`bash -c "echo x; reboot"`, "reboot"},
		{`sh -c 'sh -c reboot'`, "reboot"},
		{"(reboot)", "reboot"},
		{"{ reboot; }", "reboot"},
		{"echo $(reboot)", "reboot"},
		{"re\\boot", "reboot"},
		{`"reboot"`, "reboot"},
		{"timeout 5 reboot", "reboot"},
		{"rm -rf /", "rm-root"},
		{"rm -r -f /", "rm-root"},
		{"sudo rm -rf --no-preserve-root /", "rm-root"},
		{"rm -rf /*", "rm-root"},
		{"rm -rf /tmp/x", ""},
		{"echo reboot", ""},
		{"cat /etc/shutdown.conf", ""},
		{"man reboot", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got := ""
		if m := s.Command(tt.line); m != nil {
			got = m.Rule
		}
		if got != tt.want {
			t.Errorf("Command(%q) = %q, want %q (commands %q)", tt.line, got, tt.want, SimpleCommands(tt.line))
		}
	}
}

func TestFile(t *testing.T) {
	s := quickstartSet(t, config.PolicyAudit)
	tests := []struct {
		op, path string
		want     bool
	}{
		{"upload", "/etc/passwd", true},
		{"upload", "/etc", true},
		{"upload", "/etc/ssh/sshd_config", true},
		{"upload", "/tmp/../etc/hosts", true},
		{"upload", "../../etc/hosts", true},
		{"upload", "/etcetera/x", false},
		{"upload", "/tmp/etc/x", false},
		{"upload", "notes.txt", false},
		{"download", "/etc/passwd", false},
		{"remove", "/etc/passwd", false},
	}
	for _, tt := range tests {
		m := s.File(tt.op, tt.path)
		if (m != nil) != tt.want {
			t.Errorf("File(%s, %s) = %+v, want match %v", tt.op, tt.path, m, tt.want)
		}
		if m != nil && m.Blocks() {
			t.Errorf("File(%s, %s): an audit policy must not block", tt.op, tt.path)
		}
	}
}

func TestNilSetAllows(t *testing.T) {
	var s *Set
	if s.SQL("drop database x") != nil || s.Command("reboot") != nil || s.File("upload", "/etc/x") != nil {
		t.Fatal("a nil set must allow everything")
	}
}

// FuzzNormalizeSQL: normalizing never panics, is idempotent, keeps
// valid UTF-8 valid and never grows the text.
func FuzzNormalizeSQL(f *testing.F) {
	for _, s := range []string{"DROP/**/DATABASE x", "select '--' -- c\n", "/* /* */", "'unterminated", `E'\'' ; x`, `"a""b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		n := NormalizeSQL(sql)
		if len(n) > len(sql) {
			t.Fatalf("normalized text grew: %q -> %q", sql, n)
		}
		if utf8.ValidString(sql) && !utf8.ValidString(n) {
			t.Fatalf("normalizing broke UTF-8: %q -> %q", sql, n)
		}
		if !strings.Contains(sql, "'") && !strings.Contains(sql, `"`) {
			if again := NormalizeSQL(n); again != n {
				t.Fatalf("not idempotent: %q -> %q -> %q", sql, n, again)
			}
		}
		_ = leadingWords(n, 4)
	})
}

// FuzzSimpleCommands: splitting never panics, never yields an empty
// command, and a program rule matches whatever a line starts a command with.
func FuzzSimpleCommands(f *testing.F) {
	for _, s := range []string{"sudo -u root reboot", `bash -c "a; b"`, "a|b&&c", `'x`, `"a\"`, "echo $(", "{ x; }", "\\"} {
		f.Add(s)
	}
	s := quickstartSet(f, config.PolicyEnforce)
	f.Fuzz(func(t *testing.T, line string) {
		for _, words := range SimpleCommands(line) {
			if len(words) == 0 {
				t.Fatalf("empty command from %q", line)
			}
		}
		_ = s.Command(line)
		if m := s.Command("reboot; " + line); m == nil && !strings.ContainsAny(line, `'"\`) {
			t.Fatalf("reboot before %q was not matched", line)
		}
	})
}

// A tree written at a path (recursive scp, rsync) could reach a guarded
// directory beneath it.
func TestFileTree(t *testing.T) {
	s := quickstartSet(t, config.PolicyEnforce)
	for p, want := range map[string]bool{"/": true, "/etc": true, "/etc/x": true, "/tmp": false, "/et": false, "relative": false} {
		if got := s.FileTree("upload", p) != nil; got != want {
			t.Errorf("FileTree(upload, %q) = %v, want %v", p, got, want)
		}
	}
	if s.FileTree("download", "/") != nil {
		t.Error("a download tree matched an upload rule")
	}
}
