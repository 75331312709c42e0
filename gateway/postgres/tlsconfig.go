package postgres

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/schema"
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
		pool, err := config.LoadCertPool(c.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("postgres.tls.client_ca_file: %w", err)
		}
		cfg.ClientCAs = pool
		// The certificate is a second factor: it does not name the user,
		// who still logs in with SCRAM.
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

// clientCertRequired reports whether the listener demands a client
// certificate (postgres.tls.client_ca_file is set).
func clientCertRequired(cfg *tls.Config) bool {
	return cfg != nil && cfg.ClientAuth == tls.RequireAndVerifyClientCert
}

// clientCertRefusal tells a handshake that failed on the client's
// certificate, which is a refused login and recorded as one, from any other
// failed handshake (a client that went away, or that distrusts the gateway),
// for which it returns nil. crypto/tls has no error type for a missing or
// unparsable certificate, only its messages; TestClientCertificates pins
// them with real handshakes.
func clientCertRefusal(cfg *tls.Config, err error) *authFailure {
	if !clientCertRequired(cfg) {
		return nil
	}
	var why string
	var verr *tls.CertificateVerificationError
	switch msg := err.Error(); {
	case errors.As(err, &verr):
		why = "client certificate not trusted by postgres.tls.client_ca_file: " + verr.Err.Error()
	case strings.Contains(msg, "didn't provide a certificate"):
		why = "no client certificate presented; postgres.tls.client_ca_file requires one"
	case strings.Contains(msg, "client certificate") || strings.Contains(msg, "client sent certificate"):
		why = "client certificate rejected: " + msg
	default:
		return nil
	}
	return &authFailure{
		// The TLS alert is the client's answer: after a failed handshake
		// no ErrorResponse can reach it.
		wire:    &wireError{code: codeInvalidAuthorization, message: why},
		reason:  schema.AuthBadClientCert,
		message: why,
	}
}

// plaintextWithoutCert refuses a client that skipped TLS on a listener that
// requires client certificates; without this, sslmode=disable would bypass
// the certificate check.
func (c *clientConn) plaintextWithoutCert() *authFailure {
	c.user = c.param("user")
	return &authFailure{
		wire: &wireError{code: codeInvalidAuthorization,
			message: "pamtrail requires a client certificate: connect with sslmode=verify-full (or require) and sslcert/sslkey"},
		reason:  schema.AuthBadClientCert,
		message: "plaintext connection refused: postgres.tls.client_ca_file requires a client certificate over TLS",
		account: c.param("database"),
	}
}
