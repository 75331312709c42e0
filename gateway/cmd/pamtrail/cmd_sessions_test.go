package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/porttest"
	"github.com/pamtrail/pamtrail/gateway/review/reviewtest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func TestRunSessionsArguments(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"no subcommand", nil, "usage: pamtrail sessions list"},
		{"unknown subcommand", []string{"replay"}, `unknown subcommand "replay"`},
		{"bad status", []string{"list", "--status", "running"}, `status: "running" is not one of`},
		{"bad risk", []string{"list", "--risk", "extreme"}, `risk: "extreme" is not one of`},
		{"bad since", []string{"list", "--since", "yesterday"}, `since: "yesterday" is neither a duration`},
		{"negative limit", []string{"list", "--limit", "-1"}, "limit: -1 is negative"},
		{"stray list argument", []string{"list", "alice"}, `unexpected argument "alice"`},
		{"search without text", []string{"search"}, "want exactly one search text, got 0"},
		{"search blank text", []string{"search", "  "}, "search text: empty"},
		{"show without id", []string{"show"}, "want exactly one session id, got 0"},
		{"show two ids", []string{"show", "a", "b"}, "want exactly one session id, got 2"},
		{"zero interval", []string{"live", "a", "--interval", "0s"}, "interval: 0s is not positive"},
		{"bad url", []string{"list", "--url", "es:9200"}, "url:"},
		{"username without password", []string{"list", "--username", "admin", "--password-env", "PAMTRAIL_TEST_UNSET_PASSWORD"},
			"PAMTRAIL_TEST_UNSET_PASSWORD (--password-env) is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runSessions(tt.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"7d", now.AddDate(0, 0, -7), false},
		{"2026-11-01T00:00:00Z", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), false},
		{"-1h", time.Time{}, true},
		{"1w", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if (err != nil) != tt.err || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// sessionsCLI runs `pamtrail sessions` against the real Elasticsearch.
func sessionsCLI(t *testing.T, url string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runSessions(append(args, "--url", url), &out, &errOut)
	return out.String(), errOut.String(), code
}

func placeholder(name string, n int) string { return (name + strings.Repeat("_", n))[:n] }

// golden compares got, with the test's random ids replaced, with
// testdata/NAME.golden.
func golden(t *testing.T, name, got string, replace ...string) {
	t.Helper()
	got = strings.NewReplacer(replace...).Replace(got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (-update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestSessionsCLIGolden renders the sample sessions, indexed as the
// collector writes them, through every read-only subcommand.
func TestSessionsCLIGolden(t *testing.T) {
	f := reviewtest.New(t)
	id, sshID, user := reviewtest.UniqueID("s-"), reviewtest.UniqueID("s-"), reviewtest.UniqueID("u")
	m, events, doc := reviewtest.SampleSession(id, user, schema.StatusEnded)
	f.PutSession(doc)
	f.IndexEvents(m, events...)
	m, events, doc = reviewtest.SampleSSHSession(sshID, user, schema.StatusEnded)
	f.PutSession(doc)
	f.IndexEvents(m, events...)
	// Placeholders as long as the random ids keep the tables aligned.
	replace := []string{id, placeholder("SESSION", len(id)), sshID, placeholder("SSH_SESSION", len(sshID)),
		user, placeholder("USER", len(user))}

	tests := []struct {
		name string
		args []string
	}{
		{"list", []string{"list", "--user", user}},
		{"search", []string{"search", "payroll_archive", "--user", user}},
		{"search_output", []string{"search", "secret plan", "--user", user}},
		{"search_raw", []string{"search", "secret plan", "--user", user, "--raw"}},
		{"show", []string{"show", id}},
		{"show_grep", []string{"show", id, "--grep", "division by zero"}},
		{"show_ssh", []string{"show", sshID}},
		{"show_ssh_raw", []string{"show", sshID, "--raw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := sessionsCLI(t, f.URL, tt.args...)
			if code != 0 {
				t.Fatalf("exit code %d, stderr %q", code, stderr)
			}
			if strings.ContainsRune(stdout, 0x1b) || strings.ContainsRune(stdout, 0x07) {
				t.Errorf("terminal control characters reached the output: %q", stdout)
			}
			golden(t, "sessions_"+tt.name, stdout, replace...)
		})
	}
}

// TestSessionsSearchOneHitPerAction: a command echoed by the terminal is
// found once (its command event), not once more per raw chunk that
// displayed it; --raw adds the chunks.
func TestSessionsSearchOneHitPerAction(t *testing.T) {
	f := reviewtest.New(t)
	id, user := reviewtest.UniqueID("s-"), reviewtest.UniqueID("u")
	m, events, doc := reviewtest.SampleSSHSession(id, user, schema.StatusEnded)
	f.PutSession(doc)
	f.IndexEvents(m, events...)
	tests := []struct {
		text     string
		raw      bool
		wantSeqs []float64
	}{
		{"rm -rf", false, []float64{7}},
		{"rm -rf", true, []float64{7, 6}},
		{"secret plan", false, []float64{10}},
		{"payroll.csv", false, []float64{11}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s raw=%v", tt.text, tt.raw), func(t *testing.T) {
			args := []string{"search", tt.text, "--user", user, "--json"}
			if tt.raw {
				args = append(args, "--raw")
			}
			stdout, stderr, code := sessionsCLI(t, f.URL, args...)
			var out struct {
				Events []struct{ Attributes map[string]any }
			}
			if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil {
				t.Fatalf("exit %d, stderr %q, stdout %s", code, stderr, stdout)
			}
			var seqs []float64
			for _, e := range out.Events {
				seqs = append(seqs, e.Attributes[schema.AttrSeq].(float64))
			}
			if !slices.Equal(seqs, tt.wantSeqs) {
				t.Errorf("hits at seq %v, want %v", seqs, tt.wantSeqs)
			}
		})
	}
}

func TestSessionsJSON(t *testing.T) {
	f := reviewtest.New(t)
	id, user := reviewtest.UniqueID("s-"), reviewtest.UniqueID("u")
	m, events, doc := reviewtest.SampleSession(id, user, schema.StatusEnded)
	f.PutSession(doc)
	f.IndexEvents(m, events...)

	stdout, stderr, code := sessionsCLI(t, f.URL, "show", id, "--json")
	if code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	var out struct {
		Session struct {
			ID      string `json:"session_id"`
			Summary struct {
				Warnings []struct{ Seq int64 } `json:"warnings"`
			} `json:"summary"`
		} `json:"session"`
		Events []struct {
			EventName  string         `json:"event_name"`
			Attributes map[string]any `json:"attributes"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("show --json is not JSON: %v\n%s", err, stdout)
	}
	if out.Session.ID != id || len(out.Events) != len(events) || len(out.Session.Summary.Warnings) != 2 ||
		out.Events[3].Attributes[schema.AttrDBQueryText] != "DROP TABLE payroll_archive" {
		t.Errorf("show --json = %+v", out)
	}

	stdout, _, code = sessionsCLI(t, f.URL, "list", "--user", user, "--json")
	var list struct {
		Total    int
		Sessions []map[string]any
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &list) != nil || list.Total != 1 || list.Sessions[0]["session_id"] != id {
		t.Errorf("list --json (exit %d) = %s", code, stdout)
	}
}

func TestSessionsErrors(t *testing.T) {
	url := testenv.Elasticsearch(t)
	closed := "http://" + porttest.Addr(t)
	tests := []struct {
		name       string
		url        string
		args       []string
		wantStderr string
	}{
		{"unknown session", url, []string{"show", "no-such-session"}, "no session no-such-session"},
		{"unknown session live", url, []string{"live", "no-such-session"}, "no session no-such-session"},
		{"unreachable", closed, []string{"list"}, "Elasticsearch at " + closed + ":"},
		{"unreachable search", closed, []string{"search", "x"}, "Elasticsearch at " + closed + ":"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := sessionsCLI(t, tt.url, tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("exit code %d, stderr %q; want 1 and %q", code, stderr, tt.wantStderr)
			}
		})
	}
}

// TestSessionsLive follows an active session while the test appends events
// and then ends it: each event is printed once, in seq order, and the view
// stops by itself.
func TestSessionsLive(t *testing.T) {
	f := reviewtest.New(t)
	id := reviewtest.UniqueID("s-")
	m, events, doc := reviewtest.SampleSession(id, reviewtest.UniqueID("u"), schema.StatusActive)
	f.PutSession(doc)
	f.IndexEvents(m, events[:2]...)

	var stdout, stderr testenv.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runSessions([]string{"show", id, "--follow", "--interval", "50ms", "--url", f.URL}, &stdout, &stderr)
	}()
	waitOutput := func(want string) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() (bool, string) {
			return strings.Contains(stdout.String(), want), fmt.Sprintf("output lacks %q:\n%s", want, stdout.String())
		})
	}
	waitOutput("SELECT id, name FROM payroll WHERE id = 7")
	f.IndexEvents(m, events[2:4]...)
	waitOutput("DROP TABLE payroll_archive")
	select {
	case code := <-done:
		t.Fatalf("live view exited (%d) while the session is active; stderr %q", code, stderr.String())
	default:
	}
	f.IndexEvents(m, events[4:]...)
	_, _, ended := reviewtest.SampleSession(id, m.User, schema.StatusEnded)
	f.PutSession(ended)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d, stderr %q", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("live view did not stop after the session ended; output:\n%s", stdout.String())
	}
	out := stdout.String()
	last := -1
	for seq := range events {
		header := fmt.Sprintf("\n#%d  ", seq)
		if n := strings.Count(out, header); n != 1 {
			t.Errorf("event #%d printed %d times, want once", seq, n)
		}
		i := strings.Index(out, header)
		if i < last {
			t.Errorf("event #%d printed out of order", seq)
		}
		last = i
	}
	if !strings.Contains(out, "Session "+id+" is ended; no longer following.") {
		t.Errorf("output lacks the end notice:\n%s", out)
	}
}
