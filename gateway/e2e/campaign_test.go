package e2e

// Fault campaigns (issue #5): the gateway SIGKILLed again and again under
// load, the collector down, Elasticsearch unreachable. Each is bounded,
// scripted and repeatable (PAMTRAIL_CAMPAIGN_SEED replays the kill moments).
// The short version runs in `make test`; PAMTRAIL_SOAK=1 (`make soak`) runs
// the full one: 50 kills per mode and 5-minute outages, at 2,000 statements/s.
//
// What "durable before the kill" means, and so what the crash campaign
// demands, is stated in gateway/spool/DURABILITY.md.

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// campaignPlan sizes a campaign.
type campaignPlan struct {
	soak       bool
	clients    int
	rate       float64 // statements per second per client
	kills      int
	killGapMin time.Duration // the gateway runs this long at least between kills...
	killGapMax time.Duration // ...and at most
	outage     time.Duration
	drain      time.Duration // how long Elasticsearch may take to catch up at the end
	seed       uint64
}

func planCampaign(t *testing.T) campaignPlan {
	p := campaignPlan{
		clients: 20, rate: 10,
		kills: 5, killGapMin: 1500 * time.Millisecond, killGapMax: 4 * time.Second,
		outage: time.Minute, drain: 3 * time.Minute,
	}
	if os.Getenv("PAMTRAIL_SOAK") == "1" {
		// 20 clients × 100 statements/s: the soak runs at 2,000 records/s,
		// ten times what delivery managed before issue #10.
		p.soak = true
		p.rate = 100
		p.kills, p.killGapMin, p.killGapMax = 50, 1500*time.Millisecond, 6*time.Second
		p.outage, p.drain = 5*time.Minute, 20*time.Minute
	}
	if v := os.Getenv("PAMTRAIL_OUTAGE"); v != "" {
		p.outage = outageDuration(t)
	}
	p.seed = uint64(time.Now().UnixNano())
	if v := os.Getenv("PAMTRAIL_CAMPAIGN_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("PAMTRAIL_CAMPAIGN_SEED: %v", err)
		}
		p.seed = seed
	}
	t.Logf("campaign plan: soak=%v clients=%d rate=%.0f/s each kills=%d gap=%v..%v outage=%v seed=%d (PAMTRAIL_CAMPAIGN_SEED=%d replays it)",
		p.soak, p.clients, p.rate, p.kills, p.killGapMin, p.killGapMax, p.outage, p.seed, p.seed)
	return p
}

// TestCampaignGatewayCrash: 20 concurrent sessions insert numbered rows
// while the gateway is SIGKILLed at random moments and restarted each time.
// In strict mode and under the default interval policy alike, every
// statement the client saw succeed is in Elasticsearch, and so is every
// record the killed gateway left in its spool. Never a duplicate.
func TestCampaignGatewayCrash(t *testing.T) {
	plan := planCampaign(t)
	modes := []struct {
		name      string
		recording string
	}{
		{name: "strict", recording: "  failure_policy: fail-closed\n  mode: strict\n"},
		{name: "interval", recording: "  failure_policy: fail-open\n  mode: async\n"},
	}
	for i, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			s := newStack(t, stackOptions{recording: mode.recording})
			cfg, err := config.Load(s.gwConfig)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Spool.Fsync != "interval" {
				t.Fatalf("the stack's spool uses fsync %q; this campaign checks the interval policy", cfg.Spool.Fsync)
			}
			s.start()
			w := newWorkload(t, s, plan.clients, plan.rate, true)
			w.start()
			w.waitAcked(plan.clients)

			rng := rand.New(rand.NewPCG(plan.seed, uint64(i)))
			faults := faultLog{onDisk: map[eventKey]bool{}}
			for k := 0; k < plan.kills; k++ {
				gap := plan.killGapMin + time.Duration(rng.Int64N(int64(plan.killGapMax-plan.killGapMin)))
				<-time.After(gap) // the fault's random moment, not a wait for a result
				faults.kills = append(faults.kills, time.Now())
				s.gateway.kill()
				onDisk, lost := s.snapshotSpool()
				for key := range onDisk {
					faults.onDisk[key] = true
				}
				faults.recoveryLost += lost
				s.startGateway() // fails the test if the gateway does not come back
				// Every kill must hit sessions under load: wait for the
				// clients to be back before choosing the next moment.
				w.waitAcked(plan.clients)
			}
			w.waitAcked(2 * plan.clients)
			w.stop()
			if n := w.connects.Load() - int64(plan.clients); n < int64(plan.kills) {
				t.Errorf("clients reconnected %d times over %d kills: the kills did not hit live sessions", n, plan.kills)
			}
			verifyCampaign(t, s, w, faults, plan.drain)
		})
	}
}

