package postgres

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
)

// mintServerTLS issues a gateway certificate for localhost and 127.0.0.1
// from the local CA that deploy/local/services.sh created.
func mintServerTLS(t *testing.T, pg pgServer) *config.ServerTLS {
	t.Helper()
	caCert, caKey := loadCA(t, pg)
	certFile, keyFile := issueCert(t, caCert, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "pamtrail gateway test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	})
	return &config.ServerTLS{CertFile: certFile, KeyFile: keyFile}
}

// issueCert signs a fresh P-256 key with the CA for the leaf template
// (validity, serial and key usage are filled in) and writes the
// certificate and key as PEM files, mode 0600, in a temporary directory.
func issueCert(t *testing.T, caCert *x509.Certificate, caKey any, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func loadCA(t *testing.T, pg pgServer) (*x509.Certificate, any) {
	t.Helper()
	certPEM, err := os.ReadFile(pg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(pg.CAKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("local CA: %v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return cert, pair.PrivateKey
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
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
	otherCA := selfSignedCA(t)
	writePEM(t, other, "CERTIFICATE", otherCA)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := connectPgxErr(ctx, g.tlsConnString(testUser, testPassword, "demo", "verify-full", other)); err == nil {
		c.Close(ctx)
		t.Fatal("connected although the client does not trust the gateway's CA")
	}
}

func selfSignedCA(t *testing.T) []byte {
	cert, _ := newCA(t, "other")
	return cert.Raw
}

// newCA makes a self-signed CA valid for an hour.
func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
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
