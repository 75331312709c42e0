package uploader

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
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
)

// testPKI is a throwaway CA with a server and a client certificate, written
// as PEM files the way an operator would provide them.
type testPKI struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	caPool                                               *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pamtrail test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{caPool: x509.NewCertPool()}
	p.caPool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		k := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			DNSNames:     []string{name},
			IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", keyDER)
	}
	p.serverCert, p.serverKey = leaf("collector.test", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf("gateway.test", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
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
			sp := openSpool(t, t.TempDir(), newRing(t))
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
