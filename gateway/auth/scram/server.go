package scram

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Mechanism names as PostgreSQL advertises them in AuthenticationSASL.
const (
	MechanismSHA256     = "SCRAM-SHA-256"
	MechanismSHA256Plus = "SCRAM-SHA-256-PLUS"
)

// ChannelBindingType is the only channel binding PostgreSQL implements.
const ChannelBindingType = "tls-server-end-point"

// ErrAuthFailed is returned by ServerExchange.Final when the client's proof
// does not match the verifier: the password is wrong (or the user unknown,
// when a mock verifier is used). It deliberately says nothing more.
var ErrAuthFailed = errors.New("scram: authentication failed")

const serverNonceLen = 18

// maxMessageLen bounds the SCRAM messages a client may send; PostgreSQL's own
// are a few hundred bytes.
const maxMessageLen = 4096

// ServerExchange is the server side of one SCRAM-SHA-256 authentication
// (RFC 5802 section 3, RFC 7677), as PostgreSQL runs it: the user name in the
// client-first-message is ignored (the startup packet's user counts) and
// authorization identities are refused.
type ServerExchange struct {
	verifier Verifier
	// cbindData is the tls-server-end-point hash of the server certificate,
	// or nil when the connection is not TLS (then -PLUS is not offered).
	cbindData []byte

	mechanism       string
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
	done            bool
}

// NewServerExchange starts an exchange checking against v. cbindData is the
// channel-binding data of the TLS connection (see TLSServerEndPoint), or nil.
func NewServerExchange(v Verifier, cbindData []byte) *ServerExchange {
	return &ServerExchange{verifier: v, cbindData: cbindData}
}

// Mechanisms lists what the server offers, strongest first: -PLUS only when
// the connection can be bound to its TLS channel.
func (s *ServerExchange) Mechanisms() []string {
	if s.cbindData != nil {
		return []string{MechanismSHA256Plus, MechanismSHA256}
	}
	return []string{MechanismSHA256}
}

// First consumes the client-first-message for the chosen mechanism and
// returns the server-first-message.
func (s *ServerExchange) First(mechanism string, clientFirst []byte) ([]byte, error) {
	if s.serverFirst != "" {
		return nil, errors.New("scram: client-first-message sent twice")
	}
	switch {
	case mechanism == MechanismSHA256:
	case mechanism == MechanismSHA256Plus && s.cbindData != nil:
	default:
		return nil, fmt.Errorf("scram: mechanism %q is not offered", mechanism)
	}
	if len(clientFirst) > maxMessageLen {
		return nil, errors.New("scram: client-first-message too long")
	}
	msg := string(clientFirst)
	gs2Header, bare, err := splitGS2Header(msg)
	if err != nil {
		return nil, err
	}
	if err := s.checkChannelBindingFlag(mechanism, gs2Header); err != nil {
		return nil, err
	}
	clientNonce, err := parseClientFirstBare(bare)
	if err != nil {
		return nil, err
	}
	serverNonce, err := randomNonce(serverNonceLen)
	if err != nil {
		return nil, err
	}
	s.mechanism = mechanism
	s.gs2Header = gs2Header
	s.clientFirstBare = bare
	s.nonce = clientNonce + serverNonce
	s.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", s.nonce,
		base64.StdEncoding.EncodeToString(s.verifier.Salt), s.verifier.Iterations)
	return []byte(s.serverFirst), nil
}

// checkChannelBindingFlag enforces RFC 5802's downgrade protection: a client
// that says "y" (it supports binding but thinks we do not) while we offered
// -PLUS has been tampered with.
func (s *ServerExchange) checkChannelBindingFlag(mechanism, gs2Header string) error {
	flag, _, _ := strings.Cut(gs2Header, ",")
	switch {
	case mechanism == MechanismSHA256Plus:
		if flag != "p="+ChannelBindingType {
			return fmt.Errorf("scram: %s requires channel binding %q", MechanismSHA256Plus, ChannelBindingType)
		}
	case flag == "y" && s.cbindData != nil:
		return errors.New("scram: client thinks the server does not support channel binding (possible downgrade attack)")
	case flag == "n", flag == "y":
	default:
		return errors.New("scram: channel binding requested without SCRAM-SHA-256-PLUS")
	}
	return nil
}

