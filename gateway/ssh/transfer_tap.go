package ssh

import (
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/ssh/scpparse"
	"github.com/pamtrail/pamtrail/gateway/ssh/sftpparse"
)

// newTransferTap recognises file transfers run over exec: legacy scp
// ("scp -t", "scp -f") and rsync ("rsync --server"). It returns nil for
// any other command.
func newTransferTap(s *session, command string) (fileTap, string) {
	if cmd, ok := scpparse.ParseCommand(command); ok {
		return &scpTap{s: s, cmd: cmd, tracker: scpparse.New(cmd)}, channelSCP
	}
	if t := newRsyncTap(s, command); t != nil {
		return t, channelRsync
	}
	return nil, ""
}

// scpTap reports each file an scp exec channel moves.
type scpTap struct {
	s       *session
	cmd     scpparse.Command
	mu      sync.Mutex
	tracker *scpparse.Tracker
}

// The client is the source of an upload and the sink of a download.
func (t *scpTap) clientData(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cmd.Download {
		t.record(t.tracker.SinkData(p))
	} else {
		t.record(t.tracker.SourceData(p))
	}
}

func (t *scpTap) serverData(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cmd.Download {
		t.record(t.tracker.SourceData(p))
	} else {
		t.record(t.tracker.SinkData(p))
	}
}

func (t *scpTap) close(time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(t.tracker.Close())
	if err := t.tracker.Err(); err != nil {
		t.s.log.Warn("scp stream not understood; file operations after this point are not recorded", "error", err)
	}
}

func (t *scpTap) record(ops []scpparse.Op) {
	now := time.Now()
	for _, op := range ops {
		t.s.record(t.s.rec.File(recorder.FileOp{
			Time:      now,
			Channel:   channelSCP,
			Operation: op.Operation,
			Path:      t.s.boundedText(op.Path),
			Bytes:     op.Bytes,
			Error:     t.s.boundedText(op.Error),
		}))
	}
}

// rsyncTap records an rsync transfer as one file operation: the paths on
// the rsync server's command line and the bytes moved toward the receiver.
// The rsync protocol (a multiplexed, delta-compressed stream whose layout
// depends on the negotiated version) is not parsed, so per-file names are
// not reported; the bytes include the protocol's own overhead.
type rsyncTap struct {
	s         *session
	operation string
	paths     string
	mu        sync.Mutex
	bytes     int64
}

func newRsyncTap(s *session, command string) *rsyncTap {
	args, ok := scpparse.ShellFields(command)
	if !ok || len(args) < 2 || path.Base(args[0]) != "rsync" {
		return nil
	}
	server, sender := false, false
	var paths []string
	afterDot := false
	for _, a := range args[1:] {
		switch {
		case a == "--server":
			server = true
		case a == "--sender":
			sender = true
		case afterDot:
			paths = append(paths, a)
		case a == ".":
			// The server's argument list: ".", then the paths.
			afterDot = true
		}
	}
	if !server {
		return nil
	}
	op := scpparse.OpUpload
	if sender {
		op = scpparse.OpDownload
	}
	return &rsyncTap{s: s, operation: op, paths: strings.Join(paths, " ")}
}

func (t *rsyncTap) clientData(p []byte) {
	if t.operation == scpparse.OpUpload {
		t.count(len(p))
	}
}

func (t *rsyncTap) serverData(p []byte) {
	if t.operation == scpparse.OpDownload {
		t.count(len(p))
	}
}

func (t *rsyncTap) count(n int) {
	t.mu.Lock()
	t.bytes += int64(n)
	t.mu.Unlock()
}

func (t *rsyncTap) close(end time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.s.record(t.s.rec.File(recorder.FileOp{
		Time:      end,
		Channel:   channelRsync,
		Operation: t.operation,
		Path:      t.s.boundedText(t.paths),
		Bytes:     t.bytes,
	}))
}

// sftpTap records the file operations of an SFTP subsystem channel.
type sftpTap struct {
	s       *session
	mu      sync.Mutex
	tracker *sftpparse.Tracker
}

func (c *sessionChannel) sftpTap() channelTap {
	if !c.s.e.cfg.Recording.RecordingEnabled() {
		return nil
	}
	return &sftpTap{s: c.s, tracker: sftpparse.New()}
}

func (t *sftpTap) clientData(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(t.tracker.ClientData(p))
}

func (t *sftpTap) serverData(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(t.tracker.ServerData(p))
}

func (t *sftpTap) serverStderr([]byte) {}
func (t *sftpTap) exit(*int, string)   {}
func (t *sftpTap) resize(int, int)     {}

func (t *sftpTap) close(time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(t.tracker.Close())
	if err := t.tracker.Err(); err != nil {
		t.s.log.Warn("sftp stream not understood; file operations after this point are not recorded", "error", err)
	}
	if t.tracker.Dropped > 0 {
		t.s.log.Warn("sftp operations not recorded: too many outstanding requests", "dropped", t.tracker.Dropped)
	}
}

func (t *sftpTap) record(ops []sftpparse.Op) {
	now := time.Now()
	for _, op := range ops {
		t.s.record(t.s.rec.File(recorder.FileOp{
			Time:      now,
			Channel:   channelSFTP,
			Operation: op.Operation,
			Path:      t.s.boundedText(op.Path),
			Target:    t.s.boundedText(op.Target),
			Bytes:     op.Bytes,
			Error:     t.s.boundedText(op.Error),
		}))
	}
}
