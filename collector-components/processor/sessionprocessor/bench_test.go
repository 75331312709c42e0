// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/pamtrail/pamtrail/collector-components/internal/esenv"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/sessionsindex"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// benchStatements is a realistic mix: mostly plain reads and writes, a few
// statements and commands that trip a rule.
var benchStatements = []struct {
	event, key, text string
}{
	{schema.EventDBQuery, schema.AttrDBQueryText, "SELECT id, name, email FROM customers WHERE id = $1"},
	{schema.EventDBQuery, schema.AttrDBQueryText, "UPDATE orders SET status = 'shipped' WHERE id = 42"},
	{schema.EventDBQuery, schema.AttrDBQueryText, "INSERT INTO audit_log (actor, action) VALUES ($1, $2)"},
	{schema.EventDBQuery, schema.AttrDBQueryText, "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > now() - interval '1 day'"},
	{schema.EventDBQuery, schema.AttrDBQueryText, "DELETE FROM sessions WHERE expires_at < now()"},
	{schema.EventSSHCommand, schema.AttrSSHCommand, "ls -la /var/log/nginx"},
	{schema.EventSSHCommand, schema.AttrSSHCommand, "tail -n 100 /var/log/syslog"},
	{schema.EventSSHCommand, schema.AttrSSHCommand, "systemctl status nginx"},
	{schema.EventDBQuery, schema.AttrDBQueryText, "DROP TABLE tmp_import"},
	{schema.EventSSHCommand, schema.AttrSSHCommand, "sudo systemctl restart nginx"},
}

// benchBatch builds one upload's worth of records over a few sessions, like
// a gateway's request: the session attributes, seq, and a statement each.
func benchBatch(prefix string, batch, size int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "pamtrail-gateway")
	records := rl.ScopeLogs().AppendEmpty().LogRecords()
	now := time.Now()
	for i := range size {
		st := benchStatements[i%len(benchStatements)]
		rec := records.AppendEmpty()
		rec.SetEventName(st.event)
		rec.Body().SetStr(st.text)
		rec.SetTimestamp(pcommon.NewTimestampFromTime(now))
		a := rec.Attributes()
		// Eight sessions, each with consecutive seqs, as a gateway sends them.
		a.PutStr(schema.AttrSessionID, fmt.Sprintf("%s-%d", prefix, i%8))
		a.PutInt(schema.AttrSeq, int64((batch*size+i)/8))
		a.PutStr(schema.AttrUserName, "alice")
		a.PutStr(schema.AttrAccount, "demo-postgres")
		a.PutStr(schema.AttrResourceType, schema.ResourcePostgres)
		a.PutStr(schema.AttrClientAddr, "10.0.0.5")
		a.PutStr(schema.AttrGatewayID, "gw-1")
		a.PutStr(st.key, st.text)
		a.PutStr(schema.AttrResponseText, "OK")
		a.PutInt(schema.AttrDBReturnedRows, 1)
		a.PutDouble(schema.AttrDurationMs, 0.8)
	}
	return ld
}

// BenchmarkProcessor measures the whole per-record path (document ids, risk
// rules with the built-in set, the hand-off, and the merge into the session
// state) for 8 concurrent senders (gateways), each sending requests of 1,000
// records over 8 sessions of its own.
// state=memory keeps the state in this process (one collector);
// state=elasticsearch merges it into a real sessions index with optimistic
// concurrency, as every collector of a tier does. Run with -cpu 1 for the
// single-core figure; it reports records/s.
func BenchmarkProcessor(b *testing.B) {
	const requestSize = 1000
	stores := []struct {
		name string
		open func(b *testing.B) sessionsindex.Store
	}{
		{"memory", func(*testing.B) sessionsindex.Store { return sessionsindex.NewMemory(time.Hour, time.Now) }},
		{"elasticsearch", func(b *testing.B) sessionsindex.Store {
			url := esenv.URL(b)
			store, err := sessionsindex.NewElasticsearch(sessionsindex.ClientConfig{
				Endpoints: []string{url}, Timeout: 30 * time.Second,
				Index: esenv.SessionsIndex(b, url), EventsIndex: schema.EventsIndexPattern,
			}, time.Now)
			require.NoError(b, err)
			return store
		}},
	}
	for _, st := range stores {
		b.Run("state="+st.name, func(b *testing.B) {
			p := newTestProcessor(b, createDefaultConfig().(*Config), consumertest.NewNop())
			p.store = st.open(b)
			require.NoError(b, p.Start(context.Background(), componenttest.NewNopHost()))
			b.Cleanup(func() { require.NoError(b, p.Shutdown(context.Background())) })

			// Build the input outside the timer: the receiver's decoding is
			// not ours. Each sender has sessions of its own.
			const senders = 8
			prefix := fmt.Sprintf("bench-%d", time.Now().UnixNano())
			requests := make(chan plog.Logs, b.N)
			perSender := make([]int, senders)
			for i := range b.N {
				perSender[i%senders]++
				requests <- benchBatch(fmt.Sprintf("%s-%d", prefix, i%senders), perSender[i%senders]-1, requestSize)
			}
			close(requests)
			b.ResetTimer()
			var wg sync.WaitGroup
			for range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ld := range requests {
						if err := p.ConsumeLogs(context.Background(), ld); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N*requestSize)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
