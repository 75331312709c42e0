package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"context"
	"github.com/jackc/pgx/v5"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// metric reads one sample of the gateway's Prometheus endpoint.
func (s *stack) metric(t testing.TB, name string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + s.metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics endpoint: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{[^}]*\})? ([0-9.e+-]+)$`).FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	return v, err == nil
}

// TestGatewayMetrics: while the collector is down, the spool's pending
// records and upload failures show on the metrics endpoint; once it is back
// the backlog drains to zero.
func TestGatewayMetrics(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.startGateway() // collector down
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn("alice", alicePassword, "demo-postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for i := range 10 {
		if _, err := conn.Exec(ctx, "select "+strconv.Itoa(i), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		pending, ok1 := s.metric(t, "pamtrail_spool_records_pending")
		failures, ok2 := s.metric(t, "pamtrail_upload_failures_total")
		active, _ := s.metric(t, "pamtrail_sessions_active")
		bytes, _ := s.metric(t, "pamtrail_spool_bytes")
		return ok1 && ok2 && pending >= 11 && failures >= 1 && active == 1 && bytes > 0,
			"pending, failures, active, bytes = " + strconv.FormatFloat(pending, 'f', 0, 64) + ", " + strconv.FormatFloat(failures, 'f', 0, 64) +
				", " + strconv.FormatFloat(active, 'f', 0, 64) + ", " + strconv.FormatFloat(bytes, 'f', 0, 64)
	})
	if age, ok := s.metric(t, "pamtrail_spool_oldest_unacked_age_seconds"); !ok || age <= 0 {
		t.Errorf("oldest unacked age = %v (present %v), want > 0 while the collector is down", age, ok)
	}
	s.startCollector()
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		pending, _ := s.metric(t, "pamtrail_spool_records_pending")
		uploaded, _ := s.metric(t, "pamtrail_upload_records_total")
		return pending == 0 && uploaded >= 11, "pending " + strconv.FormatFloat(pending, 'f', 0, 64) + ", uploaded " + strconv.FormatFloat(uploaded, 'f', 0, 64)
	})
}
