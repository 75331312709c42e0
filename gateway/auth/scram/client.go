package scram

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxClientIterations bounds the work a (misconfigured or hostile) upstream
// can make the gateway do per login.
const maxClientIterations = 1 << 22

// ClientExchange is the client side of SCRAM-SHA-256 without channel
// binding, which the gateway uses to log in to an upstream PostgreSQL with an
// account's password.
type ClientExchange struct {
	password        string
	clientNonce     string
	clientFirstBare string
	authMessage     string
	saltedPassword  []byte
}

// NewClientExchange prepares an exchange for password.
func NewClientExchange(password string) (*ClientExchange, error) {
	nonce, err := randomNonce(18)
	if err != nil {
		return nil, err
	}
	// PostgreSQL takes the user from the startup packet; "n=" stays empty.
	return &ClientExchange{password: password, clientNonce: nonce, clientFirstBare: "n=,r=" + nonce}, nil
}

// First returns the client-first-message.
func (c *ClientExchange) First() []byte { return []byte("n,," + c.clientFirstBare) }

// Final consumes the server-first-message and returns the client-final-message.
func (c *ClientExchange) Final(serverFirst []byte) ([]byte, error) {
	if len(serverFirst) > maxMessageLen {
		return nil, errors.New("scram: server-first-message too long")
	}
	var nonce, saltB64, iterStr string
	for _, attr := range strings.Split(string(serverFirst), ",") {
		k, v, ok := strings.Cut(attr, "=")
		if !ok {
			return nil, errors.New("scram: malformed server-first-message")
		}
		switch k {
		case "r":
			nonce = v
		case "s":
			saltB64 = v
		case "i":
			iterStr = v
		}
	}
	if !strings.HasPrefix(nonce, c.clientNonce) || len(nonce) == len(c.clientNonce) {
		return nil, errors.New("scram: server nonce does not extend the client nonce")
	}
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	if err != nil || len(salt) == 0 {
		return nil, errors.New("scram: server sent an invalid salt")
	}
	iter, err := strconv.Atoi(iterStr)
	if err != nil || iter < 1 || iter > maxClientIterations {
		return nil, fmt.Errorf("scram: server sent an invalid iteration count %q", iterStr)
	}
	c.saltedPassword, err = SaltedPassword(c.password, salt, iter)
	if err != nil {
		return nil, err
	}
	withoutProof := "c=biws,r=" + nonce // biws = base64("n,,")
	c.authMessage = c.clientFirstBare + "," + string(serverFirst) + "," + withoutProof
	clientKey := HMAC(c.saltedPassword, []byte("Client Key"))
	storedKey := sha256.Sum256(clientKey)
	signature := HMAC(storedKey[:], []byte(c.authMessage))
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ signature[i]
	}
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// Verify checks the server-final-message, proving the server knew the
// verifier (so the gateway is not talking to an impostor that just accepts).
func (c *ClientExchange) Verify(serverFinal []byte) error {
	msg := string(serverFinal)
	if e, ok := strings.CutPrefix(msg, "e="); ok {
		return fmt.Errorf("scram: server reported error %q", e)
	}
	v, ok := strings.CutPrefix(msg, "v=")
	if !ok || c.authMessage == "" {
		return errors.New("scram: malformed server-final-message")
	}
	got, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return errors.New("scram: malformed server signature")
	}
	serverKey := HMAC(c.saltedPassword, []byte("Server Key"))
	if !hmacEqual(got, HMAC(serverKey, []byte(c.authMessage))) {
		return errors.New("scram: server signature does not match (server does not know the password)")
	}
	return nil
}
