package rsyncparse

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// capture is real rsync traffic recorded by testdata/capture.sh.
type capture struct {
	cmd              Command
	client, server   []byte
	root             string // the capture's temporary directory
	sending, receive func(*Tracker, []byte) []Op
	sendingBytes     []byte
	receivingBytes   []byte
}

func loadCapture(t testing.TB, name string) capture {
	t.Helper()
	read := func(ext string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name+ext))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cmd, ok := ParseCommand(string(read(".cmd")))
	if !ok {
		t.Fatalf("%s: command not recognised", name)
	}
	c := capture{cmd: cmd, client: read(".c2s"), server: read(".s2c")}
	paths := cmd.Paths
	if len(paths) == 0 { // -s: the arguments start the client's bytes
		paths = strings.Split(string(c.client), "\x00")[2:]
	}
	c.root = strings.Join(strings.SplitN(paths[0], "/", 4)[:3], "/")
	c.sending, c.sendingBytes = (*Tracker).ClientData, c.client
	c.receive, c.receivingBytes = (*Tracker).ServerData, c.server
	if cmd.Sender {
		c.sending, c.sendingBytes = (*Tracker).ServerData, c.server
		c.receive, c.receivingBytes = (*Tracker).ClientData, c.client
	}
	return c
}

// replay feeds the receiving side, whose stream the tracker reads only up
// to the end of the handshake, then the sending side in pieces of chunk
// bytes, as the relay would hand them over.
func (c capture) replay(tr *Tracker, chunk int) []Op {
	ops := c.receive(tr, c.receivingBytes)
	for b := c.sendingBytes; len(b) > 0; {
		n := min(chunk, len(b))
		ops = append(ops, c.sending(tr, b[:n])...)
		b = b[n:]
	}
	return ops
}

type wantOp struct {
	path          string // under the capture's directory
	size, literal int64
	operation     string
}

func TestTrackerCaptures(t *testing.T) {
	tree := func(op, dir string, skip ...string) []wantOp {
		var w []wantOp
		for _, f := range []wantOp{
			{path: "a.txt", size: 5000}, {path: "big.bin", size: 40000}, {path: "empty"},
			{path: "hard.bin", size: 40000}, {path: "sub dir/é ü.txt", size: 300},
			{path: "sub dir/deeper/c.bin", size: 3000},
		} {
			if !strings.Contains(strings.Join(skip, "\x00"), f.path) {
				w = append(w, wantOp{operation: op, path: dir + f.path, size: f.size, literal: f.size})
			}
		}
		return w
	}
	delta := []wantOp{
		{operation: OpUpload, path: "push_a/big.bin", size: 40000, literal: 700},
		{operation: OpUpload, path: "push_a/hard.bin", size: 40000, literal: 700},
	}
	sub := []wantOp{
		{operation: OpDownload, path: "src/sub dir/é ü.txt", size: 300, literal: 300},
		{operation: OpDownload, path: "src/sub dir/deeper/c.bin", size: 3000, literal: 3000},
	}
	for _, tc := range []struct {
		name string
		want []wantOp
	}{
		{"push_r", tree(OpUpload, "push_r/")},
		{"push_a", tree(OpUpload, "push_a/")},
		{"push_az", tree(OpUpload, "push_az/")},
		{"push_delta", delta},
		// -H: big.bin is linked to hard.bin, not sent.
		{"push_noinc_delete", tree(OpUpload, "push_noinc/", "big.bin")},
		{"push_dry_run", nil},
		{"push_one_file", []wantOp{{operation: OpUpload, path: "one.txt", size: 5000, literal: 5000}}},
		{"pull_a", tree(OpDownload, "src/")},
		{"pull_hardlinks", tree(OpDownload, "src/", "big.bin")},
		{"pull_zcc", sub},
		// -s: the paths travel on the channel.
		{"push_secluded", tree(OpUpload, "push_s/")},
		{"pull_secluded", sub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := loadCapture(t, tc.name)
			for _, chunk := range []int{1, 7, 4093, 1 << 20} {
				tr := New(c.cmd)
				ops := c.replay(tr, chunk)
				if err := tr.Err(); err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				var got []wantOp
				for _, op := range ops {
					rel, ok := strings.CutPrefix(op.Path, c.root+"/")
					if !ok {
						t.Errorf("chunk %d: path %q outside %s", chunk, op.Path, c.root)
					}
					if op.Literal+op.Matched != op.File.Size {
						t.Errorf("chunk %d: %s: literal %d + matched %d != size %d", chunk, rel, op.Literal, op.Matched, op.File.Size)
					}
					got = append(got, wantOp{operation: op.Operation, path: rel, size: op.File.Size, literal: op.Literal})
				}
				if !equalOps(got, tc.want) {
					t.Fatalf("chunk %d: ops\n got %+v\nwant %+v", chunk, got, tc.want)
				}
				if _, ok := tr.InProgress(); ok {
					t.Errorf("chunk %d: a transfer still in progress at the end", chunk)
				}
				if s := tr.sending().sender; s.state != sDone {
					t.Errorf("chunk %d: sender stream in state %d at the end, want done", chunk, s.state)
				}
			}
		})
	}
}

