package config

import (
	"fmt"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
)

// User looks up a gateway user by name.
func (c *Config) User(name string) (*User, bool) {
	for i := range c.Users {
		if c.Users[i].Name == name {
			return &c.Users[i], true
		}
	}
	return nil, false
}

// PostgresVerifier returns the SCRAM verifier of a user allowed to log in
// over PostgreSQL.
func (c *Config) PostgresVerifier(user string) (scram.Verifier, bool) {
	u, ok := c.User(user)
	if !ok || u.PostgresSCRAM == "" {
		return scram.Verifier{}, false
	}
	v, err := scram.ParseVerifier(u.PostgresSCRAM)
	if err != nil { // impossible after Validate
		return scram.Verifier{}, false
	}
	return v, true
}

// Authorize resolves the account a user asked for and checks the grant.
// It returns ErrUnknownAccount (also for an account of another type, so the
// existence of accounts is not disclosed) or ErrNoGrant.
func (c *Config) Authorize(user, account, accountType string) (*Account, error) {
	var acct *Account
	for i := range c.Accounts {
		if c.Accounts[i].Name == account && c.Accounts[i].Type == accountType {
			acct = &c.Accounts[i]
		}
	}
	if acct == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownAccount, account)
	}
	for _, g := range c.Grants {
		if g.User != user {
			continue
		}
		for _, a := range g.Accounts {
			if a == account {
				return acct, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: user %q, account %q", ErrNoGrant, user, account)
}

// RecordingPolicyFor is the recording policy of an account, or the recording
// defaults for a name that is not an account (a refused login).
func (c *Config) RecordingPolicyFor(account string) RecordingPolicy {
	for i := range c.Accounts {
		if c.Accounts[i].Name == account {
			return c.Accounts[i].RecordingPolicy()
		}
	}
	return c.Recording.RecordingPolicy()
}
