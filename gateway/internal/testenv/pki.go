package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/keys"
)

// NewCA makes a self-signed P-256 CA valid for a day.
func NewCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: name}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
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

// LoadCA reads a CA certificate and its key from PEM files, such as the
// local CA services.sh creates (TLSFiles, PG.CAFile and PG.CAKeyFile).
func LoadCA(t testing.TB, certFile, keyFile string) (*x509.Certificate, any) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("CA %s: %v", certFile, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return cert, pair.PrivateKey
}

// IssueCert signs a fresh P-256 key with the CA for the leaf template
// (serial, validity and key usage are filled in) and writes the
// certificate and key as PEM files, mode 0600, in a temporary directory.
func IssueCert(t testing.TB, ca *x509.Certificate, caKey any, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key := newECKey(t)
	tmpl.SerialNumber = serial()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
	WritePEM(t, certFile, "CERTIFICATE", der)
	WritePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

// WritePEM writes one PEM block to path, mode 0600.
func WritePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Keyring returns a spool keyring of n fresh keys, the last one current.
func Keyring(t testing.TB, n int) *keys.Ring {
	t.Helper()
	ks := make([]keys.Key, n)
	for i := range ks {
		k, err := keys.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		ks[i] = k
	}
	r, err := keys.NewRing(ks...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// serial is a certificate serial number unique within a test run.
func serial() *big.Int { return big.NewInt(time.Now().UnixNano()) }
