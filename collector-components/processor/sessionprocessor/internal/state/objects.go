// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package state // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"

import (
	"slices"
	"strings"
)

// maxObjects bounds each list of objects a session remembers for its summary
// (tables, files, hosts): a summary names a handful, and the state must stay
// small however long the session runs.
const maxObjects = 20

// ObjectSet is a small sorted set of names. Beyond maxObjects it keeps the
// names that sort first, so the set is the same whichever collector saw
// which record first.
type ObjectSet []string

func (s *ObjectSet) add(name string) {
	i, found := slices.BinarySearch(*s, name)
	if name == "" || found || i >= maxObjects {
		return
	}
	*s = slices.Insert(*s, i, name)
	if len(*s) > maxObjects {
		*s = (*s)[:maxObjects]
	}
}

// sqlTableKeywords are the words after which a SQL statement names a table.
var sqlTableKeywords = map[string]bool{
	"from": true, "join": true, "into": true, "update": true, "table": true, "truncate": true, "copy": true,
}

// sqlSkipWords may sit between a table keyword and the table name, or follow
// a keyword without naming a table (FROM (SELECT ...)).
var sqlSkipWords = map[string]bool{
	"only": true, "if": true, "not": true, "exists": true, "lateral": true, "table": true,
}

// sqlTables returns the tables a statement names after FROM, JOIN, INTO,
// UPDATE, TABLE, TRUNCATE and COPY, and separately those it drops. It is a
// word scanner, not a parser: cheap enough to run on every query, good enough
// to name the objects in a summary.
func sqlTables(query string, touched, dropped *ObjectSet) {
	words := sqlWords(query)
	for i := 0; i < len(words); i++ {
		if !sqlTableKeywords[words[i]] {
			continue
		}
		isDrop := words[i] == "table" && i > 0 && words[i-1] == "drop"
		j := i + 1
		for j < len(words) && sqlSkipWords[words[j]] {
			j++
		}
		if j >= len(words) || !isIdentifierStart(words[j][0]) || sqlKeyword(words[j]) {
			continue
		}
		touched.add(words[j])
		if isDrop {
			dropped.add(words[j])
		}
	}
}

// sqlWords lower-cases query and splits it into identifier-like words (letters,
// digits, _, $, ., and double-quoted identifiers); everything else separates.
func sqlWords(query string) []string {
	var words []string
	start := -1
	lower := strings.ToLower(query)
	for i := 0; i <= len(lower); i++ {
		identChar := i < len(lower) && isIdentifierChar(lower[i])
		if identChar && start < 0 {
			start = i
		}
		if !identChar && start >= 0 {
			words = append(words, lower[start:i])
			start = -1
		}
	}
	return words
}

func isIdentifierChar(c byte) bool {
	return c == '_' || c == '$' || c == '.' || c == '"' || c >= 0x80 ||
		(c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
}

func isIdentifierStart(c byte) bool {
	return c == '_' || c == '"' || c >= 0x80 || (c >= 'a' && c <= 'z')
}

// sqlKeyword lists words that follow a table keyword without being a table.
func sqlKeyword(w string) bool {
	switch w {
	case "select", "values", "with", "set", "where", "as", "to", "stdout", "stdin", "program":
		return true
	}
	return false
}

// shellObjects collects the absolute paths and remote hosts a command line
// names: tokens starting with / or ~/, user@host, host:path of scp/rsync, and
// URL hosts.
func shellObjects(command string, files, hosts *ObjectSet) {
	fields := strings.Fields(command)
	copyTool := len(fields) > 0 && (fields[0] == "scp" || fields[0] == "rsync" || fields[0] == "sftp")
	for _, f := range fields {
		f = strings.Trim(f, `'";|&()<>`)
		switch {
		case strings.HasPrefix(f, "/") && len(f) > 1, strings.HasPrefix(f, "~/"):
			files.add(f)
		case strings.Contains(f, "://"):
			rest := f[strings.Index(f, "://")+3:]
			if i := strings.IndexAny(rest, "/:?#"); i >= 0 {
				rest = rest[:i]
			}
			hosts.add(afterAt(rest))
		case strings.Contains(f, "@") && !strings.HasPrefix(f, "-"):
			host := afterAt(f)
			if i := strings.IndexByte(host, ':'); i >= 0 {
				host = host[:i]
			}
			hosts.add(host)
		case copyTool && strings.Contains(f, ":") && !strings.HasPrefix(f, "-"):
			hosts.add(f[:strings.IndexByte(f, ':')])
		}
	}
}

func afterAt(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[i+1:]
	}
	return s
}
