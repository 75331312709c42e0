package policy

import (
	"path"
	"strings"
)

// NormalizeSQL removes comments (-- and nested /* */) outside string
// literals and quoted identifiers, and collapses whitespace, so that
// DROP/**/DATABASE and drop\n  database read the same.
func NormalizeSQL(sql string) string {
	var b strings.Builder
	b.Grow(len(sql))
	space := false
	put := func(c byte) {
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(c)
	}
	n := len(sql)
	for i := 0; i < n; {
		c := sql[i]
		switch {
		case c == '-' && i+1 < n && sql[i+1] == '-':
			for i < n && sql[i] != '\n' {
				i++
			}
			space = true
		case c == '/' && i+1 < n && sql[i+1] == '*':
			depth := 0
			for i < n {
				if sql[i] == '/' && i+1 < n && sql[i+1] == '*' {
					depth++
					i += 2
				} else if sql[i] == '*' && i+1 < n && sql[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
			space = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			space = true
			i++
		case c == '\'' || c == '"':
			j := i + 1
			for j < n {
				if sql[j] == c {
					if j+1 < n && sql[j+1] == c {
						j += 2
						continue
					}
					break
				}
				if c == '\'' && sql[j] == '\\' && j+1 < n {
					j++ // E'' escapes; harmless for standard strings here
				}
				j++
			}
			end := min(j+1, n)
			put(c)
			b.WriteString(sql[i+1 : end])
			i = end
		default:
			put(c)
			i++
		}
	}
	return b.String()
}

// SimpleCommands splits a shell command line into its simple commands
// (separated by ; & && || | and newlines, outside quotes), each as words
// with quotes removed, and looks through wrappers: variable assignments,
// sudo/doas/env/exec/nohup/nice/time/command/timeout and their options,
// and sh -c / bash -c scripts, whose commands are returned too. Commands
// without words are dropped.
func SimpleCommands(line string) [][]string {
	return simpleCommands(line, 0)
}

const maxNesting = 4

func simpleCommands(line string, depth int) [][]string {
	var out [][]string
	for _, words := range splitLine(line) {
		words = unwrap(words)
		if len(words) == 0 {
			continue
		}
		out = append(out, words)
		if depth < maxNesting && isShell(path.Base(words[0])) {
			for i := 1; i+1 < len(words); i++ {
				if strings.HasPrefix(words[i], "-") && strings.Contains(words[i], "c") && !strings.HasPrefix(words[i], "--") {
					out = append(out, simpleCommands(words[i+1], depth+1)...)
					break
				}
			}
		}
	}
	return out
}

func isShell(p string) bool {
	switch p {
	case "sh", "bash", "dash", "zsh", "ksh", "ash", "busybox":
		return true
	}
	return false
}

// wrapperArgs are options of a wrapper that take a value.
var wrapperArgs = map[string]map[string]bool{
	"sudo":    {"-u": true, "-g": true, "-C": true, "-D": true, "-h": true, "-p": true, "-r": true, "-t": true, "-U": true, "-T": true},
	"doas":    {"-u": true, "-C": true},
	"env":     {"-u": true, "-C": true, "-S": true},
	"nice":    {"-n": true},
	"timeout": {"-s": true, "-k": true},
	"ionice":  {"-c": true, "-n": true},
	"nohup":   {},
	"exec":    {"-a": true},
	"command": {},
	"time":    {"-f": true, "-o": true},
	"builtin": {},
	"stdbuf":  {"-i": true, "-o": true, "-e": true},
}

// unwrap drops leading assignments and wrappers, returning the words of
// the command that really runs.
func unwrap(words []string) []string {
	for guard := 0; len(words) > 0 && guard < 16; guard++ {
		w := words[0]
		if isAssignment(w) {
			words = words[1:]
			continue
		}
		args, ok := wrapperArgs[path.Base(w)]
		if !ok {
			return words
		}
		words = words[1:]
		for len(words) > 0 {
			o := words[0]
			if o == "--" {
				words = words[1:]
				break
			}
			if isAssignment(o) {
				words = words[1:]
				continue
			}
			if !strings.HasPrefix(o, "-") || o == "-" {
				break
			}
			words = words[1:]
			if args[o] && len(words) > 0 {
				words = words[1:]
			}
		}
		if path.Base(w) == "timeout" && len(words) > 0 {
			words = words[1:] // the duration
		}
	}
	return words
}

func isAssignment(w string) bool {
	eq := strings.IndexByte(w, '=')
	if eq <= 0 {
		return false
	}
	for i := 0; i < eq; i++ {
		c := w[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// splitLine tokenizes a line the way a POSIX shell splits words: quotes
// group, backslash escapes, and ; & | and newlines separate commands.
// Parentheses and braces of subshells and groups are separators too, so
// (reboot) and { reboot; } are seen.
func splitLine(line string) [][]string {
	var (
		cmds  [][]string
		words []string
		cur   strings.Builder
		inTok bool
	)
	endWord := func() {
		if inTok {
			words = append(words, cur.String())
			cur.Reset()
			inTok = false
		}
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
			words = nil
		}
	}
	n := len(line)
	for i := 0; i < n; i++ {
		c := line[i]
		switch {
		case c == '\\' && i+1 < n:
			i++
			if line[i] != '\n' {
				cur.WriteByte(line[i])
				inTok = true
			}
		case c == '\'':
			inTok = true
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				cur.WriteString(line[i+1:])
				i = n
			} else {
				cur.WriteString(line[i+1 : i+1+j])
				i += j + 1
			}
		case c == '"':
			inTok = true
			for i++; i < n && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < n && strings.IndexByte("\\\"$`", line[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(line[i])
			}
		case c == ' ' || c == '\t':
			endWord()
		case c == ';' || c == '&' || c == '|' || c == '\n' || c == '\r' || c == '(' || c == ')' || c == '`':
			endCmd()
		case (c == '{' || c == '}') && !inTok && (i+1 == n || line[i+1] == ' ' || line[i+1] == ';'):
			endCmd()
		case c == '$' && i+1 < n && line[i+1] == '(':
			endCmd()
			i++
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	endCmd()
	return cmds
}
