package e2e

// Delivery under load (issue #10): a burst through the whole path is
// searchable soon after it ends, and a backlog built while the collector is
// down arrives whole, every record once. The figures (rates, latencies,
// memory) come from BenchmarkDelivery in `make bench`, not from these tests.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// pgbenchLoad is how a pgbench run through the gateway is shaped. Each
// transaction is one statement, so statements = transactions.
type pgbenchLoad struct {
	clients      int
	transactions int           // per client; 0: run for duration
	duration     time.Duration // with transactions == 0
	rate         float64       // total transactions per second; 0: as fast as possible
}

// pgbenchScript is one recorded statement per transaction, with a value
// that varies so the events are not all alike.
const pgbenchScript = "\\set n random(1, 1000000000)\nselect :n as n, 'pamtrail delivery load' as note;\n"

var pgbenchTPS = regexp.MustCompile(`tps = ([0-9.]+)`)

// runPgbench runs pgbench through the gateway and returns the statements it
// completed and its throughput.
func (s *stack) runPgbench(t testing.TB, l pgbenchLoad) (int, float64) {
	t.Helper()
	bin, err := exec.LookPath("pgbench")
	if err != nil {
		t.Fatalf("pgbench is not installed (Debian: apt-get install postgresql-client): %v", err)
	}
	script := filepath.Join(t.TempDir(), "delivery.sql")
	writeFile(t, script, pgbenchScript)
	host, port := s.gatewayHostPort(t)
	args := []string{"-h", host, "-p", strconv.Itoa(port), "-U", "alice", "-n", "-M", "simple",
		"-c", strconv.Itoa(l.clients), "-j", strconv.Itoa(min(l.clients, 2)), "-f", script}
	if l.transactions > 0 {
		args = append(args, "-t", strconv.Itoa(l.transactions))
	} else {
		args = append(args, "-T", strconv.Itoa(int(l.duration.Seconds())))
	}
	if l.rate > 0 {
		args = append(args, "-R", strconv.FormatFloat(l.rate, 'f', 0, 64))
	}
	cmd := exec.Command(bin, append(args, "demo-postgres")...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+alicePassword, "PGCONNECT_TIMEOUT=10", "PGSSLMODE=disable")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pgbench %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	done := regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`).FindStringSubmatch(stdout.String())
	tps := pgbenchTPS.FindStringSubmatch(stdout.String())
	if done == nil || tps == nil {
		t.Fatalf("pgbench output without a transaction count or tps:\n%s", stdout.String())
	}
	n, _ := strconv.Atoi(done[1])
	rate, _ := strconv.ParseFloat(tps[1], 64)
	return n, rate
}

// statementCount is how many statement events of this gateway are
// searchable now, without forcing a refresh: what a user's search sees.
func (s *stack) statementCount(t testing.TB) int {
	t.Helper()
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{s.esURL}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"query": map[string]any{"bool": map[string]any{"filter": []any{
		map[string]any{"term": map[string]any{review.Attr(schema.AttrGatewayID): s.gatewayID}},
		map[string]any{"term": map[string]any{review.FieldEventName: schema.EventDBQuery}},
	}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := es.Count(es.Count.WithContext(ctx), es.Count.WithIndex(s.countIndex), es.Count.WithBody(bytes.NewReader(body)))
	if err != nil {
		t.Fatalf("counting events: %v", err)
	}
	defer res.Body.Close()
	var out struct {
		Count int `json:"count"`
	}
	if res.IsError() || json.NewDecoder(res.Body).Decode(&out) != nil {
		t.Fatalf("counting events: %s", res.String())
	}
	return out.Count
}

// waitStatements polls until want statement events are searchable and
// returns when they were.
func (s *stack) waitStatements(t testing.TB, want int, timeout time.Duration) time.Time {
	t.Helper()
	testenv.Eventually(t, timeout, 250*time.Millisecond, func() (bool, string) {
		got := s.statementCount(t)
		if got > want {
			t.Fatalf("%d statement events searchable, more than the %d statements run", got, want)
		}
		return got == want, fmt.Sprintf("%d/%d statement events searchable", got, want)
	})
	return time.Now()
}

// checkEveryStatementOnce reads every event of the stack's gateway and
// checks each session's events are gapless and unique, with want statements.
func (s *stack) checkEveryStatementOnce(t testing.TB, want int) {
	t.Helper()
	evs, err := s.allEvents()
	if err != nil {
		t.Fatal(err)
	}
	if got := countQueries(evs); got != want {
		t.Fatalf("Elasticsearch holds %d statement events, want %d", got, want)
	}
	checkExactlyOnce(t, evs, true)
}

// TestBurstSearchableSoonAfter: 100,000 statements from pgbench as fast as
// the gateway takes them; all are searchable within 30 s after the burst
// ends, each exactly once, at the default 10 s upload cadence.
func TestBurstSearchableSoonAfter(t *testing.T) {
	const clients, perClient = 4, 25_000
	s := newStack(t, stackOptions{uploadInterval: "10s"})
	s.start()
	ran, tps := s.runPgbench(t, pgbenchLoad{clients: clients, transactions: perClient})
	if ran != clients*perClient {
		t.Fatalf("pgbench completed %d statements, want %d", ran, clients*perClient)
	}
	ended := time.Now()
	s.waitStatements(t, ran, 30*time.Second)
	t.Logf("%d statements at %.0f/s, all searchable %v after the burst ended", ran, tps, time.Since(ended).Round(100*time.Millisecond))
	s.checkEveryStatementOnce(t, ran)
}

// TestBacklogAfterCollectorOutage: 100,000 statements are recorded while the
// collector is down; once it is back, every one arrives exactly once.
func TestBacklogAfterCollectorOutage(t *testing.T) {
	const clients, perClient = 4, 25_000
	s := newStack(t, stackOptions{})
	s.startGateway()
	ran, _ := s.runPgbench(t, pgbenchLoad{clients: clients, transactions: perClient})
	if pending, _ := s.metric(t, "pamtrail_spool_records_pending"); pending < float64(ran) {
		t.Fatalf("%v records pending in the spool with the collector down, want at least %d", pending, ran)
	}
	back := time.Now()
	s.startCollector()
	s.waitStatements(t, ran, 5*time.Minute)
	t.Logf("backlog of %d statements searchable %v after the collector started", ran, time.Since(back).Round(100*time.Millisecond))
	s.checkEveryStatementOnce(t, ran)
}
