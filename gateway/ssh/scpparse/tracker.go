package scpparse

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Operations (values of Op.Operation), from the client's point of view.
const (
	OpUpload   = "upload"
	OpDownload = "download"
)

// Op is one file moved (or refused), reported once the receiving side has
// acknowledged it.
type Op struct {
	Operation string
	Path      string
	Bytes     int64
	Error     string
}

const (
	maxLine  = 8 << 10 // a protocol line: a command and a path
	maxDepth = 256     // nested D lines
)

// ErrNotSCP stops tracking a stream that does not follow the protocol.
var ErrNotSCP = errors.New("scp: stream does not follow the scp protocol")

type state uint8

const (
	awaitLine    state = iota // the source's next protocol line
	awaitFileAck              // the sink's answer to a C line
	fileData                  // the file's bytes
	fileEnd                   // the source's 0 byte after the data
	fileError                 // the source's error line instead of that 0
	awaitDataAck              // the sink's answer to the data
)

type file struct {
	path string
	size int64
}

// Tracker follows one scp exec channel. It is not safe for concurrent use.
type Tracker struct {
	cmd     Command
	op      string
	state   state
	line    []byte // a protocol line being read from the source
	dirs    []string
	file    file
	emitted bool  // the current file was already reported
	left    int64 // data bytes still to come
	top     int   // top-level entries seen (they map to Command.Paths)

	sinkMsg   []byte // a sink error message being read
	inSinkMsg bool

	ops []Op
	err error
}

// New returns a Tracker for the parsed command.
func New(cmd Command) *Tracker {
	op := OpUpload
	if cmd.Download {
		op = OpDownload
	}
	return &Tracker{cmd: cmd, op: op}
}

// Err reports why tracking stopped, if it did.
func (t *Tracker) Err() error { return t.err }

// SourceData takes bytes from the side sending files (the client for an
// upload, the server for a download).
func (t *Tracker) SourceData(p []byte) []Op {
	for len(p) > 0 && t.err == nil {
		switch t.state {
		case awaitLine:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				t.appendLine(p)
				p = nil
				break
			}
			t.appendLine(p[:i])
			p = p[i+1:]
			if t.err == nil {
				t.sourceLine()
			}
			t.line = t.line[:0]
		case fileData:
			n := int64(len(p))
			if n > t.left {
				n = t.left
			}
			t.left -= n
			p = p[n:]
			if t.left == 0 {
				t.state = fileEnd
			}
		case fileEnd:
			// 0 ends the data; 1 or 2 starts the source's error line
			// (it could not read the whole file).
			t.state = awaitDataAck
			if p[0] != 0 {
				t.state = fileError
				t.line = t.line[:0]
			}
			p = p[1:]
		case fileError:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				t.appendLine(p)
				p = nil
				break
			}
			t.appendLine(p[:i])
			p = p[i+1:]
			t.emit(t.file, strings.TrimSpace(string(t.line)))
			t.line = t.line[:0]
			t.state = awaitDataAck
		default:
			// The sink has not answered: the source should be waiting.
			t.err = fmt.Errorf("%w: source data while waiting for the receiver", ErrNotSCP)
		}
	}
	return t.take()
}

func (t *Tracker) appendLine(p []byte) {
	if len(t.line)+len(p) > maxLine {
		t.err = fmt.Errorf("%w: protocol line longer than %d bytes", ErrNotSCP, maxLine)
		return
	}
	t.line = append(t.line, p...)
}

// sourceLine handles one protocol line from the source.
func (t *Tracker) sourceLine() {
	line := string(t.line)
	if line == "" {
		return
	}
	switch line[0] {
	case 'C', 'D':
		mode, rest, ok1 := strings.Cut(line[1:], " ")
		sizeText, name, ok2 := strings.Cut(rest, " ")
		size, err := strconv.ParseInt(sizeText, 10, 64)
		if !ok1 || !ok2 || err != nil || size < 0 || !isOctal(mode) || name == "" ||
			strings.Contains(name, "/") || name == ".." {
			t.err = fmt.Errorf("%w: bad %c line", ErrNotSCP, line[0])
			return
		}
		p := t.pathOf(name)
		if line[0] == 'D' {
			if len(t.dirs) >= maxDepth {
				t.err = fmt.Errorf("%w: directories nested deeper than %d", ErrNotSCP, maxDepth)
				return
			}
			t.dirs = append(t.dirs, p)
			return
		}
		t.file = file{path: p, size: size}
		t.emitted = false
		t.state = awaitFileAck
	case 'E':
		if len(t.dirs) > 0 {
			t.dirs = t.dirs[:len(t.dirs)-1]
		}
	case 'T':
		// Times (-p): nothing to report.
	case 1, 2:
		// The source could not send something (no such file...).
		t.ops = append(t.ops, Op{Operation: t.op, Path: t.guessPath(), Error: strings.TrimSpace(line[1:])})
	default:
		t.err = fmt.Errorf("%w: unknown line type %q", ErrNotSCP, line[0])
	}
}

