package postgres

import (
	"reflect"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{name: "single", sql: "select 1", want: []string{"select 1"}},
		{name: "trailing semicolon", sql: "select 1;", want: []string{"select 1"}},
		{name: "two", sql: "select 1; select 2", want: []string{"select 1", "select 2"}},
		{name: "empty statements dropped", sql: ";; select 1 ;; ; select 2;;", want: []string{"select 1", "select 2"}},
		{name: "semicolon in string", sql: "select 'a;b'; select 2", want: []string{"select 'a;b'", "select 2"}},
		{name: "doubled quote", sql: "select 'it''s;'; select 2", want: []string{"select 'it''s;'", "select 2"}},
		{name: "escape string", sql: `select E'\';'; select 2`, want: []string{`select E'\';'`, "select 2"}},
		{name: "backslash in standard string", sql: `select '\'; select 2`, want: []string{`select '\'`, "select 2"}},
		{name: "quoted identifier", sql: `select 1 as "a;""b"; select 2`, want: []string{`select 1 as "a;""b"`, "select 2"}},
		{name: "dollar quote", sql: "do $$ begin perform 1; end $$; select 2", want: []string{"do $$ begin perform 1; end $$", "select 2"}},
		{name: "tagged dollar quote", sql: "select $fn$ ; $$ ; $fn$; select 2", want: []string{"select $fn$ ; $$ ; $fn$", "select 2"}},
		{name: "positional parameter is no dollar quote", sql: "select $1; select 2", want: []string{"select $1", "select 2"}},
		{name: "dollar inside identifier", sql: "select a$b$ from t; select 2", want: []string{"select a$b$ from t", "select 2"}},
		{name: "line comment", sql: "select 1 -- ; not a split\n; select 2", want: []string{"select 1 -- ; not a split", "select 2"}},
		{name: "nested block comment", sql: "select /* a /* ; */ ; */ 1; select 2", want: []string{"select /* a /* ; */ ; */ 1", "select 2"}},
		{name: "comment-only statement dropped", sql: "select 1; -- done\n", want: []string{"select 1"}},
		{name: "only comments", sql: " /* x */ -- y", want: []string{"/* x */ -- y"}},
		{name: "empty", sql: "", want: []string{""}},
		{name: "parentheses (CREATE RULE)", sql: "create rule r as on insert to t do also (insert into a values (1); insert into b values (2)); select 2",
			want: []string{"create rule r as on insert to t do also (insert into a values (1); insert into b values (2))", "select 2"}},
		{name: "begin atomic body", sql: "create function f() returns int begin atomic select 1; select 2; end; select 3",
			want: []string{"create function f() returns int begin atomic select 1; select 2; end", "select 3"}},
		{name: "transaction begin is not a block", sql: "begin; select 1; commit", want: []string{"begin", "select 1", "commit"}},
		{name: "case end balanced", sql: "select case when true then 1 end; select 2", want: []string{"select case when true then 1 end", "select 2"}},
		{name: "unterminated string swallows the rest", sql: "select 'abc; select 2", want: []string{"select 'abc; select 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitStatements(tt.sql); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("splitStatements(%q) = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}

func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{"select 1; select 2", "do $$ ; $$", "select E'\\';'", "/* /* */ */;", "$a$", "create function f() begin atomic select 1; end"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmts := splitStatements(sql)
		if len(stmts) == 0 {
			t.Fatal("no statements")
		}
		total := 0
		for _, s := range stmts {
			total += len(s)
		}
		if total > len(sql) {
			t.Fatalf("statements longer than the input: %q", stmts)
		}
	})
}
