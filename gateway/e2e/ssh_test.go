package e2e

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// sshArgs are the OpenSSH client options to reach the stack's gateway as
// alice, checking the gateway's host key strictly.
func (s *stack) sshArgs(t *testing.T) []string {
	t.Helper()
	pub := strings.TrimSpace(run(t, "ssh-keygen", "-y", "-f", filepath.Join(s.dir, "ssh_host_key")))
	host, port, _ := strings.Cut(s.sshAddr, ":")
	kh := filepath.Join(s.dir, "gateway_known_hosts")
	writeFile(t, kh, fmt.Sprintf("[%s]:%s %s\n", host, port, pub))
	return []string{"-i", s.aliceKey, "-p", port, "-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=10"}
}

// TestSSHRoundTrip: an exec command and an scp upload through the gateway
// against the real OpenSSH target arrive in Elasticsearch with the command,
// its output and exit status, and the file's path and size.
func TestSSHRoundTrip(t *testing.T) {
	s := newStack(t, stackOptions{ssh: true})
	s.start()
	args := s.sshArgs(t)
	marker := "ssh_" + randomHex(4)
	cmd := exec.Command("ssh", append(args, "demo-ssh@127.0.0.1", "echo "+marker+"; exit 3")...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(string(out), marker) {
		t.Fatalf("ssh exec through the gateway: %v\n%s", err, out)
	}

	local := filepath.Join(t.TempDir(), "payload.bin")
	payload := make([]byte, 300_000)
	_, _ = rand.Read(payload)
	if err := os.WriteFile(local, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	remote := "/tmp/" + marker + ".bin"
	scpArgs := append([]string(nil), args...)
	scpArgs[2] = "-P" // scp spells ssh's -p (port) as -P
	if out, err := exec.Command("scp", append(scpArgs, local, "demo-ssh@127.0.0.1:"+remote)...).CombinedOutput(); err != nil {
		t.Fatalf("scp upload: %v\n%s", err, out)
	}
	back := filepath.Join(t.TempDir(), "back.bin")
	if out, err := exec.Command("scp", append(scpArgs, "demo-ssh@127.0.0.1:"+remote, back)...).CombinedOutput(); err != nil {
		t.Fatalf("scp download: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(back); string(got) != string(payload) {
		t.Fatal("file changed on its way through the gateway")
	}

	evs := s.waitEvents(60*time.Second, review.Filter{}, func(evs []review.Event) (bool, string) {
		ends, files := 0, 0
		for _, e := range evs {
			switch e.EventName {
			case schema.EventSessionEnd:
				ends++
			case schema.EventSSHFile:
				files++
			}
		}
		return ends == 3 && files >= 2, describe(evs)
	})
	checkExactlyOnce(t, evs, true)
	var command *review.Event
	var up, down bool
	for i, e := range evs {
		switch e.EventName {
		case schema.EventSSHCommand:
			if strings.Contains(e.Str(schema.AttrSSHCommand), marker) {
				command = &evs[i]
			}
		case schema.EventSSHFile:
			if e.Str(schema.AttrFilePath) == remote && e.Int(schema.AttrFileBytes) == int64(len(payload)) {
				switch e.Str(schema.AttrFileOperation) {
				case "upload", "write":
					up = true
				case "download", "read":
					down = true
				}
			}
		}
	}
	if command == nil {
		t.Fatalf("exec command not recorded: %s", describe(evs))
	}
	if command.Str(schema.AttrSSHCommand) != "echo "+marker+"; exit 3" || !strings.Contains(command.Str(schema.AttrSSHOutput), marker) || command.Int(schema.AttrSSHExitStatus) != 3 {
		t.Errorf("command event: %v", command.Attributes)
	}
	if command.Str(schema.AttrUserName) != "alice" || command.Str(schema.AttrAccount) != "demo-ssh" || command.Str(schema.AttrResourceType) != schema.ResourceSSH {
		t.Errorf("session attributes: %v", command.Attributes)
	}
	if !up || !down {
		t.Errorf("scp upload recorded: %v, download recorded: %v; events: %s", up, down, describe(evs))
	}
}
