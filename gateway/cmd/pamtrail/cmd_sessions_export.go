package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pamtrail/pamtrail/gateway/review"
)

// runSessionsExport writes one session in a file format other tools read:
// asciicast v2 (asciinema) for its terminal, every event as JSON lines, or a
// CSV of its queries and commands.
func runSessionsExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newSessionsCommand("export", stdout, stderr)
	var format, output string
	c.fs.StringVar(&format, "format", "", "asciicast, jsonl or csv")
	c.fs.StringVar(&output, "o", "", "write to this file (mode 0600) instead of standard output")
	pos, code := c.parse(args, 1, "session id")
	if code >= 0 {
		return code
	}
	if !slices.Contains(review.ExportFormats, format) {
		return c.usageError("format: %q is not one of %s", format, strings.Join(review.ExportFormats, ", "))
	}
	cl, code := c.client()
	if code >= 0 {
		return code
	}
	rctx, cancel := requestContext(ctx)
	defer cancel()
	id := pos[0]
	sess, err := cl.Session(rctx, id)
	if err != nil {
		return c.fail(err)
	}
	if format == review.FormatAsciicast && !review.IsTerminalSession(sess) {
		return c.noTerminal(review.WriteAsciicast(io.Discard, sess, nil))
	}
	events, err := cl.SessionEvents(rctx, id, review.ExportSelection(format), 0)
	if err != nil {
		return c.fail(err)
	}
	// Render first, so that a session with nothing to export leaves no
	// empty file behind.
	var buf strings.Builder
	if err := review.Export(&buf, format, sess, events); err != nil {
		if errors.Is(err, review.ErrNoTerminal) {
			return c.noTerminal(err)
		}
		return c.done(err)
	}
	if output == "" {
		_, err = io.WriteString(stdout, buf.String())
		return c.done(err)
	}
	return c.done(writeFileAtomic(output, buf.String()))
}

// noTerminal reports an asciicast export of a session without a terminal,
// naming the formats that do work.
func (c *sessionsCommand) noTerminal(err error) int {
	fmt.Fprintf(c.stderr, "%s: %v; --format jsonl or csv exports it\n", c.name, err)
	return 1
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file in the same directory, so a reader never sees half an export.
func writeFileAtomic(path, data string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
