package ssh_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestFileTransfers moves files with the real scp (SFTP and legacy
// protocol), sftp -b and rsync -e ssh, checks they arrive intact, and that
// each operation is recorded with its path and byte count.
func TestFileTransfers(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	local := t.TempDir()
	remote := g.remoteTempDir()
	up := filepath.Join(local, "up.bin")
	const size = 1<<20 + 123
	writeRandom(t, up, size)
	upSum := sha256File(t, up)

	files := func(evs []recordertest.Event, session string) []recorder.FileOp {
		var ops []recorder.FileOp
		for _, e := range ofKind(evs, "file") {
			if e.Session == session {
				ops = append(ops, e.File)
			}
		}
		return ops
	}
	// transfer runs a client command and returns the file operations its
	// session recorded, once the session has ended. Sessions run one at a
	// time, so the next session to end is the client's.
	transfer := func(name string, args ...string) []recorder.FileOp {
		t.Helper()
		// Sessions of earlier steps (a check's ssh included) must have
		// recorded their end first, or the next end may not be ours.
		g.settle()
		before := len(ofKind(g.rec.Events(), "end"))
		out, stderr, code := run(t, exec.Command(name, args...))
		if code != 0 {
			t.Fatalf("%s %v: exit %d\nstdout: %s\nstderr: %s", name, args, code, out, stderr)
		}
		evs := g.waitSessionEnds(before + 1)
		end := ofKind(evs, "end")[before]
		if end.End.Reason != schema.EndClientQuit {
			t.Errorf("%s: session ended %+v, want %s", name, end.End, schema.EndClientQuit)
		}
		return files(evs, end.Session)
	}
	target := func(path string) string { return accountKey + "@127.0.0.1:" + path }
	want := func(ops []recorder.FileOp, w recorder.FileOp) {
		t.Helper()
		for _, op := range ops {
			if op.Channel == w.Channel && op.Operation == w.Operation && op.Path == w.Path &&
				op.Target == w.Target && op.Bytes == w.Bytes && op.Error == "" {
				return
			}
		}
		t.Errorf("no %s %s of %s (%d bytes) recorded; got %+v", w.Channel, w.Operation, w.Path, w.Bytes, ops)
	}

	t.Run("scp over sftp", func(t *testing.T) {
		dst := remote + "/scp-sftp.bin"
		want(transfer("scp", append(g.scpArgs(g.aliceKey), up, target(dst))...),
			recorder.FileOp{Channel: "sftp", Operation: "write", Path: dst, Bytes: size})
		g.checkRemoteSum(dst, upSum)
		back := filepath.Join(local, "scp-sftp.back")
		want(transfer("scp", append(g.scpArgs(g.aliceKey), target(dst), back)...),
			recorder.FileOp{Channel: "sftp", Operation: "read", Path: dst, Bytes: size})
		checkSum(t, back, upSum)
	})

	t.Run("scp legacy protocol", func(t *testing.T) {
		dst := remote + "/scp-legacy.bin"
		want(transfer("scp", append(g.scpArgs(g.aliceKey), "-O", up, target(dst))...),
			recorder.FileOp{Channel: "scp", Operation: "upload", Path: dst, Bytes: size})
		g.checkRemoteSum(dst, upSum)
		back := filepath.Join(local, "scp-legacy.back")
		want(transfer("scp", append(g.scpArgs(g.aliceKey), "-O", target(dst), back)...),
			recorder.FileOp{Channel: "scp", Operation: "download", Path: dst, Bytes: size})
		checkSum(t, back, upSum)
	})

	t.Run("sftp batch", func(t *testing.T) {
		got := filepath.Join(local, "sftp.back")
		batch := filepath.Join(local, "batch")
		writeFile(t, batch, strings.Join([]string{
			"mkdir " + remote + "/b",
			"put " + up + " " + remote + "/b/f1",
			"rename " + remote + "/b/f1 " + remote + "/b/f2",
			"chmod 600 " + remote + "/b/f2",
			"get " + remote + "/b/f2 " + got,
			"rm " + remote + "/b/f2",
			"rmdir " + remote + "/b",
		}, "\n")+"\n")
		args := append(g.sshArgs(g.aliceKey), "-P", fmt.Sprint(g.port), "-b", batch, accountKey+"@127.0.0.1")
		ops := transfer("sftp", args...)
		checkSum(t, got, upSum)
		for _, w := range []recorder.FileOp{
			{Channel: "sftp", Operation: "mkdir", Path: remote + "/b"},
			{Channel: "sftp", Operation: "write", Path: remote + "/b/f1", Bytes: size},
			{Channel: "sftp", Operation: "rename", Path: remote + "/b/f1", Target: remote + "/b/f2"},
			{Channel: "sftp", Operation: "setstat", Path: remote + "/b/f2"},
			{Channel: "sftp", Operation: "read", Path: remote + "/b/f2", Bytes: size},
			{Channel: "sftp", Operation: "remove", Path: remote + "/b/f2"},
			{Channel: "sftp", Operation: "rmdir", Path: remote + "/b"},
		} {
			want(ops, w)
		}
	})

	t.Run("rsync tree", func(t *testing.T) {
		tree := filepath.Join(local, "tree")
		sizes := map[string]int{
			"a.txt": 70001, "top.bin": 200000, "sub/b.bin": 140002, "sub/deeper/empty": 0,
			"sub/dir with space/é ü.txt": 5000,
		}
		for rel, n := range sizes {
			p := filepath.Join(tree, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			writeRandom(t, p, n)
		}
		rsh := "ssh " + strings.Join(g.sshArgs(g.aliceKey), " ") + " -p " + fmt.Sprint(g.port)
		dst := remote + "/tree"
		back := filepath.Join(local, "tree.back")
		// every lists each file of the tree as a recorded operation
		// moving its whole content.
		every := func(op, dir string) []string {
			var w []string
			for rel, n := range sizes {
				w = append(w, fmt.Sprintf("%s %s/%s %d", op, dir, rel, n))
			}
			return w
		}
		for _, step := range []struct {
			name string
			args []string
			prep func()
			want []string
			// literal: the recorded bytes are the changed part only.
			literal bool
			// fallback: one operation with at least the tree's bytes.
			fallback bool
			check    func()
		}{{
			name: "push",
			args: []string{"-a", tree + "/", target(dst + "/")},
			want: every("upload", dst),
			check: func() {
				remoteSums, stderr, code := g.ssh(g.aliceKey, accountKey, "cd "+dst+" && find . -type f -exec sha256sum {} + | sort -k2")
				if code != 0 || strings.TrimSpace(remoteSums) != treeSums(t, tree) {
					t.Errorf("remote tree differs (exit %d, %s):\n got %s\nwant %s", code, stderr, remoteSums, treeSums(t, tree))
				}
			},
		}, {
			name: "pull",
			args: []string{"-a", target(dst), back + "/"},
			want: every("download", dst),
			check: func() {
				if got, want := treeSums(t, filepath.Join(back, "tree")), treeSums(t, tree); got != want {
					t.Errorf("pulled tree differs:\n got %s\nwant %s", got, want)
				}
			},
		}, {
			name: "push of one changed file",
			prep: func() {
				f, err := os.OpenFile(filepath.Join(tree, "top.bin"), os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteAt([]byte("changed in the middle"), 100000); err != nil {
					t.Fatal(err)
				}
				// A new modification time: rsync's quick check compares
				// size and time, and the write may fall in the second
				// the file was created.
				when := time.Unix(1_600_000_000, 0)
				if err := os.Chtimes(f.Name(), when, when); err != nil {
					t.Fatal(err)
				}
			},
			args:    []string{"-a", tree + "/", target(dst + "/")},
			want:    []string{"upload " + dst + "/top.bin"},
			literal: true,
		}, {
			// xattrs change the file list's format, which is not decoded:
			// the transfer is recorded as one operation, as a whole.
			name:     "push with xattrs",
			args:     []string{"-rX", tree + "/", target(dst + ".x/")},
			fallback: true,
			want:     []string{"upload " + dst + ".x/"},
		}} {
			if step.prep != nil {
				step.prep()
			}
			var got []string
			for _, op := range transfer("rsync", append([]string{"-e", rsh}, step.args...)...) {
				if op.Channel != "rsync" || op.Error != "" {
					t.Errorf("%s: recorded %+v", step.name, op)
				}
				if step.fallback {
					total := 0
					for _, n := range sizes {
						total += n
					}
					if op.Bytes < int64(total) {
						t.Errorf("%s: %d bytes recorded, want at least the tree's %d", step.name, op.Bytes, total)
					}
					got = append(got, op.Operation+" "+op.Path)
					continue
				}
				if step.literal {
					// The block size is about the square root of the file
					// size: a small change moves one or two blocks.
					if op.Bytes <= 0 || op.Bytes >= int64(sizes["top.bin"])/10 {
						t.Errorf("%s: %s moved %d bytes, want a few blocks", step.name, op.Path, op.Bytes)
					}
					got = append(got, op.Operation+" "+op.Path)
					continue
				}
				got = append(got, fmt.Sprintf("%s %s %d", op.Operation, op.Path, op.Bytes))
			}
			sort.Strings(got)
			sort.Strings(step.want)
			if strings.Join(got, "\n") != strings.Join(step.want, "\n") {
				t.Errorf("%s recorded:\n%s\nwant:\n%s", step.name, strings.Join(got, "\n"), strings.Join(step.want, "\n"))
			}
			if step.check != nil {
				step.check()
			}
		}
	})
}

// remoteTempDir makes a directory on the target, removed at cleanup.
func (g *gateway) remoteTempDir() string {
	g.t.Helper()
	out, stderr, code := g.ssh(g.aliceKey, accountKey, "mktemp -d /tmp/pamtrail-test.XXXXXX")
	dir := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(dir, "/tmp/pamtrail-test.") {
		g.t.Fatalf("remote mktemp: %q exit %d: %s", out, code, stderr)
	}
	g.t.Cleanup(func() {
		// Removed directly on the target: the gateway is stopped by then.
		_ = exec.Command("ssh", "-F", "/dev/null", "-i", g.target.KeyFile, "-o", "IdentitiesOnly=yes",
			"-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+g.target.KnownHostsFile,
			"-p", fmt.Sprint(g.target.Port), g.target.User+"@"+g.target.Host, "rm -rf "+dir).Run()
	})
	g.settle()
	return dir
}

func (g *gateway) checkRemoteSum(path, want string) {
	g.t.Helper()
	out, stderr, code := g.ssh(g.aliceKey, accountKey, "sha256sum "+path)
	if code != 0 || !strings.HasPrefix(out, want+" ") {
		g.t.Errorf("remote %s: %q exit %d %s; want sha256 %s", path, out, code, stderr, want)
	}
	g.settle()
}

func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func checkSum(t *testing.T, path, want string) {
	t.Helper()
	if got := sha256File(t, path); got != want {
		t.Errorf("%s: sha256 %s, want %s", path, got, want)
	}
}

// treeSums lists "sum  ./rel" for every file, sorted by path, like
// find . -type f -exec sha256sum {} + | sort -k2.
func treeSums(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		lines = append(lines, sha256File(t, p)+"  ./"+rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i][66:] < lines[j][66:] })
	return strings.Join(lines, "\n")
}