func equalOps(a, b []wantOp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestTrackerInterrupted: a channel cut in the middle of a file's data
// leaves that file in progress, with the bytes sent so far.
func TestTrackerInterrupted(t *testing.T) {
	c := loadCapture(t, "push_one_file")
	tr := New(c.cmd)
	c.receive(tr, c.receivingBytes)
	cut := len(c.sendingBytes) - 2000
	if ops := c.sending(tr, c.sendingBytes[:cut]); len(ops) != 0 {
		t.Fatalf("ops before the file's end: %+v", ops)
	}
	op, ok := tr.InProgress()
	if !ok || op.Path != c.cmd.Paths[0] || op.Literal <= 0 || op.Literal >= 5000 {
		t.Fatalf("InProgress = %+v, %v; want part of %s", op, ok, c.cmd.Paths[0])
	}
}

// frame multiplexes payload as one MSG_DATA message.
func frame(payload []byte) []byte {
	h := make([]byte, 4, 4+len(payload))
	binary.LittleEndian.PutUint32(h, uint32(mplexBase+msgData)<<24|uint32(len(payload)))
	return append(h, payload...)
}

func le32(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }

// handshakes returns a push's opening bytes: the client's version and
// checksum list; the server's version, flags (incremental recursion,
// varint flags), checksum list and seed.
func handshakes(version int32) (client, server []byte) {
	client = append(le32(version), 3, 'm', 'd', '5')
	server = append(le32(version), 0x81, 0x81, 3, 'm', 'd', '5')
	return client, append(server, le32(42)...)
}

func TestTrackerRefuses(t *testing.T) {
	longName := append([]byte{0x40, 0x80 | 0x13, 0x89}, bytes.Repeat([]byte("n"), 5001)...) // XMIT_LONG_NAME, 5001 bytes
	for _, tc := range []struct {
		name    string
		command string
		version int32
		data    []byte // the client's multiplexed stream after the handshake
		want    string
	}{
		{"acls", "rsync --server -rAe.iLsfxCIvu . /d", 32, nil, "-A (ACLs)"},
		{"xattrs", "rsync --server --xattrs -re.iLsfxCIvu . /d", 32, nil, "--xattrs"},
		{"old protocol", "rsync --server -re.iLsfxCIvu . /d", 29, frame([]byte{0}), "protocol 29"},
		{"bad multiplex tag", "rsync --server -re.iLsfxCIvu . /d", 32, []byte{1, 0, 0, 2}, "tag 2"},
		{"name too long", "rsync --server -re.iLsfxCIvu . /d", 32, frame(longName), "file name"},
		{"transfer of unknown index", "rsync --server -re.iLsfxCIvu . /d", 32,
			frame([]byte{0x01, 0x01, '.', 0, 0, 0x10, 0, 0, 0, 0, 0xed, 0x41, 0, 0, 0, 0, 0x05, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), "index 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, ok := ParseCommand(tc.command)
			if !ok {
				t.Fatal("command not recognised")
			}
			tr := New(cmd)
			client, server := handshakes(tc.version)
			tr.ServerData(server)
			if ops := tr.ClientData(append(client, tc.data...)); len(ops) != 0 {
				t.Errorf("ops %+v", ops)
			}
			if err := tr.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Err() = %v, want it to mention %q", err, tc.want)
			}
			// Once stopped, the tracker ignores the rest.
			if ops := tr.ClientData([]byte{1, 2, 3}); ops != nil {
				t.Errorf("ops after the error: %+v", ops)
			}
		})
	}
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		command string
		ok      bool
		sender  bool
		paths   []string
	}{
		{"rsync --server -logDtpre.iLsfxCIvu . /tmp/d/", true, false, []string{"/tmp/d/"}},
		{`rsync --server --sender -re.iLsfxCIvu . /a\ b/c /x`, true, true, []string{"/a b/c", "/x"}},
		{"/usr/bin/rsync --server -e.LsfxCIvu --delete . d", true, false, []string{"d"}},
		{"rsync -av /a host:/b", false, false, nil},
		{"rsync --daemon", false, false, nil},
		{"scp -t /x", false, false, nil},
		{`rsync --server 'unterminated . /x`, false, false, nil},
	} {
		c, ok := ParseCommand(tc.command)
		if ok != tc.ok || c.Sender != tc.sender || strings.Join(c.Paths, "|") != strings.Join(tc.paths, "|") {
			t.Errorf("ParseCommand(%q) = %+v, %v; want sender=%v paths=%q ok=%v", tc.command, c, ok, tc.sender, tc.paths, tc.ok)
		}
	}
}

func TestSortKey(t *testing.T) {
	// The receiver's order (f_name_cmp): "." first, files before
	// directories at each depth, a directory right before its content,
	// directory names compared as if they ended in "/".
	dir := func(n string) File { return File{Name: n, Mode: modeDir} }
	reg := func(n string) File { return File{Name: n, Mode: modeRegular} }
	files := []File{dir("sub"), reg("sub/z"), dir("sub/deeper"), reg("b"), dir("a.b"), reg("sub/deeper/x"), reg("a"), dir("."), dir("a"), reg("a.b/y")}
	sortFiles(files)
	var got []string
	for _, f := range files {
		got = append(got, f.Name)
	}
	want := ". a b a.b a.b/y a sub sub/z sub/deeper sub/deeper/x"
	if strings.Join(got, " ") != want {
		t.Errorf("order %q, want %q", strings.Join(got, " "), want)
	}
}
