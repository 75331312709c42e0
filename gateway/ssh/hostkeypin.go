package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"

	gossh "golang.org/x/crypto/ssh"
)

// hostKeyPin is an account's pinned target host key(s), from its
// known_hosts lines. The pin belongs to the account, so host patterns in
// the lines are not matched: the account's host is the only host it is
// used for. There is no trust on first use.
type hostKeyPin struct {
	keys    []gossh.PublicKey // plain host keys
	cas     []gossh.PublicKey // @cert-authority lines
	revoked []gossh.PublicKey // @revoked lines
}

func parseHostKeyPin(knownHosts string) (*hostKeyPin, error) {
	pin := &hostKeyPin{}
	rest := []byte(knownHosts)
	for {
		marker, _, key, _, next, err := gossh.ParseKnownHosts(rest)
		if err != nil {
			if errors.Is(err, io.EOF) { // no entry left
				break
			}
			return nil, fmt.Errorf("known_hosts: %w", err)
		}
		switch marker {
		case "cert-authority":
			pin.cas = append(pin.cas, key)
		case "revoked":
			pin.revoked = append(pin.revoked, key)
		default:
			pin.keys = append(pin.keys, key)
		}
		rest = next
	}
	if len(pin.keys) == 0 && len(pin.cas) == 0 {
		return nil, errors.New("known_hosts: no host key pinned")
	}
	return pin, nil
}

// HostKeyMismatchError is a target that presented a host key the account
// does not pin.
type HostKeyMismatchError struct {
	Account     string
	Address     string
	Presented   string // fingerprint
	Pinned      []string
	Certificate bool
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("target host key mismatch for account %q at %s: the server presented %s, the account pins %v; refusing to connect (if the change is expected, update the account's known_hosts)",
		e.Account, e.Address, e.Presented, e.Pinned)
}

// callback checks the key the target presents against the pin.
func (p *hostKeyPin) callback(account string) gossh.HostKeyCallback {
	plain := func(addr string, _ net.Addr, key gossh.PublicKey) error {
		for _, k := range p.keys {
			if keysEqual(k, key) && !p.isRevoked(key) {
				return nil
			}
		}
		return p.mismatch(account, addr, key)
	}
	if len(p.cas) == 0 {
		return plain
	}
	checker := &gossh.CertChecker{
		IsHostAuthority: func(auth gossh.PublicKey, _ string) bool {
			for _, ca := range p.cas {
				if keysEqual(ca, auth) {
					return true
				}
			}
			return false
		},
		IsRevoked: func(cert *gossh.Certificate) bool {
			return p.isRevoked(cert) || p.isRevoked(cert.SignatureKey)
		},
		HostKeyFallback: plain,
	}
	return func(addr string, remote net.Addr, key gossh.PublicKey) error {
		if err := checker.CheckHostKey(addr, remote, key); err != nil {
			var mismatch *HostKeyMismatchError
			if errors.As(err, &mismatch) {
				return err
			}
			m := p.mismatch(account, addr, key)
			m.Certificate = true
			return fmt.Errorf("%w (%v)", m, err)
		}
		return nil
	}
}

func (p *hostKeyPin) isRevoked(key gossh.PublicKey) bool {
	for _, r := range p.revoked {
		if keysEqual(r, key) {
			return true
		}
	}
	return false
}

func (p *hostKeyPin) mismatch(account, addr string, key gossh.PublicKey) *HostKeyMismatchError {
	e := &HostKeyMismatchError{Account: account, Address: addr, Presented: key.Type() + " " + gossh.FingerprintSHA256(key)}
	for _, k := range p.keys {
		e.Pinned = append(e.Pinned, k.Type()+" "+gossh.FingerprintSHA256(k))
	}
	for _, k := range p.cas {
		e.Pinned = append(e.Pinned, "@cert-authority "+k.Type()+" "+gossh.FingerprintSHA256(k))
	}
	return e
}

// algorithms lists the host key algorithms to offer, so the target presents
// the pinned kind of key rather than another key it also holds, which would
// look like a mismatch. With a pinned CA, any algorithm may carry a
// certificate, so the default list stays.
func (p *hostKeyPin) algorithms() []string {
	if len(p.cas) > 0 {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range p.keys {
		for _, a := range algorithmsForKeyType(k.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsForKeyType(keyType string) []string {
	if keyType == gossh.KeyAlgoRSA {
		return []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA}
	}
	return []string{keyType}
}

func keysEqual(a, b gossh.PublicKey) bool {
	return bytes.Equal(a.Marshal(), b.Marshal())
}
