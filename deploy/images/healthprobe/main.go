// Command healthprobe is the HEALTHCHECK of the otelcol-pamtrail image: a
// scratch image has no shell or curl, and the collector binary has no probe
// subcommand. It GETs one URL and exits 0 only on a 2xx answer.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pamtrail/pamtrail/gateway/healthz"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: healthprobe URL")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := healthz.Probe(ctx, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "healthprobe:", err)
		os.Exit(1)
	}
}
