// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

// Package esenv finds the Elasticsearch that deploy/local/services.sh
// started, for the collector components' integration tests.
package esenv // import "github.com/pamtrail/pamtrail/collector-components/internal/esenv"

import (
	"bufio"
	"bytes"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	templates "github.com/pamtrail/pamtrail/dashboards/elasticsearch"
)

// Lookup returns name from the environment, else from
// $PAMTRAIL_HOME/services.env (PAMTRAIL_HOME defaults to the checkout's
// .pamtrail).
func Lookup(name string) (string, bool) {
	if v := os.Getenv(name); v != "" {
		return v, true
	}
	f, err := os.Open(filepath.Join(Home(), "services.env"))
	if err != nil {
		return "", false
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(scanner.Text()), "export ")
		if v, ok := strings.CutPrefix(line, name+"="); ok {
			return strings.Trim(v, `"'`), true
		}
	}
	return "", false
}

// Home is $PAMTRAIL_HOME, or the checkout's .pamtrail.
func Home() string {
	if home := os.Getenv("PAMTRAIL_HOME"); home != "" {
		return home
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", ".pamtrail")
}

// URL returns the single-node Elasticsearch (PAMTRAIL_ES_URL) and fails the
// test when there is none: integration tests never skip.
func URL(t testing.TB) string {
	t.Helper()
	u, ok := Lookup("PAMTRAIL_ES_URL")
	if !ok {
		t.Fatalf("Elasticsearch is not configured: PAMTRAIL_ES_URL is unset and %s has none; start it with `deploy/local/services.sh up elasticsearch`",
			filepath.Join(Home(), "services.env"))
	}
	return u
}

// SessionsIndex creates a sessions index of its own with the mappings of our
// template (given explicitly, so another test's template version on the
// shared Elasticsearch cannot change them) and deletes it afterwards.
func SessionsIndex(t testing.TB, url string) string {
	t.Helper()
	all, err := templates.Templates()
	require.NoError(t, err)
	var body []byte
	for _, tpl := range all {
		if tpl.Name == "pamtrail-sessions" {
			var parsed struct {
				Template json.RawMessage `json:"template"`
			}
			require.NoError(t, json.Unmarshal(tpl.Body, &parsed))
			body = parsed.Template
		}
	}
	require.NotNil(t, body, "no pamtrail-sessions template")
	suffix := make([]byte, 6)
	_, _ = crand.Read(suffix)
	index := "scaleout-test-sessions-" + hex.EncodeToString(suffix)
	Request(t, http.MethodPut, url+"/"+index, body)
	t.Cleanup(func() { Request(t, http.MethodDelete, url+"/"+index, nil) })
	return index
}

// Request sends one request and fails the test on an error status.
func Request(t testing.TB, method, url string, body []byte) []byte {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Close = true // no idle connection outlives the test (goleak)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Less(t, res.StatusCode, 300, "%s %s: %s", method, url, raw)
	return raw
}
