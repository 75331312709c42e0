package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

func (s *stack) session(id string) (review.Session, error) {
	c, err := review.NewClient(s.esURL)
	if err != nil {
		return review.Session{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Refresh(ctx, schema.SessionsIndexPattern)
	return c.Session(ctx, id)
}

func (s *stack) waitSession(id string, timeout time.Duration, cond func(review.Session) bool) review.Session {
	s.t.Helper()
	var last review.Session
	testenv.Eventually(s.t, timeout, 500*time.Millisecond, func() (bool, string) {
		var err error
		last, err = s.session(id)
		if err != nil {
			return false, err.Error()
		}
		return cond(last), last.Status + " risk=" + last.RiskLevel
	})
	return last
}

// TestRiskySessionDocument: a psql session that drops a table and changes a
// role's password gives one session document, active while it runs and
// ended after, with risk high or above whose findings point at their events,
// a rules summary naming the dropped table, and the password nowhere: not in
// any document, not in any spool file.
func TestRiskySessionDocument(t *testing.T) {
	// Changing another role's password needs CREATEROLE: this account uses
	// the test cluster's admin role upstream.
	pg := testenv.Postgres(t)
	adminPW := filepath.Join(t.TempDir(), "admin.password")
	writeFile(t, adminPW, pg.AdminPassword)
	s := newStack(t, stackOptions{
		extraAccounts: "  - {name: admin-postgres, type: postgres, host: " + pg.Host + ", port: " + strconv.Itoa(pg.Port) +
			", database: " + pg.DemoDB + ", user: " + pg.AdminUser + ", secret: {file: " + adminPW + "}}\n",
		extraGrants: "  - {user: alice, accounts: [admin-postgres]}\n",
	})
	s.start()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	table := "doomed_" + randomHex(4)
	role := "role_" + randomHex(4)
	const canary = "canary-secret"
	t.Cleanup(func() {
		if admin, err := pgx.Connect(context.Background(), pg.AdminDSN(pg.DemoDB)); err == nil {
			_, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
			admin.Close(context.Background())
		}
	})
	conn, err := pgx.Connect(ctx, s.dsn("alice", alicePassword, "admin-postgres"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE ROLE " + role,
		"CREATE TABLE " + table + " (id int)",
		"INSERT INTO " + table + " VALUES (1), (2)",
		"DROP TABLE " + table,
		"ALTER ROLE " + role + " PASSWORD '" + canary + "'",
	} {
		if _, err := conn.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var id string
	s.waitEvents(60*time.Second, review.Filter{EventName: schema.EventSessionStart}, func(evs []review.Event) (bool, string) {
		if len(evs) == 1 {
			id = evs[0].Str(schema.AttrSessionID)
		}
		return id != "", describe(evs)
	})
	live := s.waitSession(id, 60*time.Second, func(d review.Session) bool { return d.Status == schema.StatusActive })
	if live.User != "alice" || live.Account != "admin-postgres" {
		t.Errorf("live session document: %+v", live)
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	done := s.waitSession(id, 90*time.Second, func(d review.Session) bool {
		return d.Status == schema.StatusEnded && d.Summary != nil && d.Summary.Text != ""
	})
	if rank(done.RiskLevel) < rank("high") {
		t.Errorf("risk level %q, want high or above", done.RiskLevel)
	}
	evs := s.events(review.Filter{SessionID: id})
	seqOf := map[string]int64{}
	for _, e := range evs {
		if e.EventName == schema.EventDBQuery {
			seqOf[strings.Fields(e.Str(schema.AttrDBQueryText))[0]] = e.Int(schema.AttrSeq)
		}
	}
	pointsAt := func(seq int64) bool {
		for _, f := range done.RiskFindings {
			if f.Seq == seq {
				return true
			}
		}
		return false
	}
	if !pointsAt(seqOf["DROP"]) || !pointsAt(seqOf["ALTER"]) {
		t.Errorf("findings %+v do not point at the DROP (seq %d) and ALTER ROLE (seq %d) events", done.RiskFindings, seqOf["DROP"], seqOf["ALTER"])
	}
	if !strings.Contains(done.Summary.Text, table) {
		t.Errorf("summary does not mention the dropped table %s: %q", table, done.Summary.Text)
	}

	// The password is nowhere in Elasticsearch ...
	for _, index := range []string{schema.EventsIndexPattern, schema.SessionsIndexPattern} {
		if n := countHits(t, s.esURL, index, canary); n != 0 {
			t.Errorf("%s: %d documents contain %q", index, n, canary)
		}
	}
	// ... nor in the spool.
	s.gateway.stop()
	_ = filepath.WalkDir(s.spoolDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(canary)) {
				t.Errorf("%s contains the password", path)
			}
		}
		return nil
	})
}

// TestKilledGatewaySessionBecomesLost: a session whose gateway was SIGKILLed
// stops heartbeating and is shown as lost within the configured window.
func TestKilledGatewaySessionBecomesLost(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.start()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn("alice", alicePassword, "demo-postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "select 1", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	var id string
	s.waitEvents(60*time.Second, review.Filter{EventName: schema.EventSessionStart}, func(evs []review.Event) (bool, string) {
		if len(evs) == 1 {
			id = evs[0].Str(schema.AttrSessionID)
		}
		return id != "", describe(evs)
	})
	s.waitSession(id, 60*time.Second, func(d review.Session) bool { return d.Status == schema.StatusActive })
	killed := time.Now()
	s.gateway.kill()
	// heartbeat_interval 1s × lost_after_heartbeats 5, plus a flush.
	s.waitSession(id, 30*time.Second, func(d review.Session) bool { return d.Status == schema.StatusLost })
	t.Logf("session shown as lost %.1fs after the gateway was killed", time.Since(killed).Seconds())
}

func rank(level string) int {
	for i, l := range schema.RiskLevels {
		if l == level {
			return i
		}
	}
	return -1
}

// countHits counts documents of an index pattern containing text anywhere.
func countHits(t *testing.T, esURL, index, text string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": map[string]any{"query_string": map[string]any{
		"query": `"` + text + `"`, "fields": []string{"*"}, "lenient": true}}})
	req, _ := http.NewRequest(http.MethodPost, esURL+"/"+index+"/_count?ignore_unavailable=true&allow_no_indices=true", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var res struct{ Count int }
	if err := json.Unmarshal(raw, &res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("count %s: %s %s", index, resp.Status, raw)
	}
	return res.Count
}
