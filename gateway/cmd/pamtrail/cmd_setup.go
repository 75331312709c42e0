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

	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/schema"
	"github.com/pamtrail/pamtrail/gateway/setup"
	"github.com/pamtrail/pamtrail/gateway/verify"
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
	var signingKeys keyFiles
	fs.Var(&signingKeys, "signing-keys", "also publish these public signing key files (pamtrail keygen --signing writes FILE.pub) to the "+schema.KeysIndex+" index, where `sessions verify` finds them; repeatable")
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
	for _, f := range signingKeys {
		pubs, err := keys.LoadPublic(f)
		if err == nil {
			err = verify.Store{ES: es}.PublishKeys(ctx, pubs)
		}
		if err != nil {
			fmt.Fprintf(stderr, "pamtrail setup elasticsearch: %s: %v\n", cfg.URL, err)
			return 1
		}
		fmt.Fprintf(stdout, "published %d signing key(s) from %s to %s\n", len(pubs), f, schema.KeysIndex)
	}
	fmt.Fprintf(stdout, "Elasticsearch at %s is ready for pamtrail\n", cfg.URL)
	return 0
}
