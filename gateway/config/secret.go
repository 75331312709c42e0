package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// SecretRef names where a credential lives. Exactly one of Env or File is set.
// The value itself never appears in config, logs or records.
type SecretRef struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// IsZero reports whether no source is set.
func (s SecretRef) IsZero() bool { return s.Env == "" && s.File == "" }

func (s SecretRef) validate() error {
	switch {
	case s.Env != "" && s.File != "":
		return errors.New("set either env or file, not both")
	case s.IsZero():
		return errors.New("required: set env (an environment variable) or file (a path)")
	}
	return nil
}

// Resolve reads the secret. A file must not be readable by group or others,
// as with ssh private keys and pgpass. A single trailing newline is dropped.
func (s SecretRef) Resolve() ([]byte, error) {
	if s.Env != "" {
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return nil, fmt.Errorf("environment variable %s is not set", s.Env)
		}
		return []byte(v), nil
	}
	fi, err := os.Stat(s.File)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s has mode %04o; it must not be accessible by group or others (chmod 600)", s.File, fi.Mode().Perm())
	}
	b, err := os.ReadFile(s.File)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	return []byte(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")), nil
}
