package testenv

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
		wantErr  bool
	}{
		{"plain", "export A=1\nB=two\n", map[string]string{"A": "1", "B": "two"}, false},
		{"quoted and comments", "# c\n\nexport K='a b'\nexport J=\"x=y\"\n", map[string]string{"K": "a b", "J": "x=y"}, false},
		{"malformed", "export NOPE\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvFile(bufio.NewScanner(strings.NewReader(tt.in)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	t.Setenv("PAMTRAIL_TESTENV_PROBE", "from-env")
	if Get("PAMTRAIL_TESTENV_PROBE") != "from-env" {
		t.Fatal("environment variable not preferred")
	}
}

func TestEventuallyPolls(t *testing.T) {
	n := 0
	Eventually(t, 5*time.Second, time.Millisecond, func() (bool, string) {
		n++
		return n == 3, "not yet"
	})
	if n != 3 {
		t.Fatalf("polled %d times", n)
	}
}
