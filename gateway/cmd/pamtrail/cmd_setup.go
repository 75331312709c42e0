package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/pamtrail/pamtrail/gateway/setup"
)

const (
	defaultESURL          = "http://127.0.0.1:9200"
	defaultESPasswordEnv  = "PAMTRAIL_ES_PASSWORD"
	setupElasticsearchTTL = 2 * time.Minute
)

// runSetup installs what pamtrail needs in Elasticsearch and Kibana.
func runSetup(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		setupUsage(stderr)
		return 2
	}
	switch args[0] {
	case "elasticsearch":
		return runSetupElasticsearch(args[1:], stdout, stderr)
	case "kibana":
		return runSetupKibana(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		setupUsage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "pamtrail setup: unknown target %q\n", args[0])
		setupUsage(stderr)
		return 2
	}
}

func setupUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: pamtrail setup elasticsearch [flags]   install the index and component templates")
	fmt.Fprintln(w, "       pamtrail setup kibana [flags]          import the Kibana dashboards")
}

func runSetupElasticsearch(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pamtrail setup elasticsearch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var conn esFlags
	conn.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pamtrail setup elasticsearch: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	es, err := conn.elasticsearch()
	if err != nil {
		fmt.Fprintf(stderr, "pamtrail setup elasticsearch: %v\n", err)
		return 2
	}
	cfg := setup.ClientConfig{URL: conn.url}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, setupElasticsearchTTL)
	defer cancel()
	if err := setup.InstallElasticsearch(ctx, es, setup.ElasticsearchOptions{Progress: stdout}); err != nil {
		fmt.Fprintf(stderr, "pamtrail setup elasticsearch: %s: %v\n", cfg.URL, err)
		return 1
	}
	fmt.Fprintf(stdout, "Elasticsearch at %s is ready for pamtrail\n", cfg.URL)
	return 0
}
