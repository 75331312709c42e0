// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

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
func benchBatch(batch, size int) plog.Logs {
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
		a.PutStr(schema.AttrSessionID, fmt.Sprintf("bench-%d", i%8))
		a.PutInt(schema.AttrSeq, int64(batch*size+i))
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
// rules with the built-in set, session state) and the hand-off, on one
// goroutine, with flushes triggered by send_batch_size. Run with -cpu 1 for
// the single-core figure; it reports records/s.
func BenchmarkProcessor(b *testing.B) {
	const batchSize = 1000
	cfg := createDefaultConfig().(*Config)
	cfg.SendBatchSize, cfg.MaxPendingRecords = batchSize, batchSize
	p := newTestProcessor(b, cfg, consumertest.NewNop())
	require.NoError(b, p.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, p.Shutdown(context.Background())) })

	// Build the input outside the timer: the receiver's decoding is not ours.
	batches := make([]plog.Logs, b.N)
	for i := range batches {
		batches[i] = benchBatch(i, batchSize)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := p.ConsumeLogs(context.Background(), batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "records/s")
}
