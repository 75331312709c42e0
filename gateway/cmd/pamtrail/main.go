// Command pamtrail is the pamtrail gateway and its admin subcommands.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand. run receives the arguments after the subcommand
// name and returns the process exit code.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands lists every subcommand; each lives in its own cmd_*.go file.
var commands = map[string]command{
	"gateway":     {"run the gateway: pamtrail gateway --config FILE", runGateway},
	"health":      {"probe a gateway's readiness: pamtrail health [--url http://127.0.0.1:9464/healthz]", runHealth},
	"keygen":      {"create or rotate the spool encryption key", runKeygen},
	"passwd":      {"print a SCRAM-SHA-256 verifier for a gateway user's password", runPasswd},
	"setup":       {"install Elasticsearch templates / Kibana objects: pamtrail setup elasticsearch|kibana", runSetup},
	"sessions":    {"search and review recorded sessions", runSessions},
	"validate":    {"check a gateway config file: pamtrail validate --config FILE", runValidate},
	"version":     {"print the version", runVersion},
	"lock":        {"lock a user or account on every gateway: pamtrail lock user|account NAME [--for 1h] [--reason R] | lock list", runLock},
	"unlock":      {"lift a lock: pamtrail unlock user|account NAME", runUnlock},
	"reload":      {"make every gateway re-read its config (as SIGHUP does)", runReload},
	"admin-token": {"create an admin token file and print its config line", runAdminToken},
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "pamtrail: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return cmd.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pamtrail <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
}
