package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/postgres/clienttests"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// TestOtherLanguageClientsInElasticsearch: psycopg 3, pgJDBC and
// node-postgres run their workload through the whole pipeline; each gets
// exactly what it gets direct, and Elasticsearch holds exactly one event
// per executed statement, in order, with its text, parameters, tag, rows and
// error.
func TestOtherLanguageClientsInElasticsearch(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.start()
	host, port := s.gatewayHostPort(t)
	for _, lang := range clienttests.Languages {
		t.Run(lang, func(t *testing.T) {
			clienttests.Install(t, lang)
			direct := clienttests.Run(t, lang, s.pg.Host, s.pg.Port, s.pg.DemoUser, s.pg.DemoPassword, s.pg.DemoDB)
			since := time.Now()
			via := clienttests.Run(t, lang, host, port, "alice", alicePassword, "demo-postgres")
			if via != direct {
				t.Fatalf("%s saw different results through the gateway:\n%s\ndirect:\n%s", lang, via, direct)
			}
			want := clienttests.Sessions(lang)
			evs := s.waitEvents(90*time.Second, review.Filter{Since: since.Add(-time.Second)}, func(evs []review.Event) (bool, string) {
				ends := 0
				for _, e := range evs {
					if e.EventName == schema.EventSessionEnd {
						ends++
					}
				}
				return ends >= want, fmt.Sprintf("%d/%d sessions ended; %s", ends, want, describe(evs))
			})
			checkExactlyOnce(t, evs, true)
			var got []clienttests.Recorded
			for _, e := range mergeSessions(evs) {
				if e.EventName != schema.EventDBQuery {
					continue
				}
				got = append(got, recordedStatement(e))
			}
			clienttests.Check(t, clienttests.Expectations(lang), got)
		})
	}
}

// recordedStatement is what a pam.db.query document says of its statement.
func recordedStatement(e review.Event) clienttests.Recorded {
	return clienttests.Recorded{
		Text: e.Str(schema.AttrDBQueryText), Tag: e.Str(schema.AttrDBCommandTag), Code: e.Str(schema.AttrDBStatusCode),
		Rows: e.Int(schema.AttrDBReturnedRows), NotExecuted: e.Attributes[schema.AttrDBNotExecuted] == true,
		Params: strSlice(e.Attributes[schema.AttrDBParams]),
	}
}

// mergeSessions orders events as the workload ran them: each session in
// sequence order (protocol order, the authority), sessions interleaved by
// when the gateway recorded their next event (a client may use several
// connections, as node-postgres's pipelining one does).
func mergeSessions(evs []review.Event) []review.Event {
	var queues [][]review.Event
	for _, list := range bySession(evs) {
		queues = append(queues, list)
	}
	sort.Slice(queues, func(i, j int) bool { return queues[i][0].Observed.Before(queues[j][0].Observed) })
	var out []review.Event
	for {
		next := -1
		for i, q := range queues {
			if len(q) > 0 && (next < 0 || q[0].Observed.Before(queues[next][0].Observed)) {
				next = i
			}
		}
		if next < 0 {
			return out
		}
		out = append(out, queues[next][0])
		queues[next] = queues[next][1:]
	}
}

func strSlice(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func (s *stack) gatewayHostPort(t testing.TB) (string, int) {
	host, portStr, _ := strings.Cut(s.gwAddr, ":")
	var port int
	if _, err := fmt.Sscan(portStr, &port); err != nil {
		t.Fatal(err)
	}
	return host, port
}
