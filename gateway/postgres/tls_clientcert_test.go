package postgres

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// clientCertFiles are the PEM files a client presents.
type clientCertFiles struct{ cert, key string }

func (f clientCertFiles) params() string {
	if f.cert == "" {
		return ""
	}
	return " sslcert=" + f.cert + " sslkey=" + f.key
}

// With postgres.tls.client_ca_file set, the gateway admits only clients
// whose certificate that CA signed; every refusal is a recorded
// pam.auth.failure. Both CAs are made by the test, and the clients are real
// pgx and psql (libpq) connections to a gateway in front of the real
// PostgreSQL.
func TestClientCertificates(t *testing.T) {
	pg := postgresServer(t)
	clientCA, clientCAKey := testenv.NewCA(t, "pamtrail test client CA")
	// Go's TLS client only presents a certificate whose issuer the server
	// lists as acceptable, so the impostor CA takes the trusted CA's name:
	// only the signature tells them apart. libpq presents any certificate
	// (the psql cases use a plainly different CA).
	impostorCA, impostorCAKey := testenv.NewCA(t, "pamtrail test client CA")
	otherCA, otherCAKey := testenv.NewCA(t, "some other CA")
	clientCAFile := filepath.Join(t.TempDir(), "client-ca.crt")
	testenv.WritePEM(t, clientCAFile, "CERTIFICATE", clientCA.Raw)

	issue := func(ca *x509.Certificate, key any, eku x509.ExtKeyUsage) clientCertFiles {
		cert, k := testenv.IssueCert(t, ca, key, &x509.Certificate{Subject: pkix.Name{CommonName: testUser}, ExtKeyUsage: []x509.ExtKeyUsage{eku}})
		return clientCertFiles{cert: cert, key: k}
	}
	trusted := issue(clientCA, clientCAKey, x509.ExtKeyUsageClientAuth)
	tests := []struct {
		name    string
		sslmode string
		files   clientCertFiles
		// wantErr is part of the client's error; empty means it connects.
		wantErr string
		// wantRecorded is part of the recorded auth failure's message.
		wantRecorded string
	}{
		{name: "signed by the client CA", sslmode: "verify-full", files: trusted},
		{name: "no certificate", sslmode: "verify-full",
			wantErr: "certificate required", wantRecorded: "no client certificate presented"},
		{name: "signed by an impostor CA", sslmode: "verify-full", files: issue(impostorCA, impostorCAKey, x509.ExtKeyUsageClientAuth),
			wantErr: "unknown certificate authority", wantRecorded: "not trusted by postgres.tls.client_ca_file: x509: certificate signed by unknown authority"},
		{name: "not issued for client auth", sslmode: "verify-full", files: issue(clientCA, clientCAKey, x509.ExtKeyUsageServerAuth),
			wantErr: "bad certificate", wantRecorded: "not trusted by postgres.tls.client_ca_file: x509: certificate specifies an incompatible key usage"},
		// Skipping TLS must not skip the certificate.
		{name: "plaintext", sslmode: "disable", files: trusted,
			wantErr: "requires a client certificate", wantRecorded: "plaintext connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := clientCertGateway(t, pg, clientCAFile)
			dsn := g.tlsConnString(testUser, testPassword, "demo", tt.sslmode, pg.CAFile) + tt.files.params()

			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			c, err := connectPgxErr(ctx, dsn)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("connect with a trusted certificate: %v", err)
				}
				var one int
				if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
					t.Fatalf("select 1: %d, %v", one, err)
				}
				_ = c.Close(ctx)
				evs := g.waitEnds(1)
				if n := countKind(evs, "auth_failure"); n != 0 {
					t.Fatalf("%d auth failures recorded for an admitted client: %q", n, summarize(evs))
				}
				return
			}
			if err == nil {
				_ = c.Close(ctx)
				t.Fatal("connected, want a refusal")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not say %q", err, tt.wantErr)
			}
			var pe *pgconn.PgError
			if tt.sslmode == "disable" && (!errors.As(err, &pe) || pe.Code != "28000") {
				t.Fatalf("plaintext refusal %v is not a 28000 ErrorResponse", err)
			}
			// The gateway records the refusal after the client has seen
			// the TLS alert, so wait for it.
			evs, ok := g.rec.WaitFor(10*time.Second, func(evs []recordertest.Event) bool { return countKind(evs, "auth_failure") > 0 })
			if !ok {
				t.Fatalf("no auth failure recorded; events %q", summarize(evs))
			}
			f := evs[len(evs)-1].Failure
			if f.Reason != schema.AuthBadClientCert || !strings.Contains(f.Message, tt.wantRecorded) {
				t.Fatalf("recorded %q: %q, want %q containing %q", f.Reason, f.Message, schema.AuthBadClientCert, tt.wantRecorded)
			}
			if countKind(evs, "start") != 0 {
				t.Fatalf("a refused client started a session: %q", summarize(evs))
			}
		})
	}

	// libpq presents the certificate too, and any certificate it has.
	psqlTests := []struct {
		name         string
		files        clientCertFiles
		wantOut      string
		wantRecorded string
	}{
		{name: "psql trusted", files: trusted, wantOut: "admitted"},
		{name: "psql another CA", files: issue(otherCA, otherCAKey, x509.ExtKeyUsageClientAuth),
			wantOut: "unknown ca", wantRecorded: "certificate signed by unknown authority"},
	}
	for _, tt := range psqlTests {
		t.Run(tt.name, func(t *testing.T) {
			g := clientCertGateway(t, pg, clientCAFile)
			dsn := g.tlsConnString(testUser, testPassword, "demo", "verify-full", pg.CAFile) + tt.files.params()
			cmd := exec.Command("psql", dsn, "-X", "-A", "-t", "-c", "select 'admitted'")
			cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
			out, err := cmd.CombinedOutput()
			if !strings.Contains(string(out), tt.wantOut) || (err == nil) != (tt.wantRecorded == "") {
				t.Fatalf("psql: %v, output lacks %q:\n%s", err, tt.wantOut, out)
			}
			if tt.wantRecorded == "" {
				return
			}
			evs, ok := g.rec.WaitFor(10*time.Second, func(evs []recordertest.Event) bool { return countKind(evs, "auth_failure") > 0 })
			if !ok {
				t.Fatalf("no auth failure recorded; events %q", summarize(evs))
			}
			if f := evs[len(evs)-1].Failure; f.Reason != schema.AuthBadClientCert || !strings.Contains(f.Message, tt.wantRecorded) {
				t.Fatalf("recorded %q: %q, want %q containing %q", f.Reason, f.Message, schema.AuthBadClientCert, tt.wantRecorded)
			}
		})
	}
}

