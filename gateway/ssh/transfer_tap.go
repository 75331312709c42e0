package ssh

import (
	"strings"
	"sync"
	"time"

	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/ssh/rsyncparse"
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
	if cmd, ok := rsyncparse.ParseCommand(command); ok {
		return newRsyncTap(s, cmd), channelRsync
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
		t.s.record(t.s.rec.File(recorder.FileOp{Time: now, Channel: channelSCP, Operation: op.Operation,
			Path: op.Path, Bytes: op.Bytes, Error: op.Error}))
	}
}

// rsyncTap records each regular file an rsync exec channel moves, with
// the bytes of it sent as literal data (the whole file when it is new, the
// changed parts when the receiver had an older version): see package
// rsyncparse. If the stream is not understood, the files recorded so far
// stand and one more operation covers the channel, as before per-file
// parsing: the paths on the server's command line and every byte that went
// toward the receiver, protocol overhead included.
type rsyncTap struct {
	s       *session
	cmd     rsyncparse.Command
	mu      sync.Mutex
	tracker *rsyncparse.Tracker
	bytes   int64 // toward the receiver, for the fallback
}

func newRsyncTap(s *session, cmd rsyncparse.Command) *rsyncTap {
	return &rsyncTap{s: s, cmd: cmd, tracker: rsyncparse.New(cmd)}
}

// operation is the direction from the client's point of view.
func (t *rsyncTap) operation() string {
	if t.cmd.Sender {
		return rsyncparse.OpDownload
	}
	return rsyncparse.OpUpload
}

func (t *rsyncTap) clientData(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.cmd.Sender {
		t.bytes += int64(len(p))
	}
	t.record(t.tracker.ClientData(p), "")
}

func (t *rsyncTap) serverData(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cmd.Sender {
		t.bytes += int64(len(p))
	}
	t.record(t.tracker.ServerData(p), "")
}

func (t *rsyncTap) close(end time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if op, ok := t.tracker.InProgress(); ok {
		t.record([]rsyncparse.Op{op}, "transfer interrupted")
	}
	err := t.tracker.Err()
	if err == nil {
		return
	}
	t.s.log.Warn("rsync stream not understood; the rest of the transfer is recorded as one operation", "error", err)
	t.s.record(t.s.rec.File(recorder.FileOp{Time: end, Channel: channelRsync, Operation: t.operation(),
		Path: strings.Join(t.tracker.Command().Paths, " "), Bytes: t.bytes}))
}

func (t *rsyncTap) record(ops []rsyncparse.Op, failure string) {
	now := time.Now()
	for _, op := range ops {
		t.s.record(t.s.rec.File(recorder.FileOp{Time: now, Channel: channelRsync, Operation: op.Operation,
			Path: op.Path, Bytes: op.Literal, Error: failure}))
	}
}

// sftpTap records the file operations of an SFTP subsystem channel.
type sftpTap struct {
	s       *session
	mu      sync.Mutex
	tracker *sftpparse.Tracker
}

func (c *sessionChannel) sftpTap() channelTap {
	if !c.s.e.Config.Recording.RecordingEnabled() {
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
	set := t.s.policy()
	for _, op := range ops {
		t.s.record(t.s.rec.File(recorder.FileOp{Time: now, Channel: channelSFTP, Operation: op.Operation,
			Path: op.Path, Target: op.Target, Bytes: op.Bytes, Error: op.Error, Policy: auditedFile(set, op)}))
	}
}

// sftpPolicyOps names sftp operations as files rules do.
var sftpPolicyOps = map[string]string{
	sftpparse.OpWrite: "upload", sftpparse.OpRead: "download", sftpparse.OpRemove: "remove", sftpparse.OpRename: "rename",
	sftpparse.OpMkdir: "mkdir", sftpparse.OpRmdir: "rmdir", sftpparse.OpSetstat: "setstat", sftpparse.OpSymlink: "symlink",
	sftpparse.OpHardlink: "symlink",
}

// auditedFile is the files rule an sftp operation matched when the policy
// only audits (an enforcing one refused the request before it ran).
func auditedFile(set *policy.Set, op sftpparse.Op) *policy.Match {
	if set.Enforces() {
		return nil
	}
	name, ok := sftpPolicyOps[op.Operation]
	if !ok {
		return nil
	}
	if m := set.File(name, op.Path); m != nil {
		return m
	}
	if op.Target != "" {
		return set.File(name, op.Target)
	}
	return nil
}
