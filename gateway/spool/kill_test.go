package spool

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/keys"
)

// childDirEnv, when set, turns the test binary into the writer child of
// TestKilledWriterLosesNothingDurable (see TestMain).
const childDirEnv = "PAMTRAIL_SPOOL_CHILD_DIR"

// TestKilledWriterLosesNothingDurable runs a writer in a child process and
// SIGKILLs it mid-stream. Everything the child saw durable must come back,
// the records must be a gap-free prefix of what it appended, and no damage
// may be reported: a killed process cannot tear a write() the kernel has
// accepted.
func TestKilledWriterLosesNothingDurable(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "ring.json")
	ring := testenv.Keyring(t, 1)
	data, err := ring.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, "PAMTRAIL_SPOOL_CHILD_KEYS="+keyFile)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	durable := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "durable "))
		if err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		durable = n
		if durable >= 3000 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if durable < 3000 {
		t.Fatalf("child stopped early after %d durable records", durable)
	}

	s := openT(t, dir, Options{Keys: ring})
	got := drain(t, s, 1000)
	if len(got) <= durable {
		t.Fatalf("%d records after the kill, but %d were reported durable", len(got), durable+1)
	}
	for i, p := range got {
		if !bytes.Equal(p, payload(i)) {
			t.Fatalf("record %d = %.30q, want %.30q: not a gap-free prefix", i, p, payload(i))
		}
	}
	if st := s.Stats(); st.RecoveredLost != 0 {
		t.Fatalf("RecoveredLost = %d after a kill", st.RecoveredLost)
	}
}

// runKillChild is the child side: append forever, reporting every 100th
// record once it is durable. It returns only on error.
func runKillChild(dir, keyFile string) error {
	ringData, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	ring, err := keys.Parse(ringData)
	if err != nil {
		return err
	}
	s, err := Open(dir, testOptions(Options{Keys: ring, FsyncInterval: 5 * time.Millisecond, SegmentBytes: 256 << 10, MaxRecordBytes: 1024}))
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		pos, err := s.Append(payload(i))
		if err != nil {
			return err
		}
		if i%100 == 0 {
			if err := s.WaitDurable(context.Background(), pos); err != nil {
				return err
			}
			fmt.Printf("durable %d\n", i)
		}
	}
}
