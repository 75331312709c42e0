package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// mintServerTLS issues a gateway certificate for localhost and 127.0.0.1
// from the local CA that deploy/local/services.sh created.
func mintServerTLS(t *testing.T, pg pgServer) *config.ServerTLS {
	t.Helper()
	caCert, caKey := testenv.LoadCA(t, pg.CAFile, pg.CAKeyFile)
	certFile, keyFile := testenv.IssueCert(t, caCert, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "pamtrail gateway test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	})
	return &config.ServerTLS{CertFile: certFile, KeyFile: keyFile}
}

// psql verifies the gateway's certificate and binds SCRAM to the TLS
// channel (SCRAM-SHA-256-PLUS), so a man in the middle could not relay the
// login.
func TestClientTLSVerifyFullWithChannelBinding(t *testing.T) {
	pg := postgresServer(t)
	cfg := baseConfig(t, pg.demoAccount(t))
	cfg.Postgres.TLS = mintServerTLS(t, pg)
	g := startGateway(t, cfg)
	for _, host := range []string{"localhost", "127.0.0.1"} {
		dsn := "host=" + host + " port=" + itoa(g.port) + " user=" + testUser + " dbname=demo sslmode=verify-full channel_binding=require sslrootcert=" + pg.CAFile
		cmd := exec.Command("psql", dsn, "-X", "-A", "-t", "-c", "select ssl from pg_stat_ssl where pid = pg_backend_pid()")
		cmd.Env = append(os.Environ(), "PGPASSWORD="+testPassword, "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("psql via %s: %v\n%s", host, err, out)
		}
	}
	// pgx (no channel binding) over verify-full.
	c := connectPgx(t, g.tlsConnString(testUser, testPassword, "demo", "verify-full", pg.CAFile))
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatal("pgx connection is not TLS")
	}
	// A client that trusts another CA refuses the gateway.
	other := filepath.Join(t.TempDir(), "other-ca.crt")
	otherCA, _ := testenv.NewCA(t, "other")
	testenv.WritePEM(t, other, "CERTIFICATE", otherCA.Raw)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := connectPgxErr(ctx, g.tlsConnString(testUser, testPassword, "demo", "verify-full", other)); err == nil {
		c.Close(ctx)
		t.Fatal("connected although the client does not trust the gateway's CA")
	}
}

// The gateway reaches the account's server over TLS, verifying it against
// the configured CA and server name.
func TestUpstreamTLS(t *testing.T) {
	pg := postgresServer(t)
	good := pg.account(t, "tls", pg.DemoUser, pg.DemoPassword, pg.DemoDB)
	good.TLS = &config.ClientTLS{Enabled: true, CAFile: pg.CAFile}
	wrongName := pg.account(t, "tls-wrong-name", pg.DemoUser, pg.DemoPassword, pg.DemoDB)
	wrongName.TLS = &config.ClientTLS{Enabled: true, CAFile: pg.CAFile, ServerName: "db.example.com"}
	g := startGateway(t, baseConfig(t, good, wrongName))

	c := connectPgx(t, g.connString(testUser, testPassword, "tls"))
	var ssl bool
	if err := c.QueryRow(context.Background(), "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&ssl); err != nil {
		t.Fatal(err)
	}
	if !ssl {
		t.Fatal("upstream connection is not encrypted")
	}
	pe := connectErr(t, g.connString(testUser, testPassword, "tls-wrong-name"))
	if pe.Code != "08006" {
		t.Fatalf("wrong server name: got %s %q, want 08006", pe.Code, pe.Message)
	}
	evs := g.rec.Events()
	f := evs[len(evs)-1].Failure
	if f.Reason != "upstream_failed" || !strings.Contains(f.Message, "certificate") {
		t.Fatalf("recorded %+v, want an upstream_failed naming the certificate problem", f)
	}
}
