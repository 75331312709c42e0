// Package redact removes secrets from query and command text before anything
// is spooled, so a secret typed into a session never persists anywhere.
//
// Each rule has cheap literal hints checked first: almost no statement
// contains "password", so the regular expressions run only on the few that
// might need them and the per-query cost stays in nanoseconds.
package redact

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Mask replaces every redacted value.
const Mask = "[REDACTED]"

// Rule is one secret pattern. Submatch group "secret" (or, if absent, the
// whole match) is replaced by Mask.
type Rule struct {
	Name  string
	Hints []string // lower-case literals; the rule runs only if one occurs (empty: always)
	re    *regexp.Regexp
	group int
}

// NewRule compiles a rule; pattern may name a group (?P<secret>...).
func NewRule(name, pattern string, hints ...string) (Rule, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return Rule{}, fmt.Errorf("redaction rule %q: %w", name, err)
	}
	r := Rule{Name: name, Hints: hints, re: re}
	if i := re.SubexpIndex("secret"); i > 0 {
		r.group = i
	}
	return r, nil
}

func mustRule(name, pattern string, hints ...string) Rule {
	r, err := NewRule(name, pattern, hints...)
	if err != nil {
		panic(err)
	}
	return r
}

// sqlLiteral matches a standard or E-prefixed string literal, or a
// dollar-quoted one.
const sqlLiteral = `(?:[eE]?'(?:[^']|'')*'|\$[A-Za-z_]*\$[\s\S]*?\$[A-Za-z_]*\$)`

// SQLRules are the built-in rules for SQL text.
var SQLRules = []Rule{
	// CREATE/ALTER ROLE ... [ENCRYPTED] PASSWORD '...'; \password sends this too.
	mustRule("sql-password", `(?i)\bPASSWORD\s+(?P<secret>`+sqlLiteral+`)`, "password"),
	mustRule("sql-identified-by", `(?i)\bIDENTIFIED\s+BY\s+(?P<secret>`+sqlLiteral+`|"[^"]*"|[^\s;]+)`, "identified"),
	// MySQL: IDENTIFIED WITH plugin AS 'hash' / VIA plugin USING '...',
	// SET PASSWORD [FOR u] = '...', and replication passwords.
	mustRule("sql-identified-with", `(?i)\bIDENTIFIED\s+(?:WITH|VIA)\s+\w+\s+(?:AS|USING|BY)\s+(?P<secret>'(?:[^'\\]|''|\\.)*'|"[^"]*")`, "identified"),
	mustRule("sql-set-password", `(?i)\bSET\s+PASSWORD\b[^=;]*=\s*(?P<secret>'(?:[^'\\]|''|\\.)*'|"[^"]*")`, "password"),
	mustRule("sql-replication-password", `(?i)\b(?:MASTER|SOURCE)_PASSWORD\s*=\s*(?P<secret>'(?:[^'\\]|''|\\.)*'|"[^"]*")`, "_password"),
	// dblink / postgres_fdw connection strings and user mappings.
	mustRule("sql-conninfo-password", `(?i)\bpassword\s*=\s*(?P<secret>'(?:[^']|'')*'|[^\s';]+)`, "password"),
}

// ShellRules are the built-in rules for shell commands and output.
var ShellRules = []Rule{
	mustRule("shell-secret-assignment", `(?i)\b\w*(?:SECRET|TOKEN|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|ACCESS_?KEY)\w*=(?P<secret>"[^"]*"|'[^']*'|\S+)`,
		"secret", "token", "passw", "passphrase", "key"),
	mustRule("shell-password-flag", `(?i)--password[= ](?P<secret>"[^"]*"|'[^']*'|\S+)`, "--password"),
	mustRule("shell-mysql-p", `\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n|;&]*?\s-p(?P<secret>[^\s-]\S*)`, "mysql", "mariadb"),
	mustRule("shell-sshpass", `\bsshpass\s+-p\s*(?P<secret>"[^"]*"|'[^']*'|\S+)`, "sshpass"),
	mustRule("http-authorization", `(?i)\bauthorization:\s*(?:bearer|basic|token)\s+(?P<secret>[A-Za-z0-9._~+/=-]+)`, "authorization"),
	mustRule("aws-access-key-id", `\b(?P<secret>(?:AKIA|ASIA)[0-9A-Z]{16})\b`, "akia", "asia"),
	mustRule("private-key-block", `(?P<secret>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$))`, "private key"),
	mustRule("url-credentials", `\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<secret>[^/\s@]+)@`, "://"),
}

// Redactor applies a rule set.
type Redactor struct {
	sql   []Rule
	shell []Rule
	// sensitiveFuncs are SQL functions whose literal arguments are secrets
	// (pgp_sym_encrypt(data, 'key')).
	sensitiveFuncs *regexp.Regexp
	funcHints      []string
}

// Options extends the built-in rules.
type Options struct {
	ExtraSQL           []Rule
	ExtraShell         []Rule
	SensitiveFunctions []string // default: pgcrypto's keyed functions
}

// DefaultSensitiveFunctions are functions taking a key or password:
// pgcrypto's and MySQL's.
var DefaultSensitiveFunctions = []string{
	"pgp_sym_encrypt", "pgp_sym_decrypt", "pgp_sym_encrypt_bytea", "pgp_sym_decrypt_bytea",
	"pgp_pub_decrypt", "pgp_pub_decrypt_bytea", "encrypt", "decrypt", "encrypt_iv", "decrypt_iv",
	"hmac", "crypt", "set_config",
	// MySQL and MariaDB.
	"password", "old_password", "aes_encrypt", "aes_decrypt", "des_encrypt", "des_decrypt",
}

