package main

import (
	"fmt"
	"io"
)

func runGateway(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "pamtrail gateway: not wired yet")
	return 2
}
