package ssh

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/config"
)

// Authentication methods, as recorded in the session's pam.auth.method.
const (
	authMethodPublicKey   = "publickey"
	authMethodCertificate = "publickey-cert"
)

// Permissions extensions that carry the identity from PublicKeyCallback to
// VerifiedPublicKeyCallback. The "pamtrail-" prefix keeps them apart from
// certificate extensions, which share the map.
const (
	extUser   = "pamtrail-user"
	extMethod = "pamtrail-method"
)

// identity is who a client key belongs to.
type identity struct {
	user   string
	method string
}

// userKeys maps the public keys in the config (and, optionally, a user CA)
// to gateway users. The SSH login name is the account, so the user is known
// from the key alone.
type userKeys struct {
	byKey map[string]string // wire-format public key -> user
	cas   []gossh.PublicKey
	users map[string]bool
}

func newUserKeys(cfg *config.Config) (*userKeys, error) {
	u := &userKeys{byKey: map[string]string{}, users: map[string]bool{}}
	for i, user := range cfg.Users {
		u.users[user.Name] = true
		for j, line := range user.SSHAuthorizedKeys {
			key, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return nil, fmt.Errorf("users[%d].ssh_authorized_keys[%d]: %w", i, j, err)
			}
			k := string(key.Marshal())
			if other, dup := u.byKey[k]; dup && other != user.Name {
				// One key, two people: the key could not tell who logged in.
				return nil, fmt.Errorf("users[%d].ssh_authorized_keys[%d]: the same key is also listed for user %q", i, j, other)
			}
			u.byKey[k] = user.Name
		}
	}
	if cfg.SSH != nil && cfg.SSH.UserCAFile != "" {
		cas, err := readUserCAs(cfg.SSH.UserCAFile)
		if err != nil {
			return nil, err
		}
		u.cas = cas
	}
	return u, nil
}

// readUserCAs reads CA public keys in authorized_keys format (one a line;
// blank lines and comments allowed).
func readUserCAs(path string) ([]gossh.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ssh.user_ca_file: %w", err)
	}
	var cas []gossh.PublicKey
	for n, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("ssh.user_ca_file %s line %d: %w", path, n+1, err)
		}
		cas = append(cas, key)
	}
	if len(cas) == 0 {
		return nil, fmt.Errorf("ssh.user_ca_file %s: no public key found", path)
	}
	return cas, nil
}

var errUnknownKey = errors.New("public key is not authorized for any pamtrail user")

// identify returns the user a key or certificate belongs to, with the
// permissions the SSH server should enforce (a certificate's source-address).
func (u *userKeys) identify(key gossh.PublicKey) (identity, *gossh.Permissions, error) {
	cert, isCert := key.(*gossh.Certificate)
	if !isCert {
		user, ok := u.byKey[string(key.Marshal())]
		if !ok {
			return identity{}, nil, errUnknownKey
		}
		return identity{user: user, method: authMethodPublicKey}, &gossh.Permissions{}, nil
	}
	if len(u.cas) == 0 {
		return identity{}, nil, errors.New("certificates are not accepted: no ssh.user_ca_file is configured")
	}
	if cert.CertType != gossh.UserCert {
		return identity{}, nil, errors.New("certificate is not a user certificate")
	}
	checker := &gossh.CertChecker{
		IsUserAuthority: func(auth gossh.PublicKey) bool {
			for _, ca := range u.cas {
				if keysEqual(ca, auth) {
					return true
				}
			}
			return false
		},
		// The SSH server enforces source-address from the Permissions.
		SupportedCriticalOptions: []string{"source-address"},
	}
	if !checker.IsUserAuthority(cert.SignatureKey) {
		return identity{}, nil, errors.New("certificate is signed by an untrusted authority")
	}
	// The certificate names its holder: the first principal that is a
	// configured user is the identity.
	for _, p := range cert.ValidPrincipals {
		if !u.users[p] {
			continue
		}
		if err := checker.CheckCert(p, cert); err != nil {
			return identity{}, nil, err
		}
		perms := &gossh.Permissions{CriticalOptions: maps.Clone(cert.CriticalOptions)}
		return identity{user: p, method: authMethodCertificate}, perms, nil
	}
	return identity{}, nil, fmt.Errorf("no certificate principal %q is a pamtrail user", cert.ValidPrincipals)
}
