package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/review/reviewtest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestSessionsExport exports the sample sessions, indexed as the collector
// writes them, in every format.
func TestSessionsExport(t *testing.T) {
	f := reviewtest.New(t)
	pgID, sshID, user := reviewtest.UniqueID("s-"), reviewtest.UniqueID("s-"), reviewtest.UniqueID("u")
	m, pgEvents, doc := reviewtest.SampleSession(pgID, user, schema.StatusEnded)
	f.PutSession(doc)
	heartbeat := reviewtest.Event{Seq: int64(len(pgEvents)), Time: reviewtest.SampleStart.Add(4500e6), Name: schema.EventHeartbeat}
	f.IndexEvents(m, append(pgEvents, heartbeat)...)
	m, sshEvents, doc := reviewtest.SampleSSHSession(sshID, user, schema.StatusEnded)
	f.PutSession(doc)
	f.IndexEvents(m, sshEvents...)
	replace := []string{pgID, "SESSION", sshID, "SSH_SESSION", user, "USER"}

	t.Run("asciicast", func(t *testing.T) {
		stdout, stderr, code := sessionsCLI(t, f.URL, "export", sshID, "--format", "asciicast")
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		golden(t, "export_asciicast", stdout, replace...)
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		var header struct{ Version, Width, Height int }
		if err := json.Unmarshal([]byte(lines[0]), &header); err != nil || header.Version != 2 ||
			header.Width != reviewtest.SampleTermWidth || header.Height != reviewtest.SampleTermHeight {
			t.Errorf("header %s: %+v, %v", lines[0], header, err)
		}
		prev := -1.0
		for _, l := range lines[1:] {
			var ev []any
			if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
				t.Fatalf("event line %s: %v", l, err)
			}
			if at := ev[0].(float64); at < prev {
				t.Errorf("event at %v after one at %v: time goes back", at, prev)
			} else {
				prev = at
			}
		}
	})
	t.Run("jsonl holds every event in seq order", func(t *testing.T) {
		stdout, stderr, code := sessionsCLI(t, f.URL, "export", pgID, "--format", "jsonl")
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		sc := bufio.NewScanner(strings.NewReader(stdout))
		seq := 0
		for ; sc.Scan(); seq++ {
			var e struct{ Attributes map[string]any }
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Attributes[schema.AttrSeq] != float64(seq) {
				t.Errorf("line %d: %s (%v), want seq %d", seq+1, sc.Text(), err, seq)
			}
		}
		if seq != len(pgEvents)+1 {
			t.Errorf("%d lines, want %d (every event, the heartbeat included)", seq, len(pgEvents)+1)
		}
	})
	for _, tt := range []struct{ name, id string }{{"csv_postgres", pgID}, {"csv_ssh", sshID}} {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := sessionsCLI(t, f.URL, "export", tt.id, "--format", "csv")
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			golden(t, "export_"+tt.name, stdout, replace...)
		})
	}
	t.Run("asciicast of a PostgreSQL session", func(t *testing.T) {
		_, stderr, code := sessionsCLI(t, f.URL, "export", pgID, "--format", "asciicast")
		if code != 1 || !strings.Contains(stderr, "is a postgres session") || !strings.Contains(stderr, "--format jsonl or csv") {
			t.Errorf("exit %d, stderr %q; want 1 and a clear error", code, stderr)
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "session.cast")
		stdout, stderr, code := sessionsCLI(t, f.URL, "export", sshID, "--format", "asciicast", "-o", path)
		if code != 0 || stdout != "" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o600 || st.Size() == 0 {
			t.Errorf("export file: %v, %v", st, err)
		}
	})
}

func TestSessionsExportArguments(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"export", "s1"}, `format: "" is not one of asciicast, jsonl, csv`},
		{[]string{"export", "s1", "--format", "mp4"}, `format: "mp4" is not one of`},
		{[]string{"export", "--format", "csv"}, "want exactly one session id, got 0"},
		{[]string{"play", "s1", "--speed", "0"}, "speed: 0 is not positive"},
		{[]string{"play", "s1", "--idle-limit", "-1s"}, "idle-limit: -1s is negative"},
		{[]string{"play", "s1", "--from", "yesterday"}, `from: "yesterday" is neither an offset`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := sessionsCLI(t, "http://127.0.0.1:1", tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}
