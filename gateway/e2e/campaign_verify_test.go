package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// faultLog is what a campaign knows about its faults.
type faultLog struct {
	kills        []time.Time       // when the gateway was SIGKILLed, in order
	onDisk       map[eventKey]bool // records found in the spool after a kill
	recoveryLost uint64            // records recovery counted lost, over all kills
}

// nextKill returns the index of the first kill at or after t (len(kills) if
// none).
func (f faultLog) nextKill(t time.Time) int {
	i, _ := slices.BinarySearchFunc(f.kills, t, func(k, t time.Time) int { return k.Compare(t) })
	return i
}

var insertRow = regexp.MustCompile(`^insert into (campaign_[0-9a-f]+) \(n, client\) values \((\d+), (\d+)\)$`)

// campaignEvents is what Elasticsearch holds for a campaign.
type campaignEvents struct {
	all  []review.Event
	rows map[int64][]review.Event // statement events of the campaign table, by row number
	keys map[eventKey]int         // every event, by (session, seq)
}

// recorded reports whether row n has an event.
func (c campaignEvents) recorded(n int64) bool { return len(c.rows[n]) > 0 }

// verifyCampaign waits until Elasticsearch holds everything the campaign
// must not lose, then checks that nothing is duplicated, missing or false:
//   - every statement the client saw acknowledged has its event: the spool
//     holds a record before its response is released, under strict and
//     interval alike (gateway/spool/DURABILITY.md);
//   - every record found on disk after a kill has its event;
//   - what survived each kill is a prefix: no statement acknowledged before
//     a surviving statement was sent is missing;
//   - no (session, seq) and no row number is indexed twice;
//   - sessions the clients ended cleanly are complete: seq 0..end, no gap;
//   - every acknowledged row is committed in PostgreSQL, and every event
//     recording a successful insert names a committed row.
func verifyCampaign(t *testing.T, s *stack, w *workload, faults faultLog, timeout time.Duration) {
	t.Helper()
	stmts := w.statements()
	sort.Slice(faults.kills, func(i, j int) bool { return faults.kills[i].Before(faults.kills[j]) })
	must := map[int64]statement{}
	for _, st := range stmts {
		if !st.acked.IsZero() {
			must[st.row] = st
		}
	}
	if len(must) == 0 {
		t.Fatal("the workload acknowledged no statement: the campaign proved nothing")
	}

	evs := waitRecorded(t, s, w, faults, must, timeout)
	dups := checkNoDuplicates(t, evs)
	if holes := durablePrefixHoles(stmts, faults, evs.recorded); len(holes) > 0 {
		t.Errorf("%d statements are missing before statements that survived the same kill (a hole in the durable prefix): %s", len(holes), firstFew(holes))
	}
	checkCompleteSessions(t, evs, int(w.ended.Load()))
	unrecorded := checkAgainstPostgres(t, w, stmts, evs)
	t.Logf("campaign: %d statements sent, %d acknowledged, all recorded; %d events, %d duplicates",
		len(stmts), len(must), len(evs.all), dups)
	if len(faults.kills) > 0 {
		t.Logf("campaign: %d kills; %d records on disk after the kills, all recorded (recovery counted %d lost); "+
			"%d rows committed in PostgreSQL without an event (in flight at a kill, never acknowledged)",
			len(faults.kills), len(faults.onDisk), faults.recoveryLost, unrecorded)
	}
}

// waitRecorded polls Elasticsearch until every must-have statement, every
// record left on disk by a kill and every clean session end is indexed.
func waitRecorded(t *testing.T, s *stack, w *workload, faults faultLog, must map[int64]statement, timeout time.Duration) campaignEvents {
	t.Helper()
	var got campaignEvents
	testenv.Eventually(t, timeout, time.Second, func() (bool, string) {
		all, err := s.allEvents()
		if err != nil {
			return false, err.Error() // polled again: a transient search failure is no verdict
		}
		got = indexEvents(t, all, w.table)
		var missing []string
		for n, st := range must {
			if !got.recorded(n) {
				missing = append(missing, describeStatement(st, faults))
			}
		}
		var missingDisk []string
		for k := range faults.onDisk {
			if got.keys[k] == 0 {
				missingDisk = append(missingDisk, k.String())
			}
		}
		ends := 0
		for _, e := range all {
			if e.EventName == schema.EventSessionEnd {
				ends++
			}
		}
		wantEnds := int(w.ended.Load())
		sort.Strings(missing)
		if len(missing) > 0 {
			missing = append(explainMissing(w.statements(), must, got), missing...)
		}
		return len(missing) == 0 && len(missingDisk) == 0 && ends >= wantEnds,
			fmt.Sprintf("%d events; acknowledged statements missing: %d of %d (%s); spooled records missing: %d of %d (%s); session ends %d/%d",
				len(all), len(missing), len(must), firstFew(missing), len(missingDisk), len(faults.onDisk), firstFew(missingDisk), ends, wantEnds)
	})
	return got
}

