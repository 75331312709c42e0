// Package rsyncparse follows the rsync protocol (versions 30 to 32, as
// rsync 3.x speaks it over "ssh host rsync --server ...") and reports each
// regular file the transfer moves: its path, its size from the file list
// and the bytes of it sent as literal data.
//
// It is a side parser: it sees a copy of both directions of the exec
// channel and never changes or delays them. It decodes the handshake of
// both sides, then only the sending side's stream: the file lists (the
// first one and, with incremental recursion, each later one) and the
// delta stream that follows, where each transferred file is announced by
// its index and carried as literal data and references to blocks the
// receiver already holds. On anything it does not understand, or an option
// whose wire format it does not decode (ACLs, xattrs, crtimes, secluded
// arguments, protocol before 30), it stops and reports why through Err;
// the caller then falls back to a coarser record.
package rsyncparse

import (
	"path"
	"strings"

	"github.com/pamtrail/pamtrail/gateway/ssh/scpparse"
)

// Operations (values of Op.Operation), from the client's point of view.
const (
	OpUpload   = "upload"
	OpDownload = "download"
)

// Command is an rsync server command line: "rsync --server [--sender]
// OPTIONS . PATH...". Without --sender the server receives (an upload and
// PATH is the destination); with it, the server sends (a download of the
// PATHs).
type Command struct {
	Sender bool
	Paths  []string
	opts   options
	raw    string
}

// options are the server-side settings that shape the bytes on the wire.
type options struct {
	links, uid, gid, devices, specials bool
	hardLinks, checksum, compress      bool
	atimes, dryRun, relative           bool
	numericIDs, deleteMode, pruneDirs  bool
	checksumChoice, compressChoice     string
	// negotiate: the client's capabilities (after -e) include "v", so
	// both sides exchange checksum and compression lists.
	negotiate bool
	// secluded: -s, the client sends the arguments on the channel.
	secluded bool
	// unsupported names an option whose wire format is not decoded.
	unsupported string
}

// ParseCommand recognises an rsync server command; ok is false for anything
// else, including an rsync client or daemon command.
func ParseCommand(command string) (c Command, ok bool) {
	args, ok := scpparse.ShellFields(command)
	if !ok || len(args) < 2 || path.Base(args[0]) != "rsync" {
		return Command{}, false
	}
	if !c.apply(args[1:]) {
		return Command{}, false
	}
	c.raw = command
	return c, true
}

// apply takes server arguments; it reports whether --server was among them.
func (c *Command) apply(args []string) (server bool) {
	afterDot := false
	for _, a := range args {
		switch {
		case afterDot:
			c.Paths = append(c.Paths, a)
		case a == "--server":
			server = true
		case a == "--sender":
			c.Sender = true
		case a == ".":
			// The server's argument list: ".", then the paths.
			afterDot = true
		case strings.HasPrefix(a, "--"):
			c.opts.long(a)
		case strings.HasPrefix(a, "-"):
			c.opts.short(a[1:])
		}
	}
	return server
}

// short applies a cluster of one-letter options as server_options() in
// options.c writes them; "e" ends the cluster with the client's capability
// letters (a sub-protocol, usually ".", then one letter per capability).
func (o *options) short(cluster string) {
	for i := 0; i < len(cluster); i++ {
		switch cluster[i] {
		case 'e':
			if caps := cluster[i+1:]; len(caps) > 0 {
				o.negotiate = strings.Contains(caps[1:], "v")
			}
			return
		case 'l':
			o.links = true
		case 'o':
			o.uid = true
		case 'g':
			o.gid = true
		case 'D':
			o.devices, o.specials = true, true
		case 'H':
			o.hardLinks = true
		case 'c':
			o.checksum = true
		case 'z':
			o.compress = true
		case 'U':
			o.atimes = true
		case 'n':
			o.dryRun = true
		case 'R':
			o.relative = true
		case 'm':
			o.pruneDirs = true
		case 'A':
			o.unsupported = "-A (ACLs)"
		case 'X':
			o.unsupported = "-X (xattrs)"
		case 'N':
			o.unsupported = "-N (crtimes)"
		case 's':
			o.secluded = true
		}
	}
}

func (o *options) long(arg string) {
	name, value, _ := strings.Cut(arg, "=")
	switch name {
	case "--links":
		o.links = true
	case "--devices":
		o.devices = true
	case "--specials":
		o.specials = true
	case "--hard-links":
		o.hardLinks = true
	case "--numeric-ids":
		o.numericIDs = true
	case "--checksum-choice", "--cc":
		o.checksumChoice = value
	case "--compress":
		o.compress = true
	case "--compress-choice", "--zc":
		o.compress, o.compressChoice = true, value
	case "--old-compress":
		o.compress, o.compressChoice = true, "zlib"
	case "--new-compress":
		o.compress, o.compressChoice = true, "zlibx"
	case "--dry-run":
		o.dryRun = true
	case "--prune-empty-dirs":
		o.pruneDirs = true
	case "--delete", "--del", "--delete-before", "--delete-during", "--delete-delay",
		"--delete-after", "--delete-excluded":
		o.deleteMode = true
	case "--acls":
		o.unsupported = "--acls"
	case "--xattrs":
		o.unsupported = "--xattrs"
	case "--crtimes":
		o.unsupported = "--crtimes"
	case "--secluded-args", "--protect-args":
		o.secluded = true
	case "--only-write-batch", "--write-batch", "--read-batch":
		o.unsupported = name
	}
}

// receiverWantsFilters is send_filter_list()'s receiver_wants_list: only
// then does a sending client send its filter rules (protocol 29 and later).
func (o *options) receiverWantsFilters() bool {
	return o.pruneDirs || o.deleteMode
}
