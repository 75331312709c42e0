package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/control"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// discardActions is an admin-action recorder that keeps nothing.
type discardActions struct{}

func (discardActions) AdminAction(context.Context, recorder.AdminAction) error { return nil }

// BenchmarkTerminateLatency: from `sessions terminate` reaching the admin
// API (an HTTP request, as the CLI sends it) to the client reading the
// gateway's 57P01, for sessions idle at a prompt, as a reviewer would end
// them. Reported as p50 and p99 over the iterations (make bench runs 200).
func BenchmarkTerminateLatency(b *testing.B) {
	pg := postgresServer(b)
	dir := b.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("bench-token\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("bench-token"))
	cfg := baseConfig(b, pg.demoAccount(b))
	cfg.Admin = &config.Admin{Address: "127.0.0.1:0", LocksFile: filepath.Join(dir, "locks.json"),
		Identities: []config.AdminIdentity{{Name: "bench", TokenSHA256: hex.EncodeToString(sum[:])}}}
	ctl, err := control.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	g := startGatewayWith(b, cfg, func(o *Options) { o.Control = ctl })
	ctl.AddEngine(g.engine)
	admin, err := control.StartAdmin(ctl, discardActions{}, nil, g.engine.Logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = admin.Shutdown(context.Background()) })
	client, err := control.NewClient([]string{"http://" + admin.Addr().String()}, tokenFile, "")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		conn, err := pgconn.Connect(ctx, g.connString(testUser, testPassword, "demo"))
		if err != nil {
			b.Fatal(err)
		}
		sessions := g.engine.Sessions()
		if len(sessions) != 1 {
			b.Fatalf("%d live sessions, want 1", len(sessions))
		}
		seen := make(chan time.Time, 1)
		go func() {
			var one [1]byte
			_, _ = conn.Conn().Read(one[:]) // the ErrorResponse, or the close
			seen <- time.Now()
		}()
		b.StartTimer()
		start := time.Now()
		if _, err := client.Terminate(ctx, sessions[0].ID, "bench", ""); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-seen).Sub(start))
		b.StopTimer()
		_ = conn.Close(ctx)
		for len(g.engine.Sessions()) > 0 {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