// Final consumes the client-final-message, checks the proof and returns the
// server-final-message. A wrong password gives ErrAuthFailed.
func (s *ServerExchange) Final(clientFinal []byte) ([]byte, error) {
	if s.serverFirst == "" || s.done {
		return nil, errors.New("scram: client-final-message out of order")
	}
	s.done = true
	if len(clientFinal) > maxMessageLen {
		return nil, errors.New("scram: client-final-message too long")
	}
	msg := string(clientFinal)
	// The proof is the last attribute; everything before it is signed.
	idx := strings.LastIndex(msg, ",p=")
	if idx < 0 {
		return nil, errors.New("scram: client-final-message has no proof")
	}
	withoutProof, proofB64 := msg[:idx], msg[idx+len(",p="):]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, errors.New("scram: malformed client-final-message")
	}
	cbind, err := base64.StdEncoding.DecodeString(attrs[0][2:])
	if err != nil {
		return nil, errors.New("scram: channel-binding attribute is not base64")
	}
	want := []byte(s.gs2Header)
	if s.mechanism == MechanismSHA256Plus {
		want = append(want, s.cbindData...)
	}
	if !bytes.Equal(cbind, want) {
		return nil, errors.New("scram: channel binding does not match")
	}
	if attrs[1][2:] != s.nonce {
		return nil, errors.New("scram: nonce does not match")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != sha256.Size {
		return nil, errors.New("scram: malformed client proof")
	}
	authMessage := []byte(s.clientFirstBare + "," + s.serverFirst + "," + withoutProof)
	clientSignature := HMAC(s.verifier.StoredKey, authMessage)
	clientKey := make([]byte, sha256.Size)
	for i := range clientKey {
		clientKey[i] = proof[i] ^ clientSignature[i]
	}
	stored := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(stored[:], s.verifier.StoredKey) != 1 {
		return nil, ErrAuthFailed
	}
	serverSignature := HMAC(s.verifier.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)), nil
}

// MockVerifier returns a verifier for a user that does not exist. Its salt
// is derived from the name and a per-process secret, so repeated attempts
// see a stable salt, as for a real user, and an attacker cannot tell unknown
// users from wrong passwords. No password matches it.
func MockVerifier(secret []byte, user string) Verifier {
	salt := HMAC(secret, []byte("salt\x00"+user))[:16]
	keys := HMAC(secret, []byte("keys\x00"+user))
	return Verifier{Iterations: DefaultIterations, Salt: salt, StoredKey: keys, ServerKey: keys}
}

// splitGS2Header splits "gs2-cbind-flag,[authzid],client-first-bare".
func splitGS2Header(msg string) (header, bare string, err error) {
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return "", "", errors.New("scram: malformed client-first-message")
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", errors.New("scram: malformed client-first-message")
	}
	if authzid != "" {
		return "", "", errors.New("scram: authorization identity is not supported")
	}
	if flag != "n" && flag != "y" && !strings.HasPrefix(flag, "p=") {
		return "", "", errors.New("scram: malformed gs2 channel-binding flag")
	}
	return flag + ",,", bare, nil
}

// parseClientFirstBare returns the client nonce of "n=user,r=nonce[,ext...]".
func parseClientFirstBare(bare string) (string, error) {
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		if strings.HasPrefix(bare, "m=") {
			return "", errors.New("scram: mandatory extensions are not supported")
		}
		return "", errors.New("scram: malformed client-first-message")
	}
	nonce := attrs[1][2:]
	if nonce == "" {
		return "", errors.New("scram: empty client nonce")
	}
	for _, c := range []byte(nonce) {
		// RFC 5802: printable ASCII except ','.
		if c < 0x21 || c > 0x7e || c == ',' {
			return "", errors.New("scram: client nonce has invalid characters")
		}
	}
	return nonce, nil
}

func randomNonce(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(b), nil
}

// hmacEqual compares MACs in constant time.
func hmacEqual(a, b []byte) bool { return hmac.Equal(a, b) }
