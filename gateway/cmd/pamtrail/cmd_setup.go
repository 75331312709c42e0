package main

import (
	"fmt"
	"io"
)

// runSetup is a placeholder until the setup subcommand lands.
func runSetup(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "pamtrail setup: not implemented yet")
	return 2
}
