package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunSetupArguments(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStderr string
	}{
		{name: "no target", args: nil, wantCode: 2, wantStderr: "usage: pamtrail setup elasticsearch"},
		{name: "unknown target", args: []string{"grafana"}, wantCode: 2, wantStderr: `unknown target "grafana"`},
		{name: "kibana unreachable", args: []string{"kibana", "--url", "http://127.0.0.1:1", "--timeout", "5s"}, wantCode: 1, wantStderr: "setup kibana"},
		{name: "kibana bad url", args: []string{"kibana", "--url", "ftp://x"}, wantCode: 1, wantStderr: "url"},
		{name: "bad url", args: []string{"elasticsearch", "--url", "es:9200"}, wantCode: 2, wantStderr: "url:"},
		{name: "stray argument", args: []string{"elasticsearch", "extra"}, wantCode: 2, wantStderr: `unexpected argument "extra"`},
		{
			name:       "username without password",
			args:       []string{"elasticsearch", "--username", "admin", "--password-env", "PAMTRAIL_TEST_UNSET_PASSWORD"},
			wantCode:   2,
			wantStderr: "PAMTRAIL_TEST_UNSET_PASSWORD (--password-env) is empty",
		},
		{
			name:       "password never echoed",
			args:       []string{"elasticsearch", "--url", "ftp://es", "--username", "admin"},
			env:        map[string]string{"PAMTRAIL_ES_PASSWORD": "hunter2"},
			wantCode:   2,
			wantStderr: "url:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PAMTRAIL_ES_PASSWORD", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := runSetup(tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantStderr)
			}
			if strings.Contains(stdout.String()+stderr.String(), "hunter2") {
				t.Error("the password appeared in the output")
			}
		})
	}
}
