package mysql

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
)

// TestUpstreamTLS logs in to MariaDB over TLS, verifying its certificate
// against the local CA, and refuses a server whose certificate the account
// does not trust.
func TestUpstreamTLS(t *testing.T) {
	tlsFiles := testenv.TLS(t)
	tests := []struct {
		name    string
		tls     *config.ClientTLS
		wantErr string
		wantSSL bool
	}{
		{"verified", &config.ClientTLS{Enabled: true, CAFile: tlsFiles.CAFile}, "", true},
		{"untrusted CA", &config.ClientTLS{Enabled: true}, "could not log in", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startGateway(t, func(c *config.Config) { c.Accounts[0].TLS = tt.tls })
			db := g.open("")
			var name, version string
			err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_version'").Scan(&name, &version)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				evs := g.waitEvents("refused login", func(evs []recordertest.Event) bool { return hasKind(evs, "auth_failure") })
				for _, ev := range evs {
					if ev.Kind == "auth_failure" && !strings.Contains(ev.Failure.Message, "certificate") {
						t.Errorf("recorded reason %q does not name the certificate", ev.Failure.Message)
					}
				}
				return
			}
			if err != nil || !strings.HasPrefix(version, "TLSv1.") {
				t.Fatalf("upstream TLS version %q, error %v", version, err)
			}
		})
	}
}

// TestLargePackets moves a 20 MiB value through the gateway both ways, as
// a text query and as a prepared statement's parameter: payloads over one
// packet (16 MiB) are relayed whole and recorded cut to their limits.
func TestLargePackets(t *testing.T) {
	g := startGateway(t)
	db := g.open("maxAllowedPacket=0")
	big := strings.Repeat("0123456789abcdef", 20<<20/16)
	sum := sha256.Sum256([]byte(big))
	for _, q := range []string{"DROP TABLE IF EXISTS gw_big", "CREATE TABLE gw_big (id INT PRIMARY KEY, v LONGTEXT)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("INSERT INTO gw_big VALUES (1, '" + big + "')"); err != nil {
		t.Fatalf("text insert: %v", err)
	}
	if _, err := db.Exec("INSERT INTO gw_big VALUES (?, ?)", 2, big); err != nil {
		t.Fatalf("prepared insert: %v", err)
	}
	rows, err := db.Query("SELECT v FROM gw_big ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256([]byte(v)) != sum {
			t.Fatalf("row %d came back changed (%d bytes)", n, len(v))
		}
		n++
	}
	if err := rows.Err(); err != nil || n != 2 {
		t.Fatalf("read %d rows: %v", n, err)
	}
	db.Close()
	evs := g.waitEvents("session end", func(evs []recordertest.Event) bool { return hasKind(evs, "end") })
	for _, ev := range evs {
		if ev.Kind != "query" {
			continue
		}
		q := ev.Query
		if len(q.Text) > int(g.cfg.Recording.MaxTextBytes) || len(q.Preview) > int(g.cfg.Recording.PreviewBytes) {
			t.Errorf("event over its limits: text %d, preview %d bytes", len(q.Text), len(q.Preview))
		}
		if q.Text == "SELECT v FROM gw_big ORDER BY id" && (q.ReturnedRows != 2 || !q.PreviewTrunc) {
			t.Errorf("select of the big rows: %d rows, preview cut %v", q.ReturnedRows, q.PreviewTrunc)
		}
		if q.Text == "INSERT INTO gw_big VALUES (?, ?)" && (!q.ParamsTruncated || q.RowsAffected != 1) {
			t.Errorf("prepared insert: params cut %v, rows %d", q.ParamsTruncated, q.RowsAffected)
		}
		if strings.HasPrefix(q.Text, "INSERT INTO gw_big VALUES (1, '0123") && q.RowsAffected != 1 {
			t.Errorf("text insert: rows %d", q.RowsAffected)
		}
	}
}
