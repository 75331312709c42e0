package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/porttest"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// scaleCollector is one otelcol-pamtrail of the tier, started from
// examples/scale-out/collector.yaml with its own ports and home.
type scaleCollector struct {
	proc *proc
	otlp string
}

func startScaleCollector(t *testing.T, name string, cluster testenv.ESCluster) *scaleCollector {
	t.Helper()
	c := &scaleCollector{otlp: porttest.Addr(t)}
	health := porttest.Addr(t)
	env := []string{
		"PAMTRAIL_OTLP_ENDPOINT=" + c.otlp,
		"PAMTRAIL_HEALTH_ENDPOINT=" + health,
		"PAMTRAIL_METRICS_PORT=" + strconv.Itoa(porttest.Free(t)),
		"PAMTRAIL_HOME=" + t.TempDir(),
		"PAMTRAIL_ES_ENDPOINTS=[" + strings.Join(cluster.URLs, ", ") + "]",
		// The test gateways upload every second. A session is lost after
		// 30 s in which no collector merged a record of it: the production
		// window (3 × 10 s), which must exceed the longest a request can
		// take through a collector (the exporter's 20 s timeout) — records
		// held up by a failing-over node are not silence.
		"PAMTRAIL_HEARTBEAT_INTERVAL=1s",
		"PAMTRAIL_LOST_AFTER_HEARTBEATS=30",
	}
	c.proc = newProc(t, name, append(env, collectorGCEnv...), collectorBin, "--config", filepath.Join(repoRoot, "examples", "scale-out", "collector.yaml"))
	c.proc.start()
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		if !c.proc.running() {
			t.Fatalf("%s exited:\n%s", name, c.proc.log())
		}
		resp, err := http.Get("http://" + health + "/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return c
}

// killESNode SIGKILLs node n of the cluster, once every shard has an
// in-sync copy elsewhere (green), and brings it back at cleanup.
func killESNode(t *testing.T, cluster testenv.ESCluster, n int) {
	t.Helper()
	testenv.Eventually(t, 90*time.Second, time.Second, func() (bool, string) {
		resp, err := http.Get(cluster.URLs[0] + "/_cluster/health?wait_for_status=green&timeout=5s")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, "cluster health: " + resp.Status
	})
	raw, err := os.ReadFile(filepath.Join(cluster.Root, fmt.Sprintf("node-%d", n), "elasticsearch.pid"))
	if err != nil {
		t.Fatalf("pid of Elasticsearch node %d: %v", n, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing Elasticsearch node %d (pid %d): %v", n, pid, err)
	}
	t.Cleanup(func() {
		cmd := exec.Command(filepath.Join(repoRoot, "deploy", "local", "services.sh"), "up", "es-cluster")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("bringing Elasticsearch node %d back: %v\n%s", n, err, out)
		}
	})
}

// scaleOutWork is what the clients of one gateway did.
type scaleOutWork struct {
	mu               sync.Mutex
	statements, cmds int
	// cutShort counts commands whose channel closed without an exit status
	// (the target or the load): the gateway may or may not have recorded it.
	cutShort           int
	sessions, failures int
	errs               []string
}

func (w *scaleOutWork) add(statements, cmds, cutShort int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.statements += statements
	w.cmds += cmds
	w.cutShort += cutShort
	w.sessions++
	if err != nil {
		w.failures++
		w.errs = append(w.errs, err.Error())
	}
}

// runPostgresSession runs statements until stop: inserts, every 6th a DELETE
// without WHERE (a risk finding), every 7th a failing SELECT (an error).
func runPostgresSession(ctx context.Context, s *stack, n int, stop <-chan struct{}) (int, error) {
	cfg, err := pgx.ParseConfig(s.dsn("alice", alicePassword, "demo-postgres"))
	if err != nil {
		return 0, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	table := fmt.Sprintf("scaleout_%d", n)
	executed := 0
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE "+table+" (n int)"); err != nil {
		return 1, err
	}
	executed++
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return executed, conn.Close(ctx)
		case <-ticker.C:
		}
		sql := fmt.Sprintf("INSERT INTO %s VALUES (%d)", table, i)
		switch {
		case i%6 == 5:
			sql = "DELETE FROM " + table
		case i%7 == 6:
			sql = "SELECT * FROM scaleout_no_such_table"
		}
		_, err := conn.Exec(ctx, sql)
		executed++
		if err != nil && i%7 != 6 {
			return executed, fmt.Errorf("%s: %w", sql, err)
		}
	}
}

