// Package healthz is the gateway's readiness report (served on /healthz next
// to /metrics) and the client that probes it: `pamtrail health` and the
// container images' HEALTHCHECK, which have no curl in a scratch image.
package healthz

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Check is one condition the gateway needs to do its work.
type Check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Report is the /healthz body. Ready is true only when every check is.
type Report struct {
	Ready  bool             `json:"ready"`
	Checks map[string]Check `json:"checks"`
}

// NewReport builds a report from its checks.
func NewReport(checks map[string]Check) Report {
	r := Report{Ready: true, Checks: checks}
	for _, c := range checks {
		r.Ready = r.Ready && c.OK
	}
	return r
}

// ServeHTTP writes the report as JSON: 200 when ready, 503 when not, so
// load balancers and kubelet probes read the status code alone.
func (r Report) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !r.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(r)
}

// Probe GETs url and returns nil on a 2xx answer; otherwise an error that
// carries the start of the body (the failing checks).
func Probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
