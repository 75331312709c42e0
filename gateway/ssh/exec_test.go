package ssh_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestExec runs commands through the gateway with the real OpenSSH client
// against the real OpenSSH target and checks what was recorded.
func TestExec(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	tests := []struct {
		name       string
		account    string
		command    string
		wantStdout string
		wantCode   int
		wantOutput string
	}{
		{"exit status and output", accountKey, "echo marker; exit 3", "marker\n", 3, "marker\n"},
		{"stderr is previewed too", accountKey, "echo out; echo err >&2", "out\n", 0, "out\nerr\n"},
		{"password credential", accountPassword, "id -un", g.target.User + "\n", 0, g.target.User + "\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := g.ssh(g.aliceKey, tt.account, tt.command)
			if stdout != tt.wantStdout || code != tt.wantCode {
				t.Fatalf("ssh: stdout %q exit %d (stderr %q); want %q exit %d", stdout, code, stderr, tt.wantStdout, tt.wantCode)
			}
			evs := g.waitSessionEnds(i + 1)
			var session string
			for _, e := range ofKind(evs, "start") {
				if e.Info.Account == tt.account && e.Info.User == "alice" {
					session = e.Session
				}
			}
			var found bool
			for _, e := range ofKind(evs, "command") {
				if e.Session != session {
					continue
				}
				found = true
				c := e.Command
				if c.Channel != "exec" || c.Text != tt.command || c.ExitStatus == nil || *c.ExitStatus != tt.wantCode {
					t.Errorf("command = %+v", c)
				}
				// Stdout and stderr interleave in arrival order.
				if len(c.Output) != len(tt.wantOutput) {
					t.Errorf("output = %q, want %q (any order)", c.Output, tt.wantOutput)
				}
				if c.Duration <= 0 {
					t.Errorf("duration = %v", c.Duration)
				}
			}
			if !found {
				t.Fatalf("no command recorded for the session:\n%s", dumpEvents(evs))
			}
			for _, e := range ofKind(evs, "end") {
				if e.Session == session && e.End.Reason != schema.EndClientQuit {
					t.Errorf("end = %+v, want %s", e.End, schema.EndClientQuit)
				}
			}
		})
	}
}