// runSSHSession runs one command per exec channel on one connection until
// stop: every 5th `sudo -n true` (a finding, and an error exit), every 7th
// `false` (an error). It returns the commands that completed and those cut
// short (the session then ends early).
func runSSHSession(s *stack, n int, stop <-chan struct{}) (int, int, error) {
	keyPEM, err := os.ReadFile(s.aliceKey)
	if err != nil {
		return 0, 0, err
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return 0, 0, err
	}
	// The gateway writes its host key when its SSH listener starts, which
	// may be a moment after the PostgreSQL one startGateway waits for.
	var host ssh.Signer
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		hostPEM, err := os.ReadFile(filepath.Join(s.dir, "ssh_host_key"))
		if err == nil {
			if host, err = ssh.ParsePrivateKey(hostPEM); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("the gateway's SSH host key: %w", err)
		}
	}
	var client *ssh.Client
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		client, err = ssh.Dial("tcp", s.sshAddr, &ssh.ClientConfig{
			User: "demo-ssh", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.FixedHostKey(host.PublicKey()), Timeout: 10 * time.Second,
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) { // the SSH listener may start after the PostgreSQL one
			return 0, 0, err
		}
	}
	defer client.Close()
	ticker := time.NewTicker(400 * time.Millisecond)
	defer ticker.Stop()
	commands := 0
	for i := 0; ; i++ {
		select {
		case <-stop:
			return commands, 0, client.Close()
		case <-ticker.C:
		}
		cmd := fmt.Sprintf("echo scaleout %d %d", n, i)
		switch {
		case i%5 == 4:
			cmd = "sudo -n true"
		case i%7 == 6:
			cmd = "false"
		}
		sess, err := client.NewSession()
		if err != nil {
			return commands, 0, fmt.Errorf("opening a channel: %w", err)
		}
		err = sess.Run(cmd)
		sess.Close()
		var exit *ssh.ExitError
		if err != nil && !errors.As(err, &exit) {
			return commands, 1, nil
		}
		commands++
	}
}

// sessionWatch polls the sessions index while the campaign runs: no session
// of ours may ever be lost, and each summary is written once.
type sessionWatch struct {
	mu        sync.Mutex
	lost      map[string]bool
	summaries map[string]map[string]bool // session -> generated_at values seen
	stop      chan struct{}
	done      chan struct{}
}