// New builds a Redactor with the built-in rules plus opts.
func New(opts Options) *Redactor {
	r := &Redactor{
		sql:   append(append([]Rule(nil), SQLRules...), opts.ExtraSQL...),
		shell: append(append([]Rule(nil), ShellRules...), opts.ExtraShell...),
	}
	funcs := opts.SensitiveFunctions
	if funcs == nil {
		funcs = DefaultSensitiveFunctions
	}
	if len(funcs) > 0 {
		quoted := make([]string, len(funcs))
		for i, f := range funcs {
			quoted[i] = regexp.QuoteMeta(strings.ToLower(f))
			r.funcHints = append(r.funcHints, strings.ToLower(f))
		}
		r.sensitiveFuncs = regexp.MustCompile(`(?i)\b(?:` + strings.Join(quoted, "|") + `)\s*\(`)
	}
	return r
}

// SQL redacts a statement; it returns the text and the number of redactions.
func (r *Redactor) SQL(text string) (string, int) {
	out, n := apply(r.sql, text)
	// A function call needs "(": most statements skip the per-name scan.
	if r.sensitiveFuncs != nil && strings.IndexByte(out, '(') >= 0 && containsAnyFold(out, r.funcHints) {
		var m int
		out, m = r.redactFunctionArgs(out)
		n += m
	}
	return out, n
}

// Shell redacts a command line or terminal output.
func (r *Redactor) Shell(text string) (string, int) { return apply(r.shell, text) }

// SQLParams masks bind parameters that a statement uses as a secret
// (PASSWORD $1, or any parameter of a sensitive function).
func (r *Redactor) SQLParams(text string, params []string) ([]string, int) {
	if len(params) == 0 || !strings.Contains(text, "$") {
		return params, 0
	}
	var idx []int
	// The regexp only runs on statements that can match it: this is on
	// the path of every prepared-statement execution.
	if indexFold(text, "password") >= 0 {
		for _, m := range paramAfterPassword.FindAllStringSubmatch(text, -1) {
			if i, err := strconv.Atoi(m[1]); err == nil {
				idx = append(idx, i)
			}
		}
	}
	if r.sensitiveFuncs != nil && strings.IndexByte(text, '(') >= 0 && containsAnyFold(text, r.funcHints) {
		for _, loc := range r.sensitiveFuncs.FindAllStringIndex(text, -1) {
			args := text[loc[1]:closingParen(text, loc[1])]
			for _, m := range paramRef.FindAllStringSubmatch(args, -1) {
				if i, err := strconv.Atoi(m[1]); err == nil {
					idx = append(idx, i)
				}
			}
		}
	}
	if len(idx) == 0 {
		return params, 0
	}
	out := append([]string(nil), params...)
	n := 0
	for _, i := range idx {
		if i >= 1 && i <= len(out) && out[i-1] != Mask {
			out[i-1] = Mask
			n++
		}
	}
	return out, n
}

var (
	paramAfterPassword = regexp.MustCompile(`(?i)\bPASSWORD\s+\$(\d+)`)
	paramRef           = regexp.MustCompile(`\$(\d+)`)
	literalInArgs      = regexp.MustCompile(sqlLiteral)
)

func (r *Redactor) redactFunctionArgs(text string) (string, int) {
	locs := r.sensitiveFuncs.FindAllStringIndex(text, -1)
	if len(locs) == 0 {
		return text, 0
	}
	var b strings.Builder
	n, last := 0, 0
	for _, loc := range locs {
		if loc[1] < last {
			continue
		}
		end := closingParen(text, loc[1])
		b.WriteString(text[last:loc[1]])
		args := literalInArgs.ReplaceAllStringFunc(text[loc[1]:end], func(string) string {
			n++
			return "'" + Mask + "'"
		})
		b.WriteString(args)
		last = end
	}
	b.WriteString(text[last:])
	return b.String(), n
}

// closingParen finds the index of the parenthesis closing the call whose
// arguments start at from (or len(s)), skipping quoted literals.
func closingParen(s string, from int) int {
	depth := 1
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '\'':
			for i++; i < len(s) && s[i] != '\''; i++ {
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(s)
}

func apply(rules []Rule, text string) (string, int) {
	total := 0
	for i := range rules {
		rule := &rules[i]
		if len(rule.Hints) > 0 && !containsAnyFold(text, rule.Hints) {
			continue
		}
		var n int
		text, n = rule.replace(text)
		total += n
	}
	return text, total
}

func (r *Rule) replace(text string) (string, int) {
	matches := r.re.FindAllStringSubmatchIndex(text, -1)
	if len(matches) == 0 {
		return text, 0
	}
	var b strings.Builder
	last, n := 0, 0
	for _, m := range matches {
		start, end := m[0], m[1]
		if r.group > 0 {
			start, end = m[2*r.group], m[2*r.group+1]
		}
		if start < 0 || start < last {
			continue
		}
		b.WriteString(text[last:start])
		b.WriteString(Mask)
		last = end
		n++
	}
	b.WriteString(text[last:])
	return b.String(), n
}

// containsAnyFold reports whether s contains any of the lower-case needles,
// ignoring ASCII case, without allocating.
func containsAnyFold(s string, needles []string) bool {
	for _, n := range needles {
		if indexFold(s, n) >= 0 {
			return true
		}
	}
	return false
}

func indexFold(s, lowerNeedle string) int {
	n := len(lowerNeedle)
	if n == 0 {
		return 0
	}
	first := lowerNeedle[0]
	for i := 0; i+n <= len(s); i++ {
		if lower(s[i]) != first {
			continue
		}
		j := 1
		for j < n && lower(s[i+j]) == lowerNeedle[j] {
			j++
		}
		if j == n {
			return i
		}
	}
	return -1
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
