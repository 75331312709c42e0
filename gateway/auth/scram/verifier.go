// Package scram implements SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL
// uses it. verifier.go holds the stored form of a password; the server-side
// exchange lives beside it.
package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultIterations matches PostgreSQL's scram_iterations default.
const DefaultIterations = 4096

// Verifier is the stored form of a SCRAM-SHA-256 password, in PostgreSQL's
// text format: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
// It lets the gateway check a password without ever storing it.
type Verifier struct {
	Iterations int
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

// NewVerifier derives a verifier from a password with a fresh random salt.
func NewVerifier(password string, iterations int) (Verifier, error) {
	if iterations <= 0 {
		iterations = DefaultIterations
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return Verifier{}, err
	}
	salted, err := SaltedPassword(password, salt, iterations)
	if err != nil {
		return Verifier{}, err
	}
	clientKey := HMAC(salted, []byte("Client Key"))
	stored := sha256.Sum256(clientKey)
	return Verifier{
		Iterations: iterations,
		Salt:       salt,
		StoredKey:  stored[:],
		ServerKey:  HMAC(salted, []byte("Server Key")),
	}, nil
}

// SaltedPassword is Hi(password, salt, i) from RFC 5802. PostgreSQL applies
// SASLprep to the password; pamtrail passes ASCII passwords through unchanged
// and non-ASCII ones as raw UTF-8, which is what PostgreSQL also does when
// SASLprep fails.
func SaltedPassword(password string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
}

// HMAC is HMAC-SHA-256.
func HMAC(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// String renders the verifier in PostgreSQL's format.
func (v Verifier) String() string {
	b := base64.StdEncoding
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", v.Iterations,
		b.EncodeToString(v.Salt), b.EncodeToString(v.StoredKey), b.EncodeToString(v.ServerKey))
}

// ParseVerifier parses PostgreSQL's SCRAM-SHA-256 verifier format.
func ParseVerifier(s string) (Verifier, error) {
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return Verifier{}, errors.New(`must start with "SCRAM-SHA-256$" (generate one with: pamtrail passwd)`)
	}
	iterSalt, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return Verifier{}, errors.New("malformed SCRAM verifier: missing '$' before the keys")
	}
	iterStr, saltStr, ok := strings.Cut(iterSalt, ":")
	if !ok {
		return Verifier{}, errors.New("malformed SCRAM verifier: want <iterations>:<salt>")
	}
	storedStr, serverStr, ok := strings.Cut(keys, ":")
	if !ok {
		return Verifier{}, errors.New("malformed SCRAM verifier: want <StoredKey>:<ServerKey>")
	}
	iter, err := strconv.Atoi(iterStr)
	if err != nil || iter < 1 {
		return Verifier{}, fmt.Errorf("malformed SCRAM verifier: bad iteration count %q", iterStr)
	}
	var v Verifier
	v.Iterations = iter
	b := base64.StdEncoding
	if v.Salt, err = b.DecodeString(saltStr); err != nil || len(v.Salt) == 0 {
		return Verifier{}, errors.New("malformed SCRAM verifier: bad salt encoding")
	}
	if v.StoredKey, err = b.DecodeString(storedStr); err != nil || len(v.StoredKey) != sha256.Size {
		return Verifier{}, errors.New("malformed SCRAM verifier: StoredKey must be 32 bytes of base64")
	}
	if v.ServerKey, err = b.DecodeString(serverStr); err != nil || len(v.ServerKey) != sha256.Size {
		return Verifier{}, errors.New("malformed SCRAM verifier: ServerKey must be 32 bytes of base64")
	}
	return v, nil
}
