package postgres

import "strings"

// splitStatements splits the text of a simple-protocol Query message into
// the statements the server will run, one response each, in order.
//
// It follows psql's lexer (psqlscan.l) rather than a full grammar: a
// semicolon ends a statement unless it is inside a string ('...', E'...'
// with backslash escapes, "identifier", $tag$...$tag$), a comment (-- or
// nested /* */), parentheses (CREATE RULE ... DO (a; b)), or a BEGIN ... END
// block of a SQL-standard function body (BEGIN ATOMIC). Statements holding
// only whitespace and comments are dropped, as the server's grammar drops
// them. When nothing is left the server answers EmptyQueryResponse, so the
// whole text is returned as the one "statement".
func splitStatements(sql string) []string {
	var (
		out        []string
		start      int
		hasToken   bool // the current statement has more than comments
		parenDepth int
		beginDepth int
		identCount int
	)
	emit := func(end int) {
		if hasToken {
			out = append(out, strings.TrimSpace(sql[start:end]))
		}
		start, hasToken, parenDepth, beginDepth, identCount = end+1, false, 0, 0, 0
	}
	n := len(sql)
	for i := 0; i < n; {
		c := sql[i]
		switch {
		case c == '-' && i+1 < n && sql[i+1] == '-':
			i = skipLineComment(sql, i)
		case c == '/' && i+1 < n && sql[i+1] == '*':
			i = skipBlockComment(sql, i)
		case c == '\'':
			hasToken = true
			i = skipQuoted(sql, i, '\'', isEscapeStringStart(sql, i))
		case c == '"':
			hasToken = true
			i = skipQuoted(sql, i, '"', false)
		case c == '$' && (i == 0 || !isIdentChar(sql[i-1])):
			hasToken = true
			if tag, ok := dollarTag(sql, i); ok {
				if end := strings.Index(sql[i+len(tag):], tag); end >= 0 {
					i += len(tag) + end + len(tag)
				} else {
					i = n
				}
			} else {
				i++
			}
		case c == '(':
			hasToken = true
			parenDepth++
			i++
		case c == ')':
			hasToken = true
			if parenDepth > 0 {
				parenDepth--
			}
			i++
		case c == ';':
			if parenDepth == 0 && beginDepth == 0 {
				emit(i)
			}
			i++
		case isIdentStart(c):
			j := i + 1
			for j < n && isIdentChar(sql[j]) {
				j++
			}
			hasToken = true
			identCount++
			word := sql[i:j]
			switch {
			case strings.EqualFold(word, "begin"), strings.EqualFold(word, "case"):
				// As the first word, BEGIN starts a transaction block.
				if identCount > 1 {
					beginDepth++
				}
			case strings.EqualFold(word, "end"):
				if beginDepth > 0 {
					beginDepth--
				}
			}
			i = j
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		default:
			hasToken = true
			i++
		}
	}
	emit(n)
	if len(out) == 0 {
		return []string{strings.TrimSpace(sql)}
	}
	return out
}

func skipLineComment(sql string, i int) int {
	if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(sql)
}

// skipBlockComment skips a /* */ comment; they nest in PostgreSQL.
func skipBlockComment(sql string, i int) int {
	depth := 0
	for i < len(sql) {
		switch {
		case strings.HasPrefix(sql[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(sql[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return i
}

// skipQuoted skips a quoted string or identifier starting at sql[i] == q.
// A doubled quote stands for itself; in E'...' strings a backslash escapes.
func skipQuoted(sql string, i int, q byte, backslash bool) int {
	for i++; i < len(sql); i++ {
		switch sql[i] {
		case '\\':
			if backslash {
				i++
			}
		case q:
			if i+1 < len(sql) && sql[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return i
}

// isEscapeStringStart reports whether the quote at sql[i] opens an E'...' string.
func isEscapeStringStart(sql string, i int) bool {
	if i == 0 || (sql[i-1] != 'E' && sql[i-1] != 'e') {
		return false
	}
	return i == 1 || !isIdentChar(sql[i-2])
}

// dollarTag returns the $tag$ opening a dollar-quoted string at sql[i].
func dollarTag(sql string, i int) (string, bool) {
	j := i + 1
	if j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
		return "", false // $1 is a parameter
	}
	for j < len(sql) && sql[j] != '$' {
		if !isIdentChar(sql[j]) || sql[j] == '$' {
			return "", false
		}
		j++
	}
	if j >= len(sql) {
		return "", false
	}
	return sql[i : j+1], true
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}
