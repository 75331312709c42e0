package ssh

import (
	"fmt"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/ssh/rsyncparse"
	"github.com/pamtrail/pamtrail/gateway/ssh/scpparse"
)

// blockedExitStatus is the exit status of a refused exec: 126, the shell's
// "found but cannot be run".
const blockedExitStatus = 126

// policy is the account's compiled policy; nil allows everything. It is
// read per channel, so a reload applies to the channels opened after it.
func (s *session) policy() *policy.Set { return s.e.Control.Policy(s.acct.Name) }

// checkExec matches an exec request: the command line, and for scp and
// rsync the paths they would write (uploads) or read (downloads).
func (s *session) checkExec(command string) *policy.Match {
	set := s.policy()
	if m := set.Command(command); m != nil {
		return m
	}
	if !set.HasFiles() {
		return nil
	}
	if c, ok := scpparse.ParseCommand(command); ok {
		return matchPaths(set, !c.Download, c.Recursive, c.Paths)
	}
	if c, ok := rsyncparse.ParseCommand(command); ok {
		// The file list is not seen before the server acts on it: any
		// rsync upload is taken as a tree.
		return matchPaths(set, !c.Sender, true, c.Paths)
	}
	return nil
}

// matchPaths checks the paths of an scp or rsync command; an upload of a
// tree also matches a guarded directory beneath its destination.
func matchPaths(set *policy.Set, upload, tree bool, paths []string) *policy.Match {
	op := "download"
	if upload {
		op = "upload"
	}
	for _, p := range paths {
		m := set.File(op, p)
		if m == nil && upload && tree {
			m = set.FileTree(op, p)
		}
		if m != nil {
			return m
		}
	}
	return nil
}

// blockedText is what the user is told about a blocked action.
func blockedText(what string, m *policy.Match) string {
	return fmt.Sprintf("pamtrail: %s blocked by policy %q, rule %q", what, m.Policy, m.Rule)
}

// refuseExec answers an exec request the policy blocks: the program never
// starts on the target; the client gets the reason on stderr and exit
// status 126, and the attempt is recorded as blocked.
func (c *sessionChannel) refuseExec(req *gossh.Request, command string, m *policy.Match) {
	start := time.Now()
	reply(req, true)
	msg := blockedText("command", m)
	_, _ = c.client.Stderr().Write([]byte(msg + "\n"))
	status := blockedExitStatus
	_, _ = c.client.SendRequest("exit-status", false, gossh.Marshal(struct{ Status uint32 }{uint32(status)}))
	c.notLive()
	_ = c.client.CloseWrite()
	_ = c.client.Close()
	_ = c.target.Close()
	c.s.log.Info("exec blocked by policy", "rule", m.Rule, "policy", m.Policy)
	c.s.record(c.s.rec.Command(recorder.Command{Start: start, Duration: time.Since(start), Channel: channelExec,
		Text: command, Output: msg, ExitStatus: &status, Policy: m}))
}
