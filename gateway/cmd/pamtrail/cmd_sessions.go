package main

import (
	"fmt"
	"io"
)

// runSessions is a placeholder until the sessions subcommand lands.
func runSessions(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "pamtrail sessions: not implemented yet")
	return 2
}
