package testenv

import (
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "export and bare", in: "export A=1\nB=two\n", want: map[string]string{"A": "1", "B": "two"}},
		{name: "comments and blanks", in: "# header\n\n  # indented\nexport K=v\n", want: map[string]string{"K": "v"}},
		{name: "empty value", in: "export E=\nF=''\n", want: map[string]string{"E": "", "F": ""}},
		{name: "single quotes keep blanks", in: "export K='[127.0.0.1]:2022 ssh-ed25519 AAAA'\n", want: map[string]string{"K": "[127.0.0.1]:2022 ssh-ed25519 AAAA"}},
		{name: "single quote escaped shell-style", in: `export K='it'\''s'`, want: map[string]string{"K": "it's"}},
		{name: "double quotes with escapes", in: `export K="a \"b\" \\ \$ \x"`, want: map[string]string{"K": `a "b" \ $ \x`}},
		{name: "equals in value", in: "export J=\"x=y\"\nexport U=a=b\n", want: map[string]string{"J": "x=y", "U": "a=b"}},
		{name: "backslash outside quotes", in: `export K=a\ b`, want: map[string]string{"K": "a b"}},
		{name: "trailing comment", in: "export K=v   # note\n", want: map[string]string{"K": "v"}},
		{name: "later line wins", in: "K=1\nK=2\n", want: map[string]string{"K": "2"}},
		{name: "crlf-free tabs", in: "\texport\tK=v\n", want: map[string]string{"K": "v"}},
		{name: "exported name starting with export", in: "exportX=1\n", want: map[string]string{"exportX": "1"}},
		{name: "missing equals", in: "export NOPE\n", wantErr: "line 1: want NAME=VALUE"},
		{name: "bad name", in: "export 1A=x\n", wantErr: `invalid variable name "1A"`},
		{name: "expansion", in: "export K=$HOME/x\n", wantErr: "expansion"},
		{name: "expansion in double quotes", in: "export K=\"$HOME\"\n", wantErr: "expansion"},
		{name: "command substitution", in: "export K=`id`\n", wantErr: "expansion"},
		{name: "unterminated single", in: "A=1\nexport K='abc\n", wantErr: "line 2: K: unterminated single quote"},
		{name: "unterminated double", in: "export K=\"abc\n", wantErr: "unterminated double quote"},
		{name: "unquoted blank", in: "export K=a b\n", wantErr: "unexpected text after the value"},
		{name: "operator", in: "export K=a;rm\n", wantErr: "shell operator"},
		{name: "trailing backslash", in: `export K=a\`, wantErr: "trailing backslash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvFile(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// shellQuote mirrors shell_quote in deploy/local/lib.sh; the contract test
// below keeps the two identical.
func shellQuote(v string) string {
	if plainShellWord.MatchString(v) {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

var plainShellWord = regexp.MustCompile(`^[A-Za-z0-9_./:@%+,=-]*$`)

// TestParsesWhatServicesShWrites runs the real writer, env_line from
// deploy/local/lib.sh, and parses its output: the file format is a contract
// between the shell scripts and this package.
func TestParsesWhatServicesShWrites(t *testing.T) {
	values := []string{
		"",
		"/work/main/.pamtrail/secrets/pamtrail_demo.password",
		"127.0.0.1",
		"[127.0.0.1]:2022 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAVFTwWw/Cjw/zn4",
		"it's",
		`back\slash "double" $HOME ` + "`id`",
		"tab\tand  spaces",
		"'",
		"ünïcödé",
	}
	lib := filepath.Join(RepoRoot(t), "deploy", "local", "lib.sh")
	for _, v := range values {
		cmd := exec.Command("bash", "-c", `set -eu; . "$1"; env_line PAMTRAIL_PROBE "$2"`, "bash", lib, v)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "PAMTRAIL_HOME=" + t.TempDir()}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("env_line %q: %v", v, err)
		}
		if want := "export PAMTRAIL_PROBE=" + shellQuote(v) + "\n"; string(out) != want {
			t.Errorf("lib.sh wrote %q, the Go mirror %q", out, want)
		}
		got, err := ParseEnvFile(strings.NewReader(string(out)))
		if err != nil {
			t.Fatalf("parse %q: %v", out, err)
		}
		if got["PAMTRAIL_PROBE"] != v {
			t.Errorf("round trip of %q gave %q", v, got["PAMTRAIL_PROBE"])
		}
	}
}

// FuzzParseEnvFile feeds arbitrary bytes: parsing must never panic, and
// whatever parses must survive being written back the way services.sh writes.
func FuzzParseEnvFile(f *testing.F) {
	for _, seed := range []string{
		"export A=1\nB=two\n",
		"# c\n\nexport K='a b'\nexport J=\"x=y\"\n",
		`export K='it'\''s' # trailing`,
		"export K=\"unterminated\n",
		"export K=$HOME\n",
		"\texport\tK=a\\ b\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		got, err := ParseEnvFile(strings.NewReader(data))
		if err != nil {
			return
		}
		var b strings.Builder
		for k, v := range got {
			if strings.ContainsAny(v, "\n\r") {
				// A line-based format cannot carry these; services.sh never writes them.
				continue
			}
			b.WriteString("export " + k + "=" + shellQuote(v) + "\n")
		}
		again, err := ParseEnvFile(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		for k, v := range again {
			if got[k] != v {
				t.Fatalf("%s: %q became %q", k, got[k], v)
			}
		}
	})
}

// FuzzShellQuoteRoundTrip checks that every single-line value survives the
// quoting services.sh applies.
func FuzzShellQuoteRoundTrip(f *testing.F) {
	for _, seed := range []string{"", "plain", "a b", "it's", `"$x"`, "\t#", "\\"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsAny(v, "\n\r") {
			return
		}
		got, err := ParseEnvFile(strings.NewReader("export K=" + shellQuote(v) + "\n"))
		if err != nil {
			t.Fatalf("parse of quoted %q: %v", v, err)
		}
		if got["K"] != v {
			t.Fatalf("%q round-tripped to %q", v, got["K"])
		}
	})
}
