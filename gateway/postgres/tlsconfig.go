package postgres

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
	"github.com/pamtrail/pamtrail/gateway/config"
)

// alpnPostgres is the ALPN protocol PostgreSQL 17+ clients offer.
const alpnPostgres = "postgresql"

// serverTLSConfig builds the client-facing TLS configuration and the
// channel-binding data of its certificate (nil when the certificate's
// signature algorithm has no tls-server-end-point hash).
func serverTLSConfig(c *config.ServerTLS) (*tls.Config, []byte, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres.tls: loading cert_file/key_file: %w", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{alpnPostgres},
	}
	if c.ClientCAFile != "" {
		pool, err := loadCertPool(c.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("postgres.tls.client_ca_file: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("postgres.tls.cert_file: %w", err)
		}
	}
	cbind, err := scram.TLSServerEndPoint(leaf)
	if err != nil {
		cbind = nil // SCRAM-SHA-256-PLUS is then not offered
	}
	return cfg, cbind, nil
}

// upstreamTLSConfig builds the TLS configuration to reach an account's
// server, or nil when the account does not use TLS.
func upstreamTLSConfig(field string, a *config.Account) (*tls.Config, error) {
	if a.TLS == nil || !a.TLS.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         a.TLS.ServerName,
		InsecureSkipVerify: a.TLS.InsecureSkipVerify, //nolint:gosec // explicit per-account opt-out, documented in CONFIG.md
	}
	if cfg.ServerName == "" {
		cfg.ServerName = a.Host
	}
	if a.TLS.CAFile != "" {
		pool, err := loadCertPool(a.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.tls.ca_file: %w", field, err)
		}
		cfg.RootCAs = pool
	}
	if a.TLS.CertFile != "" || a.TLS.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(a.TLS.CertFile, a.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.tls: loading cert_file/key_file: %w", field, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func loadCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