func watchSessions(t *testing.T, esURL string, gateways []string) *sessionWatch {
	w := &sessionWatch{lost: map[string]bool{}, summaries: map[string]map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ticker.C:
			}
			docs, err := sessionDocs(esURL, gateways)
			if err != nil {
				continue // a node is down; the final check reads everything
			}
			w.mu.Lock()
			for id, d := range docs {
				if d[schema.SessionStatus] == schema.StatusLost {
					w.lost[id] = true
				}
				if sum, ok := d[schema.SessionSummary].(map[string]any); ok {
					if w.summaries[id] == nil {
						w.summaries[id] = map[string]bool{}
					}
					w.summaries[id][fmt.Sprint(sum["generated_at"])] = true
				}
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *sessionWatch) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// sessionDocs reads every session document of the gateways.
func sessionDocs(esURL string, gateways []string) (map[string]map[string]any, error) {
	body, _ := json.Marshal(map[string]any{
		"size":  1000,
		"query": map[string]any{"terms": map[string]any{schema.SessionGatewayID: gateways}},
	})
	resp, err := http.Post(esURL+"/"+schema.SessionsIndex+"/_search", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("searching sessions: %s: %.300s", resp.Status, raw)
	}
	var parsed struct {
		Hits struct {
			Hits []struct {
				ID     string         `json:"_id"`
				Source map[string]any `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(raw, &parsed); err != nil {
		return nil, err
	}
	docs := map[string]map[string]any{}
	for _, h := range parsed.Hits.Hits {
		docs[h.ID] = h.Source
	}
	return docs, nil
}

// groundTruth is a session as the events index holds it.
type groundTruth struct {
	status                    string
	queries, commands, errors int
	findings                  []string // "rule@seq", sorted
	duplicates                int
}

func truthOf(evs []review.Event) groundTruth {
	g := groundTruth{status: schema.StatusActive}
	seen := map[int64]bool{}
	for _, e := range evs {
		seq := e.Int(schema.AttrSeq)
		if seen[seq] {
			g.duplicates++
			continue
		}
		seen[seq] = true
		switch e.EventName {
		case schema.EventDBQuery:
			g.queries++
			if e.Str(schema.AttrDBStatusCode) != "" {
				g.errors++
			}
		case schema.EventSSHCommand:
			g.commands++
			if st := e.Int(schema.AttrSSHExitStatus); st != 0 && st != -1 {
				g.errors++
			}
		case schema.EventSSHFile:
			if e.Str(schema.AttrErrorMessage) != "" {
				g.errors++
			}
		case schema.EventSessionEnd:
			g.status = schema.StatusEnded
			switch e.Str(schema.AttrEndReason) {
			case schema.EndProtocolError, schema.EndNetworkError, schema.EndRecordingError:
				g.status = schema.StatusFailed
			}
		}
		rules, _ := e.Attributes[schema.AttrRiskRules].([]any)
		if s, ok := e.Attributes[schema.AttrRiskRules].(string); ok {
			rules = []any{s}
		}
		for _, r := range rules {
			g.findings = append(g.findings, fmt.Sprintf("%v@%d", r, seq))
		}
	}
	slices.Sort(g.findings)
	return g
}

// docMismatch compares a session document with its ground truth.
func docMismatch(id, gateway string, g groundTruth, d map[string]any) string {
	num := func(k string) int { v, _ := d[k].(float64); return int(v) }
	var findings []string
	list, _ := d[schema.SessionRiskFindings].([]any)
	for _, f := range list {
		f := f.(map[string]any)
		findings = append(findings, fmt.Sprintf("%v@%d", f["rule_id"], int64(f["seq"].(float64))))
	}
	slices.Sort(findings)
	summary, _ := d[schema.SessionSummary].(map[string]any)
	switch {
	case d == nil:
		return "no session document"
	case d[schema.SessionGatewayID] != gateway:
		return fmt.Sprintf("gateway_id %v, want %s", d[schema.SessionGatewayID], gateway)
	case d[schema.SessionStatus] != g.status:
		return fmt.Sprintf("status %v, events say %s", d[schema.SessionStatus], g.status)
	case num(schema.SessionQueries) != g.queries || num(schema.SessionCommands) != g.commands || num(schema.SessionErrors) != g.errors:
		return fmt.Sprintf("counts queries/commands/errors %d/%d/%d, events say %d/%d/%d",
			num(schema.SessionQueries), num(schema.SessionCommands), num(schema.SessionErrors), g.queries, g.commands, g.errors)
	case !slices.Equal(findings, g.findings):
		return fmt.Sprintf("findings %v, events say %v", findings, g.findings)
	case summary == nil || d[schema.SessionSummaryPending] == true:
		return "no summary yet"
	case fmt.Sprint(summary["generated_at"]) < fmt.Sprint(d[schema.SessionEnd]):
		return fmt.Sprintf("summary generated at %v, before the end %v", summary["generated_at"], d[schema.SessionEnd])
	}
	return ""
}

// TestScaleOutCampaign: two gateways upload through a round-robin TCP
// balancer that cuts every connection every 5 s to three collectors
// (examples/scale-out/collector.yaml) writing to a 3-node Elasticsearch
// cluster. Twenty sessions (PostgreSQL and SSH, with risky statements and
// commands) run concurrently; a third of the way in one collector is
// SIGKILLed and a fourth starts; half way one Elasticsearch node is
// SIGKILLed. Afterwards every session document equals what the events index
// holds for it (status, counts, findings, one summary written after the
// end), no session was ever shown lost, nothing the clients did is missing
// and nothing is there twice. 40 s in make test, 2 minutes in make soak.
func TestScaleOutCampaign(t *testing.T) {
	duration := 40 * time.Second
	if os.Getenv("PAMTRAIL_SOAK") != "" {
		duration = 2 * time.Minute
	}
	cluster := testenv.ElasticsearchCluster(t)
	run(t, pamtrailBin, "setup", "elasticsearch", "--url", cluster.URLs[0])

	collectors := make([]*scaleCollector, 3)
	backends := make([]string, 3)
	for i := range collectors {
		collectors[i] = startScaleCollector(t, fmt.Sprintf("collector-%d", i+1), cluster)
		backends[i] = collectors[i].otlp
	}
	stacks := []*stack{newStack(t, stackOptions{ssh: true}), newStack(t, stackOptions{ssh: true})}
	var listen, gateways []string
	for _, s := range stacks {
		s.esURL = cluster.URLs[0] // node 1 stays up
		// Requests small enough to get through a collector between two cuts
		// on a loaded 2-core machine; a cut request is retried whole.
		raw, err := os.ReadFile(s.gwConfig)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, s.gwConfig, strings.Replace(string(raw), "upload:\n", "upload:\n  batch_records: 300\n", 1))
		listen = append(listen, s.otlpAddr)
		gateways = append(gateways, s.gatewayID)
	}
	balancer := startBalancer(t, listen, backends, 5*time.Second)
	for _, s := range stacks {
		s.startGateway()
	}
	watch := watchSessions(t, cluster.URLs[0], gateways)

	ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	work := []*scaleOutWork{{}, {}}
	var clients sync.WaitGroup
	for g, s := range stacks {
		for n := range 10 {
			clients.Add(1)
			go func() {
				defer clients.Done()
				if n < 7 {
					statements, err := runPostgresSession(ctx, s, n, stop)
					work[g].add(statements, 0, 0, err)
					return
				}
				commands, cutShort, err := runSSHSession(s, n, stop)
				work[g].add(0, commands, cutShort, err)
			}()
		}
	}

	time.Sleep(duration / 3)
	collectors[1].proc.kill()
	collectors = append(collectors, startScaleCollector(t, "collector-4", cluster))
	balancer.setBackends([]string{collectors[0].otlp, collectors[2].otlp, collectors[3].otlp})
	t.Logf("%s: killed collector-2, started collector-4", time.Now().Format(time.TimeOnly))
	time.Sleep(duration/2 - duration/3)
	killESNode(t, cluster, 3)
	t.Logf("%s: killed Elasticsearch node 3", time.Now().Format(time.TimeOnly))
	time.Sleep(duration - duration/2)
	close(stop)
	clients.Wait()

	for g, s := range stacks {
		w := work[g]
		if w.sessions != 10 || w.failures > 0 {
			t.Fatalf("gateway %s: %d sessions, %d failed: %v", s.gatewayID, w.sessions, w.failures, w.errs)
		}
	}
	// Every record leaves the gateways' spools...
	for _, s := range stacks {
		testenv.Eventually(t, 2*time.Minute, 500*time.Millisecond, func() (bool, string) {
			v, ok := s.metric(t, "pamtrail_spool_records_pending")
			return ok && v == 0, fmt.Sprintf("gateway %s: %v records pending in the spool", s.gatewayID, v)
		})
	}
	// ...and every session document converges on its ground truth.
	for g, s := range stacks {
		testenv.Eventually(t, 2*time.Minute, time.Second, func() (bool, string) {
			sessions := bySession(s.events(review.Filter{Size: 10000}))
			if len(sessions) != 10 {
				return false, fmt.Sprintf("gateway %s: %d sessions in the events index, want 10", s.gatewayID, len(sessions))
			}
			docs, err := sessionDocs(cluster.URLs[0], []string{s.gatewayID})
			if err != nil {
				return false, err.Error()
			}
			statements, commands := 0, 0
			for id, evs := range sessions {
				truth := truthOf(evs)
				if truth.duplicates > 0 {
					t.Fatalf("session %s: %d events indexed twice", id, truth.duplicates)
				}
				if msg := docMismatch(id, s.gatewayID, truth, docs[id]); msg != "" {
					return false, "session " + id + ": " + msg
				}
				statements += truth.queries
				commands += truth.commands
			}
			w := work[g]
			if statements != w.statements || commands < w.cmds || commands > w.cmds+w.cutShort {
				return false, fmt.Sprintf("gateway %s: the events index holds %d statements and %d commands, the clients ran %d and %d (+%d cut short)",
					s.gatewayID, statements, commands, w.statements, w.cmds, w.cutShort)
			}
			return true, ""
		})
	}
	watch.close()
	watch.mu.Lock()
	defer watch.mu.Unlock()
	for id := range watch.lost {
		t.Errorf("session %s was shown lost while its records flowed", id)
	}
	for id, seen := range watch.summaries {
		if len(seen) > 1 {
			t.Errorf("session %s: its summary was written %d times (%v)", id, len(seen), seen)
		}
	}
	t.Logf("balancer: %d connections, %d cuts; per gateway statements/commands/cut short: %d/%d/%d and %d/%d/%d",
		balancer.accepted.Load(), balancer.cuts.Load(), work[0].statements, work[0].cmds, work[0].cutShort,
		work[1].statements, work[1].cmds, work[1].cutShort)
}
