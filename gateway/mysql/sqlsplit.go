package mysql

import "strings"

// splitStatements splits a COM_QUERY text into the statements the server
// will run one after the other when multi-statements are on: at every ';'
// outside quotes ('…', "…", `…`) and comments (-- , #, /* */). Empty
// statements are dropped; a text without a separator is returned whole.
func splitStatements(q string) []string {
	var out []string
	start := 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '\'', '"', '`':
			i = skipQuoted(q, i, c)
		case '#':
			i = skipLine(q, i)
		case '-':
			if strings.HasPrefix(q[i:], "--") && (i+2 == len(q) || q[i+2] == ' ' || q[i+2] == '\t' || q[i+2] == '\n' || q[i+2] == '\r') {
				i = skipLine(q, i)
			}
		case '/':
			if strings.HasPrefix(q[i:], "/*") {
				if end := strings.Index(q[i+2:], "*/"); end >= 0 {
					i += end + 3
				} else {
					i = len(q)
				}
			}
		case ';':
			if s := strings.TrimSpace(q[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(q[start:]); s != "" || len(out) == 0 {
		if s == "" {
			s = strings.TrimSpace(q)
		}
		out = append(out, s)
	}
	return out
}

// skipQuoted returns the index of the closing quote of the quoted run
// opening at i; a doubled quote and (outside backticks) a backslash escape
// do not close it.
func skipQuoted(q string, i int, quote byte) int {
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if quote != '`' {
				j++
			}
		case quote:
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j
		}
	}
	return len(q)
}

func skipLine(q string, i int) int {
	if nl := strings.IndexByte(q[i:], '\n'); nl >= 0 {
		return i + nl
	}
	return len(q)
}

// leadingKeyword is the statement's first word in upper case, after
// comments and an opening parenthesis; it names the command tag.
func leadingKeyword(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n(")
		switch {
		case strings.HasPrefix(s, "/*"):
			end := strings.Index(s, "*/")
			if end < 0 {
				return ""
			}
			s = s[end+2:]
		case strings.HasPrefix(s, "#"), strings.HasPrefix(s, "-- "):
			nl := strings.IndexByte(s, '\n')
			if nl < 0 {
				return ""
			}
			s = s[nl+1:]
		default:
			end := strings.IndexFunc(s, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_')
			})
			if end < 0 {
				end = len(s)
			}
			return strings.ToUpper(s[:end])
		}
	}
}