// pathOf names an entry: inside a directory, the directory's path joined
// with the name; at the top, what the command line says.
func (t *Tracker) pathOf(name string) string {
	if len(t.dirs) > 0 {
		return path.Join(t.dirs[len(t.dirs)-1], name)
	}
	t.top++
	if t.cmd.Download {
		// A top-level entry is one of the sources, in order; match by name
		// (the remote shell may have expanded a glob into several).
		for _, p := range t.cmd.Paths {
			if path.Base(p) == name {
				return p
			}
		}
		return name
	}
	dest := "."
	if len(t.cmd.Paths) > 0 {
		dest = t.cmd.Paths[len(t.cmd.Paths)-1]
	}
	// Into a directory, the entry keeps its name; otherwise a single
	// file is written to the destination path itself.
	if t.cmd.TargetDir || t.cmd.Recursive || dest == "." || dest == "~" || strings.HasSuffix(dest, "/") {
		return path.Join(dest, name)
	}
	return dest
}

func (t *Tracker) guessPath() string {
	if len(t.dirs) > 0 {
		return t.dirs[len(t.dirs)-1]
	}
	return strings.Join(t.cmd.Paths, " ")
}

// SinkData takes bytes from the side receiving files: acknowledgements (0)
// and errors (1 or 2, a message, a newline).
func (t *Tracker) SinkData(p []byte) []Op {
	for len(p) > 0 && t.err == nil {
		if t.inSinkMsg {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				t.sinkMsg = append(t.sinkMsg, p[:min(len(p), maxLine-len(t.sinkMsg))]...)
				return t.take()
			}
			t.sinkMsg = append(t.sinkMsg, p[:min(i, maxLine-len(t.sinkMsg))]...)
			p = p[i+1:]
			t.inSinkMsg = false
			t.sinkError(strings.TrimSpace(string(t.sinkMsg)))
			continue
		}
		switch p[0] {
		case 0:
			switch t.state {
			case awaitFileAck:
				t.left = t.file.size
				t.state = fileData
				if t.left == 0 {
					t.state = fileEnd
				}
			case awaitDataAck:
				t.emit(t.file, "")
				t.state = awaitLine
			}
		case 1, 2:
			t.inSinkMsg = true
			t.sinkMsg = t.sinkMsg[:0]
		default:
			t.err = fmt.Errorf("%w: unexpected byte %#x from the receiver", ErrNotSCP, p[0])
		}
		p = p[1:]
	}
	return t.take()
}

// sinkError handles an error the receiver reported.
func (t *Tracker) sinkError(msg string) {
	switch t.state {
	case awaitFileAck, awaitDataAck:
		// The file was refused (no data follows) or not written.
		t.emit(t.file, msg)
		t.state = awaitLine
	default:
		t.ops = append(t.ops, Op{Operation: t.op, Path: t.guessPath(), Error: msg})
	}
}

// emit reports the current file once.
func (t *Tracker) emit(f file, errText string) {
	if t.emitted {
		return
	}
	t.emitted = true
	op := Op{Operation: t.op, Path: f.path, Bytes: f.size, Error: errText}
	if errText != "" && t.state == awaitFileAck {
		op.Bytes = 0
	}
	t.ops = append(t.ops, op)
}

// Close reports a file cut off by the end of the channel.
func (t *Tracker) Close() []Op {
	if t.err == nil && !t.emitted {
		switch t.state {
		case fileData, fileEnd, fileError, awaitDataAck:
			t.ops = append(t.ops, Op{Operation: t.op, Path: t.file.path, Bytes: t.file.size - t.left,
				Error: "the channel closed before the file was complete"})
		}
	}
	t.state = awaitLine
	return t.take()
}

func (t *Tracker) take() []Op {
	ops := t.ops
	t.ops = nil
	return ops
}

func isOctal(s string) bool {
	if s == "" || len(s) > 6 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '7' {
			return false
		}
	}
	return true
}