// A client_ca_file the gateway cannot use stops it at start, naming the
// field, rather than admitting clients unchecked.
func TestClientCAFileErrors(t *testing.T) {
	pg := postgresServer(t)
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, wantErr string
	}{
		{"missing", filepath.Join(t.TempDir(), "absent.crt"), "no such file"},
		{"not PEM", notPEM, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tlsCfg := mintServerTLS(t, pg)
			tlsCfg.ClientCAFile = tt.file
			_, _, err := serverTLSConfig(tlsCfg)
			if err == nil || !strings.Contains(err.Error(), "postgres.tls.client_ca_file") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one naming postgres.tls.client_ca_file and %q", err, tt.wantErr)
			}
			cfg := baseConfig(t)
			cfg.Postgres.TLS = tlsCfg
			if _, err := New(Options{Deps: engine.Deps{Config: cfg, Recorder: recordertest.New()}}); err == nil || !strings.Contains(err.Error(), "postgres.tls.client_ca_file") {
				t.Fatalf("New: %v, want an error naming postgres.tls.client_ca_file", err)
			}
		})
	}
}

// clientCertGateway is a gateway with TLS that requires client
// certificates signed by the CA in caFile.
func clientCertGateway(t *testing.T, pg pgServer, caFile string) *gateway {
	cfg := baseConfig(t, pg.demoAccount(t))
	cfg.Postgres.TLS = mintServerTLS(t, pg)
	cfg.Postgres.TLS.ClientCAFile = caFile
	return startGateway(t, cfg)
}
