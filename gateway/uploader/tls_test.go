package uploader

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// testPKI is a throwaway CA with a server and a client certificate, written
// as PEM files the way an operator would provide them.
type testPKI struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	caPool                                               *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, caKey := testenv.NewCA(t, "pamtrail test CA")
	p := &testPKI{caPool: x509.NewCertPool(), caFile: filepath.Join(t.TempDir(), "ca.pem")}
	p.caPool.AddCert(ca)
	testenv.WritePEM(t, p.caFile, "CERTIFICATE", ca.Raw)
	leaf := func(name string, usage x509.ExtKeyUsage) (string, string) {
		return testenv.IssueCert(t, ca, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage}})
	}
	p.serverCert, p.serverKey = leaf("collector.test", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf("gateway.test", x509.ExtKeyUsageClientAuth)
	return p
}

// serverCreds requires a client certificate signed by the test CA (mTLS).
func (p *testPKI) serverCreds(t *testing.T) credentials.TransportCredentials {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.caPool,
		MinVersion:   tls.VersionTLS12,
	})
}

func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv := startOTLPServer(t, "127.0.0.1:0", pki.serverCreds(t))
	tests := []struct {
		name    string
		cfg     func(c *Config)
		wantErr string // "" means the upload must succeed
	}{
		{"client certificate and CA", func(c *Config) {
			c.CAFile, c.CertFile, c.KeyFile, c.ServerName = pki.caFile, pki.clientCert, pki.clientKey, "collector.test"
		}, ""},
		{"no client certificate", func(c *Config) {
			c.CAFile, c.ServerName = pki.caFile, "collector.test"
		}, "Unavailable"},
		{"server name mismatch", func(c *Config) {
			c.CAFile, c.CertFile, c.KeyFile, c.ServerName = pki.caFile, pki.clientCert, pki.clientKey, "someone-else.test"
		}, "certificate"},
		{"unknown CA (system roots)", func(c *Config) {
			c.CertFile, c.KeyFile, c.ServerName = pki.clientCert, pki.clientKey, "collector.test"
		}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
			cfg := fastConfig(srv.addr)
			cfg.Insecure = false
			tt.cfg(&cfg)
			u := newUploader(t, sp, cfg)
			before := len(srv.snapshot())
			appendRecords(t, sp, "tls", 0, 3)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := u.Flush(ctx)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Flush over mTLS: %v", err)
				}
				if got := len(srv.snapshot()) - before; got != 3 {
					t.Fatalf("%d records arrived over mTLS, want 3", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Flush = %v, want an error containing %q", err, tt.wantErr)
			}
			if got := len(srv.snapshot()) - before; got != 0 {
				t.Fatalf("%d records arrived over a rejected connection", got)
			}
			if u.Stats().Pending != 3 {
				t.Fatalf("records left the spool although the upload failed: %+v", u.Stats())
			}
		})
	}
}