// explainMissing says, for a few missing statements, where their client's
// recorded neighbours are and what holds the sequence numbers between them:
// a gap there means a record was numbered and then lost on its way, no gap
// means the statement was never recorded at all.
func explainMissing(stmts []statement, must map[int64]statement, got campaignEvents) []string {
	byKey := map[eventKey]review.Event{}
	for _, e := range got.all {
		byKey[keyOf(e)] = e
	}
	var out []string
	for _, st := range must {
		if got.recorded(st.row) || len(out) == 3 {
			continue
		}
		var before, after review.Event
		var beforeRow, afterRow int64 = -1, -1
		for _, o := range stmts {
			if o.client != st.client || !got.recorded(o.row) {
				continue
			}
			if o.row < st.row && o.row > beforeRow {
				beforeRow, before = o.row, got.rows[o.row][0]
			}
			if o.row > st.row && (afterRow < 0 || o.row < afterRow) {
				afterRow, after = o.row, got.rows[o.row][0]
			}
		}
		line := fmt.Sprintf("row %d (client %d) lies between row %d at %s and row %d at %s", st.row, st.client, beforeRow, keyOf(before), afterRow, keyOf(after))
		neighbour := func(k eventKey) {
			if e, ok := byKey[k]; ok {
				line += fmt.Sprintf("; %s is %s %q", k, e.EventName, e.Str(schema.AttrDBQueryText))
			} else {
				line += fmt.Sprintf("; %s is not indexed", k)
			}
		}
		if b := keyOf(before); beforeRow >= 0 {
			neighbour(eventKey{session: b.session, seq: b.seq + 1})
		}
		if a := keyOf(after); afterRow >= 0 && a.seq > 0 {
			neighbour(eventKey{session: a.session, seq: a.seq - 1})
		}
		out = append(out, "["+line+"]")
	}
	return out
}

// describeStatement names a statement and where it stands to the kills.
func describeStatement(st statement, faults faultLog) string {
	if i := faults.nextKill(st.acked); i < len(faults.kills) {
		return fmt.Sprintf("row %d acknowledged %v before kill %d", st.row, faults.kills[i].Sub(st.acked).Round(time.Millisecond), i+1)
	}
	return fmt.Sprintf("row %d acknowledged after the last kill", st.row)
}

// checkNoDuplicates fails on an event indexed twice, by key or by row, and
// returns how many there were.
func checkNoDuplicates(t *testing.T, evs campaignEvents) int {
	t.Helper()
	var dups []string
	for k, n := range evs.keys {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s x%d", k, n))
		}
	}
	for n, list := range evs.rows {
		if len(list) > 1 {
			dups = append(dups, fmt.Sprintf("row %d x%d", n, len(list)))
		}
	}
	if len(dups) > 0 {
		sort.Strings(dups)
		t.Errorf("%d duplicates in Elasticsearch: %s", len(dups), firstFew(dups))
	}
	return len(dups)
}

// durablePrefixHoles holds each kill to the spool's ordering, with no
// timing assumption. A statement's event is appended before the client sees
// it acknowledged, so if A was acknowledged before B was sent, A's record
// precedes B's in the spool. What survives a process crash is a prefix of
// the spool (uploaded, or written before the kill), so if B survived, A must
// have too. It returns the statements that break this.
func durablePrefixHoles(stmts []statement, faults faultLog, recorded func(row int64) bool) []string {
	// Per kill: the latest-sent statement that survived it.
	lastSurvivor := make([]*statement, len(faults.kills))
	for i := range stmts {
		st := &stmts[i]
		k := faults.nextKill(st.sent)
		if k == len(faults.kills) || !recorded(st.row) {
			continue
		}
		if lastSurvivor[k] == nil || st.sent.After(lastSurvivor[k].sent) {
			lastSurvivor[k] = st
		}
	}
	var holes []string
	for _, st := range stmts {
		if st.acked.IsZero() || recorded(st.row) {
			continue
		}
		k := faults.nextKill(st.sent)
		if k == len(faults.kills) || lastSurvivor[k] == nil {
			continue
		}
		if b := lastSurvivor[k]; st.acked.Before(b.sent) {
			holes = append(holes, fmt.Sprintf("row %d (acknowledged %v before row %d was sent, which survived kill %d)",
				st.row, b.sent.Sub(st.acked).Round(time.Millisecond), b.row, k+1))
		}
	}
	sort.Strings(holes)
	return holes
}

