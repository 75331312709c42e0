// Package policy decides whether an action in a session is allowed: a SQL
// statement, a shell command line, or a file-transfer operation. It compiles
// an account's config.Policy once and answers with the rule that matched.
// Engines enforce the answer (enforce mode) or only record it (audit mode);
// this package knows no protocol.
//
// Rules look at what is executed, not at keystrokes: a SQL statement as the
// server will receive it (comments removed, whitespace collapsed), a command
// line as the shell accepted it (read off the emulated screen, so completion
// and history are seen), each simple command of a line (after ; && || |),
// past wrappers such as sudo, env, exec and sh -c.
package policy

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/pamtrail/pamtrail/gateway/config"
)

// Match is the rule an action matched.
type Match struct {
	Policy string
	Rule   string
	Mode   string // config.PolicyEnforce or config.PolicyAudit
}

// Blocks reports whether the action must be stopped (enforce mode).
func (m *Match) Blocks() bool { return m != nil && m.Mode == config.PolicyEnforce }

// Set is a compiled policy. A nil *Set allows everything.
type Set struct {
	name, mode string
	sql        []sqlRule
	commands   []commandRule
	files      []config.FileRule
}

type sqlRule struct {
	id       string
	keywords []string // upper-case leading keywords
	re       *regexp.Regexp
}

type commandRule struct {
	id      string
	program string
	re      *regexp.Regexp
}

// Compile builds a Set from a validated policy; nil gives nil.
func Compile(p *config.Policy) (*Set, error) {
	if p == nil {
		return nil, nil
	}
	s := &Set{name: p.Name, mode: p.Mode, files: p.Files}
	for _, r := range p.SQL {
		rule := sqlRule{id: r.ID}
		if r.Statement != "" {
			rule.keywords = strings.Fields(strings.ToUpper(r.Statement))
		} else {
			re, err := regexp.Compile("(?i)" + r.Pattern)
			if err != nil {
				return nil, fmt.Errorf("policy %s rule %s: %w", p.Name, r.ID, err)
			}
			rule.re = re
		}
		s.sql = append(s.sql, rule)
	}
	for _, r := range p.Commands {
		rule := commandRule{id: r.ID, program: r.Program}
		if r.Pattern != "" {
			re, err := regexp.Compile(r.Pattern)
			if err != nil {
				return nil, fmt.Errorf("policy %s rule %s: %w", p.Name, r.ID, err)
			}
			rule.re = re
		}
		s.commands = append(s.commands, rule)
	}
	return s, nil
}

// HasSQL, HasCommands and HasFiles tell an engine which checks it needs.
func (s *Set) HasSQL() bool      { return s != nil && len(s.sql) > 0 }
func (s *Set) HasCommands() bool { return s != nil && len(s.commands) > 0 }
func (s *Set) HasFiles() bool    { return s != nil && len(s.files) > 0 }

// Enforces reports whether matches block (enforce mode) rather than flag.
func (s *Set) Enforces() bool { return s != nil && s.mode == config.PolicyEnforce }

func (s *Set) match(rule string) *Match { return &Match{Policy: s.name, Rule: rule, Mode: s.mode} }

// SQL checks one statement (a Parse's text, or one statement of a simple
// Query split the way the server splits it).
func (s *Set) SQL(statement string) *Match {
	if !s.HasSQL() {
		return nil
	}
	norm := NormalizeSQL(statement)
	words := leadingWords(norm, 4)
	for _, r := range s.sql {
		if r.re != nil && r.re.MatchString(norm) || r.keywords != nil && hasPrefixWords(words, r.keywords) {
			return s.match(r.id)
		}
	}
	return nil
}

// Command checks a shell command line: each of its simple commands.
func (s *Set) Command(line string) *Match {
	if !s.HasCommands() {
		return nil
	}
	for _, words := range SimpleCommands(line) {
		joined := strings.Join(words, " ")
		for _, r := range s.commands {
			if r.program != "" && path.Base(words[0]) == r.program || r.re != nil && r.re.MatchString(joined) {
				return s.match(r.id)
			}
		}
	}
	return nil
}

// File checks a file operation (one of config.FileOperations) on a path.
// A relative path that climbs out of the login directory (../) could be
// anywhere, so it is taken to be under every guarded directory.
func (s *Set) File(op, p string) *Match {
	if !s.HasFiles() || p == "" {
		return nil
	}
	clean := path.Clean(p)
	escapes := !path.IsAbs(clean) && (clean == ".." || strings.HasPrefix(clean, "../"))
	for _, r := range s.files {
		if !slices.Contains(r.Operations, op) {
			continue
		}
		if escapes || clean == r.Under || r.Under == "/" && path.IsAbs(clean) || strings.HasPrefix(clean, r.Under+"/") {
			return s.match(r.ID)
		}
	}
	return nil
}

// FileTree checks an operation that may write a whole tree at p (a
// recursive scp or an rsync upload, whose file names the gateway does not
// see before they are written): it also matches when a guarded directory
// lies under p, since the tree could reach into it.
func (s *Set) FileTree(op, p string) *Match {
	if m := s.File(op, p); m != nil || !s.HasFiles() || p == "" {
		return m
	}
	clean := path.Clean(p)
	for _, r := range s.files {
		if slices.Contains(r.Operations, op) && path.IsAbs(clean) && (clean == "/" || strings.HasPrefix(r.Under, clean+"/")) {
			return s.match(r.ID)
		}
	}
	return nil
}

func hasPrefixWords(words, keywords []string) bool {
	if len(words) < len(keywords) {
		return false
	}
	for i, k := range keywords {
		if words[i] != k {
			return false
		}
	}
	return true
}

// leadingWords returns up to n leading keywords of normalized SQL,
// upper-cased; a leading parenthesis is skipped.
func leadingWords(norm string, n int) []string {
	norm = strings.TrimLeft(norm, "( ")
	var out []string
	for len(out) < n && norm != "" {
		end := strings.IndexFunc(norm, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_')
		})
		if end == 0 {
			break
		}
		if end < 0 {
			end = len(norm)
		}
		out = append(out, strings.ToUpper(norm[:end]))
		norm = strings.TrimLeft(norm[end:], " ")
	}
	return out
}