// TestCampaignCollectorDown: the collector crashes (SIGKILL, the harder
// case: a graceful stop flushes, see TestCollectorOutage) and stays down for
// the outage while 20 sessions keep inserting. The gateway keeps serving from
// its spool; what the collector had acknowledged is in its persistent queue;
// once it is back every statement arrives exactly once.
func TestCampaignCollectorDown(t *testing.T) {
	t.Parallel()
	plan := planCampaign(t)
	s := newStack(t, stackOptions{})
	s.start()
	runOutageCampaign(t, s, plan, "collector", s.collector.kill, s.startCollector)
}

// TestCampaignElasticsearchDown: Elasticsearch is unreachable from the
// collector for the outage (a proxy the test owns is cut; the shared
// Elasticsearch keeps running for other tests). The collector's persistent
// queue and the gateway's spool hold everything; afterwards every statement
// arrives exactly once.
func TestCampaignElasticsearchDown(t *testing.T) {
	t.Parallel()
	plan := planCampaign(t)
	s := newStack(t, stackOptions{})
	proxy := startProxy(t, hostPort(t, s.esURL))
	writeFile(t, s.colConfig, collectorConfig(s.otlpAddr, s.healthAddr, "http://"+proxy.addr, filepath.Join(s.dir, "queue")))
	s.start()
	runOutageCampaign(t, s, plan, "elasticsearch", proxy.cut, func() {
		// The queue holds the outage's requests, each in a value file of
		// its own (encrypted_storage's large_values), not in bbolt.
		if n := valueFileCount(t, filepath.Join(s.dir, "queue", "values")); n == 0 {
			t.Errorf("the collector's queue holds no value file after a %v Elasticsearch outage: large_values is not in use", plan.outage)
		}
		proxy.restore()
	})
}

// valueFileCount counts encrypted_storage's value files under dir.
func valueFileCount(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".value") {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatalf("reading the collector's value files: %v", err)
	}
	return n
}

// runOutageCampaign runs the workload through an outage made by down() and
// ended by up(), then verifies nothing was lost or duplicated.
func runOutageCampaign(t *testing.T, s *stack, plan campaignPlan, what string, down, up func()) {
	t.Helper()
	w := newWorkload(t, s, plan.clients, plan.rate, false)
	w.start()
	// The outage must interrupt an upload stream already under way.
	testenv.Eventually(t, 60*time.Second, 500*time.Millisecond, func() (bool, string) {
		n := s.queryEventCount()
		return n > 0, fmt.Sprintf("%d statement events indexed", n)
	})
	down()
	ackedBefore := w.acked()
	// Halfway through, anything in flight at the cut has long settled; from
	// then on nothing may be indexed, or the outage was not real.
	<-time.After(plan.outage / 2) // the outage's length, not a wait for a result
	indexedMid := s.queryEventCount()
	<-time.After(plan.outage - plan.outage/2)
	indexedEnd := s.queryEventCount()
	ackedDuring := w.acked() - ackedBefore
	up()
	if indexedEnd != indexedMid {
		t.Errorf("%d statement events were indexed during the second half of the %s outage: it was not an outage", indexedEnd-indexedMid, what)
	}
	if ackedDuring == 0 {
		t.Fatalf("no statement succeeded during the %s outage: the gateway must keep serving", what)
	}
	w.waitAcked(2 * plan.clients)
	w.stop()
	t.Logf("%s down for %v: %d statements acknowledged during the outage (%.0f/s)", what, plan.outage, ackedDuring, float64(ackedDuring)/plan.outage.Seconds())
	verifyCampaign(t, s, w, faultLog{}, plan.drain)
}

func hostPort(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		t.Fatalf("Elasticsearch URL %q: %v", rawURL, err)
	}
	return u.Host
}
