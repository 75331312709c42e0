package main

import (
	"fmt"
	"io"
)

// runKeygen is a placeholder until the keygen subcommand lands.
func runKeygen(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "pamtrail keygen: not implemented yet")
	return 2
}
