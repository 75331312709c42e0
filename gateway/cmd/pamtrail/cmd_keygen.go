package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

// runKeygen creates, rotates or prunes the spool keyring. It prints key ids
// only, never key material.
func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "keyring file to write (mode 0600)")
	force := fs.Bool("force", false, "replace an existing keyring (segments sealed with it become unreadable)")
	rotate := fs.Bool("rotate", false, "add a new current key to an existing keyring, keeping the old ones")
	prune := fs.Bool("prune-unused", false, "remove keys that no segment in --spool uses (the current key is kept)")
	spoolDir := fs.String("spool", "", "spool directory, for --prune-unused")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pamtrail keygen --out FILE [--force]")
		fmt.Fprintln(stderr, "       pamtrail keygen --rotate --out FILE")
		fmt.Fprintln(stderr, "       pamtrail keygen --prune-unused --spool DIR --out FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "pamtrail keygen: "+format+"\n", a...)
		return 1
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	case *out == "":
		return fail("--out FILE is required")
	case *rotate && *prune:
		return fail("--rotate and --prune-unused are separate steps; run them one after the other")
	case *prune != (*spoolDir != ""):
		return fail("--prune-unused and --spool DIR go together")
	case *force && (*rotate || *prune):
		return fail("--force only applies when creating a keyring")
	}

	switch {
	case *rotate:
		k, err := keys.RotateFile(*out)
		if err != nil {
			return fail("%v", err)
		}
		fmt.Fprintf(stdout, "added key %s to %s; it is now the current key (restart the gateway to use it)\n", k.ID, *out)
	case *prune:
		used, err := spool.SegmentKeyIDs(*spoolDir)
		if err != nil {
			return fail("%v", err)
		}
		removed, err := keys.PruneFile(*out, used)
		if err != nil {
			return fail("%v", err)
		}
		if len(removed) == 0 {
			fmt.Fprintf(stdout, "every key in %s is still in use; nothing removed\n", *out)
			return 0
		}
		fmt.Fprintf(stdout, "removed unused key(s) %s from %s\n", strings.Join(removed, ", "), *out)
	default:
		k, err := keys.CreateFile(*out, *force)
		if err != nil {
			return fail("%v", err)
		}
		fmt.Fprintf(stdout, "wrote keyring %s with key %s\n", *out, k.ID)
	}
	return 0
}
