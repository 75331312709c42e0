package postgres

import (
	"testing"

	"github.com/pamtrail/pamtrail/gateway/postgres/clienttests"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// The same scripted workload runs in Python (psycopg 3), Java (the
// PostgreSQL JDBC driver) and JavaScript (node-postgres), direct and
// through the gateway: each client must see exactly what it sees direct,
// and the gateway must record exactly one event per executed statement,
// in order (see package clienttests).
func TestOtherLanguageClients(t *testing.T) {
	pg := postgresServer(t)
	for _, lang := range clienttests.Languages {
		t.Run(lang, func(t *testing.T) {
			clienttests.Install(t, lang)
			g := startGateway(t, baseConfig(t, pg.demoAccount(t)))
			direct := clienttests.Run(t, lang, pg.Host, pg.Port, pg.DemoUser, pg.DemoPassword, pg.DemoDB)
			via := clienttests.Run(t, lang, g.host, g.port, testUser, testPassword, "demo")
			if via != direct {
				t.Fatalf("%s saw different results through the gateway:\n%s\ndirect:\n%s", lang, via, direct)
			}
			clienttests.Check(t, clienttests.Expectations(lang), recorded(queries(g.waitEnds(clienttests.Sessions(lang)))))
		})
	}
}

func recorded(qs []recorder.Query) []clienttests.Recorded {
	out := make([]clienttests.Recorded, len(qs))
	for i, q := range qs {
		out[i] = clienttests.Recorded{Text: q.Text, Tag: q.CommandTag, Code: q.ErrorCode, Rows: q.ReturnedRows, NotExecuted: q.NotExecuted, Params: q.Params}
	}
	return out
}
