package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// UpstreamTLS builds the TLS configuration the gateway uses towards an
// account's server, or nil when the account has TLS off. field names the
// account in errors (e.g. "accounts[2]").
func (a *Account) UpstreamTLS(field string) (*tls.Config, error) {
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
		pool, err := LoadCertPool(a.TLS.CAFile)
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

// LoadCertPool reads a PEM file of CA certificates.
func LoadCertPool(path string) (*x509.CertPool, error) {
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

// UpstreamTLSByAccount builds UpstreamTLS for every account of one type,
// by account name; engines build it at start and again at each reload.
func (c *Config) UpstreamTLSByAccount(accountType string) (map[string]*tls.Config, error) {
	m := map[string]*tls.Config{}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		if a.Type != accountType {
			continue
		}
		t, err := a.UpstreamTLS(fmt.Sprintf("accounts[%d]", i))
		if err != nil {
			return nil, err
		}
		m[a.Name] = t
	}
	return m, nil
}
