package scpparse

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		cmd  string
		want Command
		ok   bool
	}{
		{"scp -t -- /tmp/x", Command{Paths: []string{"/tmp/x"}}, true},
		{"scp -v -r -d -t -- '/tmp/a dir/'", Command{Recursive: true, TargetDir: true, Paths: []string{"/tmp/a dir/"}}, true},
		{"/usr/bin/scp -pf -- /etc/hosts \"/tmp/b c\"", Command{Download: true, Paths: []string{"/etc/hosts", "/tmp/b c"}}, true},
		{"scp -f x\\ y", Command{Download: true, Paths: []string{"x y"}}, true},
		{"scp /a /b", Command{}, false},   // a client command, not a server
		{"scp -t -f x", Command{}, false}, // both directions
		{"rsync --server . x", Command{}, false},
		{"scp -t 'unterminated", Command{}, false},
		{"", Command{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseCommand(tt.cmd)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %+v, %v", tt.cmd, got, ok, tt.want, tt.ok)
		}
	}
}

// flow is the two directions of an scp exchange, in the order they cross.
type flow struct {
	source bool
	data   string
}

func src(s string) flow  { return flow{true, s} }
func sink(s string) flow { return flow{false, s} }

func TestTracker(t *testing.T) {
	body := strings.Repeat("z", 5000)
	tests := []struct {
		name string
		cmd  string
		flow []flow
		want []Op
	}{
		{
			name: "upload one file to a path",
			cmd:  "scp -t -- /tmp/dest.bin",
			flow: []flow{sink("\x00"), src("C0644 5000 local.bin\n"), sink("\x00"), src(body), src("\x00"), sink("\x00")},
			want: []Op{{Operation: OpUpload, Path: "/tmp/dest.bin", Bytes: 5000}},
		},
		{
			name: "upload a tree",
			cmd:  "scp -r -t -- /tmp/into",
			flow: []flow{sink("\x00"),
				src("D0755 0 tree\n"), sink("\x00"),
				src("T1700000000 0 1700000000 0\n"), sink("\x00"),
				src("C0600 3 a.txt\n"), sink("\x00"), src("abc\x00"), sink("\x00"),
				src("D0700 0 sub\n"), sink("\x00"),
				src("C0600 0 empty\n"), sink("\x00"), src("\x00"), sink("\x00"),
				src("E\n"), sink("\x00"), src("E\n"), sink("\x00")},
			want: []Op{
				{Operation: OpUpload, Path: "/tmp/into/tree/a.txt", Bytes: 3},
				{Operation: OpUpload, Path: "/tmp/into/tree/sub/empty", Bytes: 0},
			},
		},
		{
			name: "receiver refuses a file",
			cmd:  "scp -t -- /root/x",
			flow: []flow{sink("\x00"), src("C0644 10 x\n"), sink("\x01scp: /root/x: Permission denied\n")},
			want: []Op{{Operation: OpUpload, Path: "/root/x", Error: "scp: /root/x: Permission denied"}},
		},
		{
			name: "download, with the source's error for a missing file",
			cmd:  "scp -f -- /etc/hostname /nope",
			flow: []flow{sink("\x00"), src("C0644 4 hostname\n"), sink("\x00"), src("box\n"), src("\x00"), sink("\x00"),
				src("\x01scp: /nope: No such file or directory\n")},
			want: []Op{
				{Operation: OpDownload, Path: "/etc/hostname", Bytes: 4},
				{Operation: OpDownload, Path: "/etc/hostname /nope", Error: "scp: /nope: No such file or directory"},
			},
		},
		{
			name: "source fails mid-file",
			cmd:  "scp -f -- /var/log/x",
			flow: []flow{sink("\x00"), src("C0644 3 x\n"), sink("\x00"), src("ab"), src("c\x01scp: read error\n"), sink("\x00")},
			want: []Op{{Operation: OpDownload, Path: "/var/log/x", Bytes: 3, Error: "scp: read error"}},
		},
		{
			name: "channel ends mid-file",
			cmd:  "scp -t -- /tmp/y",
			flow: []flow{sink("\x00"), src("C0644 100 y\n"), sink("\x00"), src("0123456789")},
			want: []Op{{Operation: OpUpload, Path: "/tmp/y", Bytes: 10, Error: "the channel closed before the file was complete"}},
		},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 3, 1 << 20} {
			cmd, ok := ParseCommand(tt.cmd)
			if !ok {
				t.Fatalf("%s: not an scp command", tt.name)
			}
			tr := New(cmd)
			var got []Op
			for _, f := range tt.flow {
				feed := tr.SinkData
				if f.source {
					feed = tr.SourceData
				}
				for b := []byte(f.data); len(b) > 0; {
					n := min(chunk, len(b))
					got = append(got, feed(b[:n])...)
					b = b[n:]
				}
			}
			got = append(got, tr.Close()...)
			if tr.Err() != nil {
				t.Fatalf("%s (chunk %d): %v", tt.name, chunk, tr.Err())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s (chunk %d):\n got %+v\nwant %+v", tt.name, chunk, got, tt.want)
			}
		}
	}
}

func TestTrackerStopsOnGarbage(t *testing.T) {
	tests := []struct {
		name         string
		source, sink string
	}{
		{"unknown line", "X123\n", ""},
		{"bad C line", "C0644 notanumber x\n", ""},
		{"path in a name", "C0644 1 ../../etc/passwd\n", ""},
		{"overlong line", strings.Repeat("C", maxLine+1), ""},
		{"unexpected receiver byte", "", "\x07"},
	}
	for _, tt := range tests {
		tr := New(Command{})
		tr.SourceData([]byte(tt.source))
		tr.SinkData([]byte(tt.sink))
		if !errors.Is(tr.Err(), ErrNotSCP) {
			t.Errorf("%s: err = %v, want ErrNotSCP", tt.name, tr.Err())
		}
	}
}
