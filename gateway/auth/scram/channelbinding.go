package scram

import (
	"crypto"
	"crypto/x509"
	"fmt"
)

// TLSServerEndPoint computes the "tls-server-end-point" channel-binding data
// of RFC 5929: the hash of the server certificate, with the hash of its
// signature algorithm, upgraded to SHA-256 for MD5 and SHA-1. PostgreSQL
// offers SCRAM-SHA-256-PLUS with exactly this binding.
func TLSServerEndPoint(cert *x509.Certificate) ([]byte, error) {
	var h crypto.Hash
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256, x509.DSAWithSHA256:
		h = crypto.SHA256
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h = crypto.SHA512
	default:
		// Ed25519 certificates have no separate hash; RFC 5929 leaves them
		// undefined, so channel binding is not offered.
		return nil, fmt.Errorf("scram: no tls-server-end-point hash for signature algorithm %v", cert.SignatureAlgorithm)
	}
	d := h.New()
	d.Write(cert.Raw)
	return d.Sum(nil), nil
}
