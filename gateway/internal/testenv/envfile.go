package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ParseEnvFile reads services.env: blank lines, # comments and lines of the
// form `[export ]NAME=VALUE`. VALUE is one shell word made of unquoted text,
// single-quoted literals and double-quoted strings (with \" \\ \$ \` escapes),
// concatenated the way a shell would:
//
//	export NAME='it'\''s'   # NAME is: it's
//
// Expansions ($VAR, `cmd`) are rejected rather than guessed at, because their
// value depends on the shell that sources the file.
func ParseEnvFile(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for lineNo := 1; sc.Scan(); lineNo++ {
		name, value, ok, err := parseEnvLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if ok {
			out[name] = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading env file: %w", err)
	}
	return out, nil
}

// parseEnvLine returns ok=false for lines that assign nothing.
func parseEnvLine(line string) (name, value string, ok bool, err error) {
	line = strings.TrimLeft(line, " \t")
	if line == "" || line[0] == '#' {
		return "", "", false, nil
	}
	if rest, found := strings.CutPrefix(line, "export"); found && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		line = strings.TrimLeft(rest, " \t")
	}
	name, raw, found := strings.Cut(line, "=")
	if !found {
		return "", "", false, fmt.Errorf("want NAME=VALUE, got %q", line)
	}
	if !isEnvName(name) {
		return "", "", false, fmt.Errorf("invalid variable name %q", name)
	}
	value, err = parseShellWord(raw)
	if err != nil {
		return "", "", false, fmt.Errorf("%s: %w", name, err)
	}
	return name, value, true, nil
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

var errExpansion = errors.New("shell expansion ($ or `) is not supported; quote the value with single quotes")

// parseShellWord decodes one shell word followed by optional blanks and an
// optional # comment.
func parseShellWord(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", errors.New("unterminated single quote")
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case '"':
			n, err := parseDoubleQuoted(s[i+1:], &b)
			if err != nil {
				return "", err
			}
			i += n + 1
		case '\\':
			if i+1 >= len(s) {
				return "", errors.New("trailing backslash")
			}
			i++
			b.WriteByte(s[i])
		case '$', '`':
			return "", errExpansion
		case ' ', '\t':
			rest := strings.TrimLeft(s[i:], " \t")
			if rest != "" && rest[0] != '#' {
				return "", fmt.Errorf("unexpected text after the value: %q (quote values containing blanks)", rest)
			}
			return b.String(), nil
		case ';', '&', '|', '<', '>', '(', ')':
			return "", fmt.Errorf("shell operator %q is not supported", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// parseDoubleQuoted decodes the inside of "..." (s starts after the opening
// quote) and returns how many bytes it consumed including the closing quote.
func parseDoubleQuoted(s string, b *strings.Builder) (int, error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return i + 1, nil
		case '\\':
			// Inside double quotes a backslash only escapes these; elsewhere
			// it stays literal, as in POSIX sh.
			if i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
				i++
				b.WriteByte(s[i])
			} else {
				b.WriteByte(c)
			}
		case '$', '`':
			return 0, errExpansion
		default:
			b.WriteByte(c)
		}
	}
	return 0, errors.New("unterminated double quote")
}
