package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pamtrail/pamtrail/gateway/setup"
)

// runSetupKibana imports the dashboards (dashboards/kibana/pamtrail.ndjson)
// into Kibana in one command. Secrets come from environment variables so
// they never appear on a command line.
func runSetupKibana(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pamtrail setup kibana", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultURL := os.Getenv("PAMTRAIL_KIBANA_URL")
	if defaultURL == "" {
		defaultURL = "http://127.0.0.1:5601"
	}
	url := fs.String("url", defaultURL, "Kibana URL (default from PAMTRAIL_KIBANA_URL)")
	space := fs.String("space", "", "Kibana space id (default: the default space)")
	apiKeyEnv := fs.String("api-key-env", "", "environment variable holding a Kibana API key")
	username := fs.String("username", "", "basic-auth user")
	passwordEnv := fs.String("password-env", "PAMTRAIL_KIBANA_PASSWORD", "environment variable holding the basic-auth password")
	caFile := fs.String("ca", "", "PEM file of the CA that signed Kibana's certificate")
	insecure := fs.Bool("insecure-skip-verify", false, "do not verify Kibana's TLS certificate (testing only)")
	timeout := fs.Duration("timeout", time.Minute, "how long the import may take")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	opts := setup.KibanaOptions{URL: *url, Space: *space, Username: *username, CAFile: *caFile, InsecureSkipVerify: *insecure, Progress: stdout}
	if *apiKeyEnv != "" {
		if opts.APIKey = os.Getenv(*apiKeyEnv); opts.APIKey == "" {
			fmt.Fprintf(stderr, "pamtrail setup kibana: environment variable %s (--api-key-env) is empty\n", *apiKeyEnv)
			return 2
		}
	}
	if opts.Username != "" {
		if opts.Password = os.Getenv(*passwordEnv); opts.Password == "" {
			fmt.Fprintf(stderr, "pamtrail setup kibana: --username is set but environment variable %s (--password-env) is empty\n", *passwordEnv)
			return 2
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := setup.InstallKibana(ctx, opts); err != nil {
		fmt.Fprintf(stderr, "pamtrail setup kibana: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "Kibana dashboards imported: open \"pamtrail — Sessions\"")
	return 0
}
