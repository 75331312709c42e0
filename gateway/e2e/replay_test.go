package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// tmux drives a terminal headlessly: its own server (socket in a temp dir,
// no user config), one session, one pane of a fixed size without a status
// line, so the pane is exactly the terminal the program inside sees.
type tmux struct {
	t    *testing.T
	sock string
}

const (
	termCols, termRows = 100, 30
)

func newTmux(t *testing.T, name string, command ...string) *tmux {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "tmux.conf")
	writeFile(t, conf, "set -g status off\nset -g default-terminal screen\nset -g history-limit 0\nset -g remain-on-exit on\n")
	m := &tmux{t: t, sock: filepath.Join(dir, "s")}
	args := append([]string{"-f", conf, "new-session", "-d", "-s", name, "-x", fmt.Sprint(termCols), "-y", fmt.Sprint(termRows), "--"}, command...)
	m.run(args...)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", m.sock, "kill-server").Run() })
	return m
}

func (m *tmux) run(args ...string) string {
	m.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-S", m.sock}, args...)...)
	cmd.Env = append(os.Environ(), "LANG=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is what the pane shows: its lines as text, trailing blanks cut.
func (m *tmux) screen() string {
	m.t.Helper()
	lines := strings.Split(m.run("capture-pane", "-p"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

// typeText types text as keystrokes; keys are tmux key names (Enter, Tab,
// Escape, C-c).
func (m *tmux) typeText(text string) { m.run("send-keys", "-l", text) }
func (m *tmux) keys(keys ...string)  { m.run(append([]string{"send-keys"}, keys...)...) }

// waitScreen polls until cond holds for the pane's screen.
func (m *tmux) waitScreen(what string, cond func(string) bool) string {
	m.t.Helper()
	var last string
	testenv.Eventually(m.t, 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		last = m.screen()
		return cond(last), fmt.Sprintf("waiting for %s; screen:\n%s", what, last)
	})
	return last
}

// waitPrompt polls until the screen holds want, ends at the shell's prompt
// and is the same on two reads 300 ms apart: the command has finished and
// the shell is waiting for the next one.
func (m *tmux) waitPrompt(want string) string {
	m.t.Helper()
	prev := ""
	return m.waitScreen("the prompt after "+want, func(s string) bool {
		settled := s == prev && strings.Contains(s, want) && strings.HasSuffix(s, "$")
		prev = s
		if !settled {
			time.Sleep(300 * time.Millisecond) // between two reads: the poll interval of a settle check
		}
		return settled
	})
}

// TestTerminalReplay drives an interactive bash session through the gateway
// to the real OpenSSH target in tmux: typed commands, TAB completion, a vim
// edit, top for 2 s stopped with Ctrl-C. It exports the session as
// asciicast, replays it with the real asciinema CLI (PyPI) in a second tmux
// of the same size, and compares the final screens; `show` must print no
// ESC byte and `search` exactly one hit per matching command.
func TestTerminalReplay(t *testing.T) {
	asciinema := installReplayTools(t)
	s := newStack(t, stackOptions{ssh: true})
	s.start()
	marker := "rv" + randomHex(4)
	file := "/tmp/" + marker + "-completion-target.txt"
	ssh := append([]string{"ssh", "-t"}, s.sshArgs(t)...)
	term := newTmux(t, "rec", append(ssh, "demo-ssh@127.0.0.1")...)

	term.waitPrompt("Last login")
	step := func(keys string, want string) {
		t.Helper()
		term.typeText(keys)
		term.keys("Enter")
		term.waitPrompt(want)
	}
	step("echo "+marker+" one; printf '\\033[1;31mred\\033[0m\\n'", marker+" one")
	step("touch "+file+" && ls --color=always /tmp/"+marker+"*", file)
	term.typeText("ls -l /tmp/" + marker + "-compl") // TAB completes the rest
	term.keys("Tab")
	term.waitScreen("TAB completion", func(s string) bool { return strings.Contains(s, "ls -l "+file) })
	term.keys("Enter")
	term.waitPrompt(marker + "-completion-target.txt\n")
	term.typeText("vim -u NONE -N /tmp/" + marker + "-edit.txt")
	term.keys("Enter")
	term.waitScreen("vim", func(s string) bool { return strings.Contains(s, "~") && strings.Contains(s, marker+"-edit.txt") })
	term.keys("i")
	term.typeText("written in vim by " + marker)
	term.keys("Escape")
	term.typeText(":wq")
	term.keys("Enter")
	term.waitPrompt(marker + "-edit.txt")
	step("cat /tmp/"+marker+"-edit.txt", "written in vim by "+marker+"\n")
	term.typeText("top -d 0.5")
	term.keys("Enter")
	term.waitScreen("top", func(s string) bool { return strings.Contains(s, "PID") && strings.Contains(s, "%CPU") })
	time.Sleep(2 * time.Second) // the scenario: top runs and redraws for 2 s
	term.keys("C-c")
	// top flushes unread input when it restores the terminal: type the
	// next command only once the shell is back.
	term.waitPrompt("")
	step("echo "+marker+" done", marker+" done\n")
	want := term.screen()
	t.Logf("the screen tmux showed at the end:\n%s", want)

	// While live, the detail shows the connection: live and how far behind,
	// the last activity, the traffic so far (heartbeats carry it), the gateway.
	starts := s.waitEvents(60*time.Second, review.Filter{EventName: schema.EventSessionStart}, func(evs []review.Event) (bool, string) {
		return len(evs) == 1, describe(evs)
	})
	id := starts[0].Str(schema.AttrSessionID)
	s.waitSession(id, 60*time.Second, func(sess review.Session) bool {
		return sess.Status == schema.StatusActive && sess.BytesIn > 0 && sess.BytesOut > 0 && !sess.LastActivity.IsZero()
	})
	live := run(t, pamtrailBin, "sessions", "show", id, "--url", s.esURL)
	for _, line := range []string{"Connection     live (view ", "Gateway        " + s.gatewayID, "Last activity  "} {
		if !strings.Contains(live, line) {
			t.Errorf("show of the live session lacks %q:\n%s", line, live)
		}
	}
	if strings.Contains(live, "counted when the session ends") {
		t.Errorf("show of the live session has no traffic yet:\n%s", live)
	}

	term.run("kill-server") // the client hangs up: the gateway ends the session
	s.waitSession(id, 60*time.Second, func(sess review.Session) bool { return sess.Status != schema.StatusActive })
	// Requests in flight may be indexed out of order: the end can be on
	// the session document before an earlier request's output is
	// searchable. Export once every seq up to the end is there.
	s.waitEvents(60*time.Second, review.Filter{SessionID: id, Size: 10000}, func(evs []review.Event) (bool, string) {
		seen, last, ended := map[int64]bool{}, int64(-1), false
		for _, ev := range evs {
			seen[ev.Int(schema.AttrSeq)] = true
			last = max(last, ev.Int(schema.AttrSeq))
			ended = ended || ev.EventName == schema.EventSessionEnd
		}
		return ended && len(seen) == int(last+1), fmt.Sprintf("%d of seqs 0..%d indexed, end indexed: %v", len(seen), last, ended)
	})

	cast := filepath.Join(t.TempDir(), "session.cast")
	run(t, pamtrailBin, "sessions", "export", id, "--format", "asciicast", "-o", cast, "--url", s.esURL)
	checkCastHeader(t, cast)

	done := filepath.Join(t.TempDir(), "played")
	replay := newTmux(t, "play", "sh", "-c", fmt.Sprintf("%s play -s 20 -i 0.2 %s; touch %s; exec sleep 600", asciinema, cast, done))
	testenv.Eventually(t, 120*time.Second, 100*time.Millisecond, func() (bool, string) {
		_, err := os.Stat(done)
		return err == nil, "asciinema play has not finished; screen:\n" + replay.screen()
	})
	if got := replay.screen(); got != want {
		t.Errorf("replayed final screen differs from the one tmux showed\n--- replayed\n%s\n--- tmux showed\n%s", got, want)
	}

	show := run(t, pamtrailBin, "sessions", "show", id, "--url", s.esURL)
	if strings.ContainsRune(show, 0x1b) {
		t.Errorf("show printed an ESC byte:\n%q", show)
	}
	for _, cmd := range []string{"$ echo " + marker + " one", "$ ls -l " + file, "$ vim -u NONE -N /tmp/" + marker + "-edit.txt", "$ top -d 0.5"} {
		if !strings.Contains(show, cmd) {
			t.Errorf("the transcript lacks %q:\n%s", cmd, show)
		}
	}
	for _, text := range []string{marker + " one", "ls -l " + file, "cat /tmp/" + marker + "-edit.txt", marker + " done"} {
		hits := searchHits(t, s, text)
		if len(hits) != 1 || hits[0].EventName != schema.EventSSHCommand {
			t.Errorf("search %q: %d hits, want exactly one command: %s", text, len(hits), describe(hits))
		}
	}
}

// searchHits runs `pamtrail sessions search TEXT --json`.
func searchHits(t *testing.T, s *stack, text string) []review.Event {
	t.Helper()
	var out struct{ Events []review.Event }
	raw := run(t, pamtrailBin, "sessions", "search", text, "--json", "--url", s.esURL)
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("search --json: %v\n%s", err, raw)
	}
	return out.Events
}

// checkCastHeader: the export opens with an asciicast v2 header of the
// terminal's size.
func checkCastHeader(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	var h struct{ Version, Width, Height int }
	if err := json.Unmarshal([]byte(line), &h); err != nil || h.Version != 2 || h.Width != termCols || h.Height != termRows {
		t.Fatalf("asciicast header %q: %+v, %v; want version 2, %dx%d", line, h, err, termCols, termRows)
	}
}

// installReplayTools runs replaytools/install.sh (tmux, vim, procps from
// Debian; asciinema from PyPI into a venv) and returns asciinema's path.
func installReplayTools(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join(repoRoot, "gateway", "e2e", "replaytools", "install.sh")).Output()
	if err != nil {
		t.Fatalf("replaytools/install.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}
