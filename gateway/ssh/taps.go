package ssh

import (
	"strings"
	"sync"
	"time"

	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// Channel kinds (values of the command's and file operation's channel).
const (
	channelTerminal = "terminal"
	channelExec     = "exec"
	channelSFTP     = "sftp"
	channelSCP      = "scp"
	channelRsync    = "rsync"
)

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	buf       []byte
	max       int
	truncated bool
}

func (h *headBuffer) write(p []byte) {
	room := h.max - len(h.buf)
	if len(p) > room {
		p = p[:max(room, 0)]
		h.truncated = true
	}
	h.buf = append(h.buf, p...)
}

// text returns the kept bytes as valid UTF-8; the records are text. A
// character cut by the bound is dropped rather than replaced.
func (h *headBuffer) text() string {
	b := h.buf
	if h.truncated {
		b = b[:len(b)-incompleteUTF8Tail(b)]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// previewBytes and maxTextBytes are the validated recording sizes. The
// recorder cuts texts to max_text_bytes and marks the cut; the engine
// bounds only what it buffers.
func (s *session) previewBytes() int { return int(s.e.Config.Recording.PreviewBytes) }

func (s *session) maxTextBytes() int { return int(s.e.Config.Recording.MaxTextBytes) }

// execTap records an exec request: one command event at the end with a
// bounded preview of stdout and stderr, the exit status and the duration.
// File transfers run over exec (scp, rsync) add a file tap, and their
// preview keeps only stderr: stdout is the transfer protocol.
type execTap struct {
	s       *session
	channel string
	command string
	start   time.Time
	replay  *outputRecorder // raw output for replay, when exec has a pty
	files   fileTap         // scp or rsync; may be nil
	// script, for a shell without a pty, collects stdin: that is the
	// command text. Its lines are not separate events, because a client
	// sends the whole script before the output of its first line arrives,
	// so no output could be attributed to a line.
	script *headBuffer

	policy  *policy.Match // an audit policy's match, recorded with the command
	mu      sync.Mutex
	preview headBuffer
	status  *int
	signal  string
}

// fileTap parses a file-transfer protocol carried by an exec channel.
type fileTap interface {
	clientData(p []byte)
	serverData(p []byte)
	close(end time.Time)
}

func (c *sessionChannel) execTap(command string, audited *policy.Match) channelTap {
	s := c.s
	if !s.e.Config.Recording.RecordingEnabled() {
		return nil
	}
	t := &execTap{s: s, channel: channelExec, command: command, start: time.Now(), policy: audited}
	t.preview.max = s.previewBytes()
	if files, kind := newTransferTap(s, command); files != nil {
		t.files, t.channel = files, kind
	} else if c.pty != nil {
		t.replay = newOutputRecorder(s, c.opened, "pty")
		t.replay.resize(int(c.pty.Cols), int(c.pty.Rows))
	}
	return t
}

// newScriptTap records a shell without a pty (ssh -T, ssh host < script).
func newScriptTap(s *session) *execTap {
	t := &execTap{s: s, channel: channelTerminal, start: time.Now(), script: &headBuffer{max: s.maxTextBytes()}}
	t.preview.max = s.previewBytes()
	return t
}

func (t *execTap) clientData(p []byte) {
	if t.files != nil {
		t.files.clientData(p)
	}
	if t.script != nil {
		t.mu.Lock()
		t.script.write(p)
		t.mu.Unlock()
	}
}

func (t *execTap) serverData(p []byte) {
	if t.files != nil {
		t.files.serverData(p)
		return
	}
	if t.replay != nil {
		t.replay.write(p)
	}
	t.mu.Lock()
	t.preview.write(p)
	t.mu.Unlock()
}

func (t *execTap) serverStderr(p []byte) {
	t.mu.Lock()
	t.preview.write(p)
	t.mu.Unlock()
}

func (t *execTap) exit(status *int, signal string) {
	t.mu.Lock()
	t.status, t.signal = status, signal
	t.mu.Unlock()
}

func (t *execTap) resize(cols, rows int) {
	if t.replay != nil {
		t.replay.resize(cols, rows)
	}
}

func (t *execTap) close(end time.Time) {
	if t.replay != nil {
		t.replay.close()
	}
	if t.files != nil {
		t.files.close(end)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	text, cut := t.command, false
	if t.script != nil {
		text, cut = strings.TrimRight(t.script.text(), "\n"), t.script.truncated
	}
	t.s.record(t.s.rec.Command(recorder.Command{
		Start:         t.start,
		Duration:      end.Sub(t.start),
		Channel:       t.channel,
		Text:          text,
		TextTruncated: cut,
		Output:        t.preview.text(),
		OutputTrunc:   t.preview.truncated,
		ExitStatus:    t.status,
		ExitSignal:    t.signal,
		Policy:        t.policy,
	}))
}
