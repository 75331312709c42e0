package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/spool"
)

// runKeygen creates, rotates or prunes the spool keyring, or with --signing
// the gateway's Ed25519 signing keyring. It prints key ids only, never key
// material.
func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "keyring file to write (mode 0600)")
	force := fs.Bool("force", false, "replace an existing keyring (segments sealed with it become unreadable)")
	rotate := fs.Bool("rotate", false, "add a new current key to an existing keyring, keeping the old ones")
	prune := fs.Bool("prune-unused", false, "remove keys that no segment in --spool uses (the current key is kept)")
	spoolDir := fs.String("spool", "", "spool directory, for --prune-unused")
	signing := fs.Bool("signing", false, "an Ed25519 signing keyring for session checkpoints (public keys go to FILE.pub)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pamtrail keygen --out FILE [--force]")
		fmt.Fprintln(stderr, "       pamtrail keygen --rotate --out FILE")
		fmt.Fprintln(stderr, "       pamtrail keygen --prune-unused --spool DIR --out FILE")
		fmt.Fprintln(stderr, "       pamtrail keygen --signing [--rotate] --out FILE")
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
	case *signing && *prune:
		return fail("--prune-unused applies to the spool keyring, not to --signing")
	}
	if *signing {
		return keygenSigning(*out, *rotate, *force, stdout, fail)
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

// keygenSigning creates or rotates a signing keyring. Rotation keeps every
// older public key in FILE.pub, so checkpoints signed before stay
// verifiable.
func keygenSigning(out string, rotate, force bool, stdout io.Writer, fail func(string, ...any) int) int {
	var k keys.SigningKey
	var err error
	if rotate {
		k, err = keys.RotateSigningFile(out)
	} else {
		k, err = keys.CreateSigningFile(out, force)
	}
	if err != nil {
		return fail("%v", err)
	}
	verb := "wrote signing keyring " + out + " with"
	if rotate {
		verb = "added to " + out + " the current"
	}
	fmt.Fprintf(stdout, "%s signing key %s; public keys: %s (give it to verifiers: pamtrail sessions verify --keys, or pamtrail setup elasticsearch --signing-keys)\n",
		verb, k.ID, keys.PublicPath(out))
	return 0
}
