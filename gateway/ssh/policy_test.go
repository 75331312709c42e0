package ssh_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

const accountGuarded = "demo-guarded" // under the enforce policy "guard"

// guardedGateway serves the usual accounts plus demo-guarded, whose
// policy blocks the program danger-script-xyz, reboot, and uploads under
// guarded (a directory on the target, made here).
func guardedGateway(t *testing.T) (g *gateway, guarded string) {
	return guardedGatewayMode(t, "enforce")
}

func guardedGatewayMode(t *testing.T, mode string) (g *gateway, guarded string) {
	guarded = "/tmp/pamtrail-guard-" + fmt.Sprint(os.Getpid()) + "-" + filepath.Base(t.TempDir())
	g = startGateway(t, gatewayOptions{
		accounts: []extraAccount{{name: accountGuarded, fields: map[string]string{"policy": "guard"}}},
		extra: fmt.Sprintf(`policies:
  - name: guard
    mode: %s
    commands:
      - {id: no-danger, program: danger-script-xyz}
      - {id: no-reboot, program: reboot}
    files:
      - {id: no-upload-guarded, under: %s}
`, mode, guarded),
	})
	if _, stderr, code := g.ssh(g.aliceKey, accountKey, "mkdir -p "+guarded+" "+guarded+"-open"); code != 0 {
		t.Fatalf("mkdir on the target: %s", stderr)
	}
	t.Cleanup(func() { g.ssh(g.aliceKey, accountKey, "rm -rf "+guarded+" "+guarded+"-open") })
	g.settle()
	return g, guarded
}

// blockedEvents returns the recorded commands and file operations that a
// policy blocked, as "rule: text".
func blockedEvents(evs []recordertest.Event) []string {
	var out []string
	for _, e := range evs {
		switch {
		case e.Kind == "command" && e.Command.Policy != nil && e.Command.Policy.Blocks():
			out = append(out, e.Command.Policy.Rule+": "+e.Command.Text)
		case e.Kind == "file" && e.File.Policy != nil && e.File.Policy.Blocks():
			out = append(out, e.File.Policy.Rule+": "+e.File.Operation+" "+e.File.Path)
		}
	}
	return out
}

