// Package scpparse follows the legacy scp protocol (rcp's, as `scp -O` and
// older OpenSSH speak it over exec "scp -t" / "scp -f") and reports each
// file it moves with its size, and each error either side reports. Modern
// scp uses SFTP instead; see package sftpparse.
//
// It is a side parser: it sees a copy of both directions and never changes
// them. It stops at the first sign the stream is not scp.
package scpparse

import (
	"path"
	"strings"
)

// Command is an scp server command line: "scp -t [-r] [-d] [-p] -- dest"
// receives files (an upload from the client's view), "scp -f ... -- src..."
// sends them (a download).
type Command struct {
	Download  bool
	Recursive bool
	// TargetDir: -d, the destination must be a directory (several sources).
	TargetDir bool
	Paths     []string
}

// ParseCommand recognises an scp server command; ok is false for anything
// else.
func ParseCommand(cmd string) (c Command, ok bool) {
	args, ok := ShellFields(cmd)
	if !ok || len(args) < 2 || path.Base(args[0]) != "scp" {
		return Command{}, false
	}
	var sink, source bool
	flags := true
	for _, a := range args[1:] {
		if flags && a == "--" {
			flags = false
			continue
		}
		if flags && len(a) > 1 && a[0] == '-' {
			for _, f := range a[1:] {
				switch f {
				case 't':
					sink = true
				case 'f':
					source = true
				case 'r':
					c.Recursive = true
				case 'd':
					c.TargetDir = true
				}
			}
			continue
		}
		c.Paths = append(c.Paths, a)
	}
	if sink == source { // neither, or both: not a server-side scp
		return Command{}, false
	}
	c.Download = source
	return c, true
}

// ShellFields splits a command line as a POSIX shell would split words:
// whitespace separates, single quotes are literal, double quotes allow
// backslash escapes, and a backslash outside quotes escapes the next byte.
// It reports false for an unterminated quote. Expansions ($VAR, globs) are
// left as written.
func ShellFields(s string) ([]string, bool) {
	var (
		fields []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, false
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false
			}
			inWord = true
		case ch == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				fields = append(fields, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		fields = append(fields, cur.String())
	}
	return fields, true
}
