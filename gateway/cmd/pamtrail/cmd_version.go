package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/pamtrail/pamtrail/gateway/healthz"
)

// version is set at link time by `make` (-X main.version=...) from the one
// version the collector distribution also carries (builder-config.yaml).
var version = "dev"

func runVersion(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "pamtrail %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

// runHealth probes a gateway's /healthz: it is the HEALTHCHECK of the
// container image, which has no shell or curl.
func runHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:9464/healthz", "readiness endpoint (metrics.address + /healthz)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := healthz.Probe(ctx, *url); err != nil {
		fmt.Fprintf(stderr, "pamtrail health: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "ready")
	return 0
}