// checkCompleteSessions: sessions the clients ended cleanly lost nothing,
// they are contiguous from their start to their end event.
func checkCompleteSessions(t *testing.T, evs campaignEvents, ended int) {
	t.Helper()
	var complete []review.Event
	for _, list := range bySession(evs.all) {
		if list[len(list)-1].EventName == schema.EventSessionEnd {
			complete = append(complete, list...)
		}
	}
	if got := len(bySession(complete)); got < ended {
		t.Errorf("%d sessions ended cleanly but only %d are complete in Elasticsearch", ended, got)
	}
	checkExactlyOnce(t, complete, true)
}

// checkAgainstPostgres: every acknowledged row is committed, and the
// recording tells no lies (no event for a row never sent, no successful
// insert of a row PostgreSQL does not hold). It returns how many committed
// rows have no event.
func checkAgainstPostgres(t *testing.T, w *workload, stmts []statement, evs campaignEvents) int {
	t.Helper()
	committed := w.committedRows()
	sent := map[int64]bool{}
	for _, st := range stmts {
		sent[st.row] = true
		if !st.acked.IsZero() && !committed[st.row] {
			t.Errorf("row %d was acknowledged to the client but is not in PostgreSQL", st.row)
		}
	}
	for n, list := range evs.rows {
		if !sent[n] {
			t.Errorf("Elasticsearch records row %d, which no client sent", n)
		}
		if tag := list[0].Str(schema.AttrDBCommandTag); tag == "INSERT 0 1" && !committed[n] {
			t.Errorf("Elasticsearch records row %d as inserted, but PostgreSQL does not hold it", n)
		}
	}
	unrecorded := 0
	for n := range committed {
		if !evs.recorded(n) {
			unrecorded++
		}
	}
	return unrecorded
}

// indexEvents maps the campaign table's statement events by row number and
// every event by key.
func indexEvents(t *testing.T, all []review.Event, table string) campaignEvents {
	c := campaignEvents{all: all, rows: map[int64][]review.Event{}, keys: map[eventKey]int{}}
	for _, e := range all {
		c.keys[keyOf(e)]++
		if e.EventName != schema.EventDBQuery {
			continue
		}
		m := insertRow.FindStringSubmatch(e.Str(schema.AttrDBQueryText))
		if m == nil || m[1] != table {
			continue
		}
		n, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			t.Fatalf("row number in %q: %v", e.Str(schema.AttrDBQueryText), err)
		}
		c.rows[n] = append(c.rows[n], e)
	}
	return c
}

func firstFew(list []string) string {
	if len(list) > 8 {
		return strings.Join(list[:8], ", ") + ", ..."
	}
	return strings.Join(list, ", ")
}

// TestDurablePrefixHoles checks the checker: a campaign check that cannot
// fail proves nothing.
func TestDurablePrefixHoles(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	faults := faultLog{kills: []time.Time{at(1000), at(2000)}}
	stmts := []statement{
		{row: 1, sent: at(100), acked: at(110)},
		{row: 2, sent: at(200), acked: at(210)},
		{row: 3, sent: at(990)},                   // in flight at kill 1
		{row: 4, sent: at(1500), acked: at(1510)}, // after kill 1
		{row: 5, sent: at(1600), acked: at(1605)},
	}
	tests := []struct {
		name     string
		recorded []int64
		want     []int64 // rows reported as holes
	}{
		{name: "everything survived", recorded: []int64{1, 2, 3, 4, 5}},
		{name: "a lost tail is no hole", recorded: []int64{1, 4}},
		{name: "nothing survived", recorded: nil},
		{name: "lost before a survivor", recorded: []int64{2, 4, 5}, want: []int64{1}},
		{name: "in-flight survivor exposes both", recorded: []int64{3, 5}, want: []int64{1, 2, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			holes := durablePrefixHoles(stmts, faults, func(row int64) bool { return slices.Contains(tt.recorded, row) })
			var got []int64
			for _, h := range holes {
				var n int64
				if _, err := fmt.Sscanf(h, "row %d", &n); err != nil {
					t.Fatal(err)
				}
				got = append(got, n)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("holes %v, want rows %v (%q)", got, tt.want, holes)
			}
		})
	}
}
