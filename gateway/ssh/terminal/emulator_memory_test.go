package terminal

import (
	"runtime"
	"strings"
	"testing"
)

// A session's terminal tracker must stay small: a gateway holds one per
// interactive session. vt alone allocates over 4 MiB per emulator.
func TestTrackerMemoryPerSession(t *testing.T) {
	const n = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	trackers := make([]*Tracker, 0, n)
	for range n {
		trackers = append(trackers, New(Options{Width: 80, Height: 24}))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perTracker := (int64(after.HeapInuse) - int64(before.HeapInuse)) / n
	for _, tr := range trackers {
		tr.Close()
	}
	if perTracker > 1<<20 {
		t.Fatalf("a tracker holds %d KiB of heap, want at most 1 MiB (is vt's parser buffer shrunk? see shrinkParserBuffer)", perTracker>>10)
	}
	t.Logf("%d KiB of heap per tracker", perTracker>>10)
}

// Strings longer than the shrunk buffer (an OSC 52 clipboard copy, say)
// are cut for the emulator but do not disturb the command line.
func TestLongOSCStringDoesNotDisturbCommands(t *testing.T) {
	tr := New(Options{Width: 80, Height: 24})
	defer tr.Close()
	tr.Output([]byte("$ "))
	tr.Output([]byte("\x1b]52;c;" + strings.Repeat("QUFB", emulatorDataBytes) + "\x07"))
	tr.Input([]byte("echo hi\r"))
	tr.Output([]byte("echo hi\r\nhi\r\n$ "))
	cmds := tr.Close()
	if len(cmds) != 1 || cmds[0].Text != "echo hi" {
		t.Fatalf("commands %+v, want one: echo hi", cmds)
	}
}