// An exec request the policy blocks never starts: the client gets the
// reason on stderr and exit status 126, even behind sudo or sh -c.
func TestExecBlocked(t *testing.T) {
	g, _ := guardedGateway(t)
	for _, cmd := range []string{"reboot", "sudo -n reboot", "sh -c 'echo x; reboot'"} {
		_, stderr, code := g.ssh(g.aliceKey, accountGuarded, cmd)
		if code != 126 || !strings.Contains(stderr, `rule "no-reboot"`) {
			t.Errorf("%q: exit %d, stderr %q; want 126 naming rule no-reboot", cmd, code, stderr)
		}
	}
	if out, stderr, code := g.ssh(g.aliceKey, accountGuarded, "echo allowed"); code != 0 || out != "allowed\n" {
		t.Fatalf("an allowed command: %q %q exit %d", out, stderr, code)
	}
	g.settle()
	got := blockedEvents(g.rec.Events())
	want := []string{"no-reboot: reboot", "no-reboot: sudo -n reboot", "no-reboot: sh -c 'echo x; reboot'"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("blocked events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A command completed with TAB is refused at Enter: the gateway reads the
// line off the emulated screen, so the keys "./danger-scr<TAB>" are seen
// as the program they became. The script never runs, the terminal shows
// the reason, and the shell is back at a fresh prompt.
func TestInteractiveCommandBlockedAfterTabCompletion(t *testing.T) {
	g, guarded := guardedGateway(t)
	script := guarded + "-open/danger-script-xyz"
	if _, stderr, code := g.ssh(g.aliceKey, accountKey, "printf '#!/bin/sh\\necho DANGER-RAN\\n' > "+script+" && chmod +x "+script); code != 0 {
		t.Fatalf("make the script: %s", stderr)
	}
	g.settle()
	c := g.startTerminal(accountGuarded, 100, 30)
	c.wait("the first prompt", func(out string) bool { return strings.HasSuffix(strings.TrimRight(out, " "), "$") })
	c.send("cd " + guarded + "-open; PS1='ready$ '\r")
	c.wait("the new prompt", func(out string) bool { return strings.HasSuffix(out, "ready$ ") })
	c.send("./danger-scr\t")
	c.wait("the completion", func(out string) bool { return strings.HasSuffix(out, "danger-script-xyz ") })
	c.send("\r")
	c.wait("the notice and a fresh prompt", func(out string) bool {
		i := strings.Index(out, `rule "no-danger"`)
		return i >= 0 && strings.Contains(out[i:], "ready$ ")
	})
	c.send("echo still-here\r")
	c.wait("the next command", func(out string) bool {
		i := strings.Index(out, "still-here\r\n")
		return i >= 0 && strings.HasSuffix(out, "ready$ ")
	})
	c.send("exit\r")
	c.close()
	g.settle()
	c.mu.Lock()
	out := c.out.String()
	c.mu.Unlock()
	if strings.Contains(out, "DANGER-RAN") {
		t.Fatalf("the blocked script ran:\n%q", out)
	}
	if got := blockedEvents(g.rec.Events()); len(got) != 1 || got[0] != "no-danger: ./danger-script-xyz" {
		t.Fatalf("blocked events %q, want the completed line", got)
	}
}

// An upload under a guarded directory is refused with permission denied
// and the reason, whatever the tool: sftp, scp (which speaks SFTP) and
// rsync. Nothing arrives; the same uploads elsewhere work.
func TestFileTransferBlocked(t *testing.T) {
	g, guarded := guardedGateway(t)
	local := filepath.Join(t.TempDir(), "payload.txt")
	writeFile(t, local, "payload\n")
	sftpPut := func(dir string) (string, int) {
		batch := filepath.Join(t.TempDir(), "batch")
		writeFile(t, batch, fmt.Sprintf("put %s %s/via-sftp\n", local, dir))
		_, stderr, code := run(t, exec.Command("sftp", append(append([]string{"-b", batch}, g.scpArgs(g.aliceKey)...), accountGuarded+"@127.0.0.1")...))
		return stderr, code
	}
	if stderr, code := sftpPut(guarded); code == 0 || !strings.Contains(stderr, "Permission denied") {
		t.Errorf("sftp put under %s: exit %d, stderr %q; want permission denied", guarded, code, stderr)
	}
	if stderr, code := sftpPut(guarded + "-open"); code != 0 {
		t.Errorf("sftp put elsewhere: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code := run(t, exec.Command("scp", append(g.scpArgs(g.aliceKey), local, accountGuarded+"@127.0.0.1:"+guarded+"/via-scp")...))
	if code == 0 {
		t.Errorf("scp under %s succeeded: %s", guarded, stderr)
	}
	_, stderr, code = run(t, exec.Command("scp", append(g.scpArgs(g.aliceKey), "-O", local, accountGuarded+"@127.0.0.1:"+guarded+"/via-legacy-scp")...))
	if code == 0 || !strings.Contains(stderr, `rule "no-upload-guarded"`) {
		t.Errorf("legacy scp under %s: exit %d, stderr %q", guarded, code, stderr)
	}
	rsh := "ssh " + strings.Join(append(g.sshArgs(g.aliceKey), "-p", fmt.Sprint(g.port)), " ")
	_, stderr, code = run(t, exec.Command("rsync", "-e", rsh, local, accountGuarded+"@127.0.0.1:"+guarded+"/via-rsync"))
	if code == 0 || !strings.Contains(stderr, `rule "no-upload-guarded"`) {
		t.Errorf("rsync under %s: exit %d, stderr %q", guarded, code, stderr)
	}
	// A tree copied into the guarded directory's parent would reach into it.
	tree := filepath.Join(t.TempDir(), filepath.Base(guarded))
	if err := os.MkdirAll(tree, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tree, "via-rsync-tree"), "x\n")
	_, stderr, code = run(t, exec.Command("rsync", "-r", "-e", rsh, tree, accountGuarded+"@127.0.0.1:"+filepath.Dir(guarded)+"/"))
	if code == 0 || !strings.Contains(stderr, `rule "no-upload-guarded"`) {
		t.Errorf("rsync -r into the parent of %s: exit %d, stderr %q", guarded, code, stderr)
	}
	if _, stderr, code = run(t, exec.Command("scp", append(g.scpArgs(g.aliceKey), local, accountGuarded+"@127.0.0.1:"+guarded+"-open/via-scp")...)); code != 0 {
		t.Errorf("scp elsewhere: %s", stderr)
	}
	g.settle()
	out, _, _ := g.ssh(g.aliceKey, accountKey, "ls "+guarded+" "+guarded+"-open")
	want := guarded + ":\n\n" + guarded + "-open:\nvia-scp\nvia-sftp\n"
	if out != want {
		t.Fatalf("files on the target:\n%s\nwant nothing under the guarded directory and both allowed uploads:\n%s", out, want)
	}
	g.settle()
	got := strings.Join(blockedEvents(g.rec.Events()), "\n")
	for _, want := range []string{"no-upload-guarded: upload " + guarded + "/via-sftp", "no-upload-guarded: upload " + guarded + "/via-scp"} {
		if !strings.Contains(got, want) {
			t.Errorf("blocked events lack %q:\n%s", want, got)
		}
	}
}

// Ending a live SSH session from outside (terminate, a lock) puts a line
// on the user's terminal saying who and why, then closes the channel and
// the connection; the session is recorded with that reason.
func TestTerminatedSessionTellsTheTerminal(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	c := g.startTerminal(accountKey, 100, 30)
	c.wait("the first prompt", func(out string) bool { return strings.HasSuffix(strings.TrimRight(out, " "), "$") })
	live := g.engine.Sessions()
	if len(live) != 1 {
		t.Fatalf("%d live sessions, want 1", len(live))
	}
	if !g.engine.EndSession(live[0].ID, schema.EndTerminated, "terminated by ops-lead: suspicious activity") {
		t.Fatal("EndSession did not find the session")
	}
	c.wait("the notice", func(out string) bool {
		return strings.Contains(out, "pamtrail: session ended (terminated): terminated by ops-lead: suspicious activity\r\n")
	})
	c.close() // the client exits once the gateway closes the connection
	evs := g.waitSessionEnds(1)
	end := ofKind(evs, "end")[0].End
	if end.Reason != schema.EndTerminated || end.Message != "terminated by ops-lead: suspicious activity" {
		t.Fatalf("recorded end %+v", end)
	}
}

// In audit mode the same actions run and are flagged: an exec, and an
// sftp upload under the guarded directory.
func TestAuditModeFlagsWithoutBlocking(t *testing.T) {
	g, guarded := guardedGatewayMode(t, "audit")
	script := guarded + "-open/danger-script-xyz"
	if _, stderr, code := g.ssh(g.aliceKey, accountKey, "printf '#!/bin/sh\\necho DANGER-RAN\\n' > "+script+" && chmod +x "+script); code != 0 {
		t.Fatalf("make the script: %s", stderr)
	}
	if out, stderr, code := g.ssh(g.aliceKey, accountGuarded, script); code != 0 || out != "DANGER-RAN\n" {
		t.Fatalf("audited exec: %q %q exit %d", out, stderr, code)
	}
	local := filepath.Join(t.TempDir(), "payload.txt")
	writeFile(t, local, "payload\n")
	batch := filepath.Join(t.TempDir(), "batch")
	writeFile(t, batch, fmt.Sprintf("put %s %s/audited\n", local, guarded))
	if _, stderr, code := run(t, exec.Command("sftp", append(append([]string{"-b", batch}, g.scpArgs(g.aliceKey)...), accountGuarded+"@127.0.0.1")...)); code != 0 {
		t.Fatalf("audited sftp put: %s", stderr)
	}
	g.settle()
	var flagged []string
	for _, e := range g.rec.Events() {
		switch {
		case e.Kind == "file" && e.File.Policy != nil:
			flagged = append(flagged, fmt.Sprintf("%s %v: %s %s", e.File.Policy.Rule, e.File.Policy.Blocks(), e.File.Operation, e.File.Path))
		case e.Kind == "command" && e.Command.Policy != nil:
			flagged = append(flagged, fmt.Sprintf("%s %v: %s", e.Command.Policy.Rule, e.Command.Policy.Blocks(), e.Command.Text))
		}
	}
	want := []string{"no-danger false: " + script, "no-upload-guarded false: write " + guarded + "/audited"}
	if strings.Join(flagged, "\n") != strings.Join(want, "\n") {
		t.Fatalf("flagged:\n%s\nwant:\n%s", strings.Join(flagged, "\n"), strings.Join(want, "\n"))
	}
}
