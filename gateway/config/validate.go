package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
	"github.com/pamtrail/pamtrail/gateway/spool"
	"github.com/pamtrail/pamtrail/gateway/uploader"
)

// FieldError is a validation failure of one field, named by its YAML path.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidationError lists every invalid field, so a user fixes them in one pass.
type ValidationError struct{ Fields []*FieldError }

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return "invalid config:\n  " + strings.Join(msgs, "\n  ")
}

var mysqlNativePattern = regexp.MustCompile(`^\*[0-9A-Fa-f]{40}$`)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$`)

// Validate checks the whole config and returns a *ValidationError.
func (c *Config) Validate() error {
	v := &validator{}
	if c.Postgres == nil && c.SSH == nil && c.MySQL == nil {
		v.add("postgres", "at least one listener (postgres, mysql or ssh) must be configured")
	}
	if c.MySQL != nil {
		v.address("mysql.address", c.MySQL.Address)
		if c.MySQL.TLS != nil {
			v.tlsPair("mysql.tls", c.MySQL.TLS.CertFile, c.MySQL.TLS.KeyFile)
		} else if c.MySQL.RequireTLS {
			v.add("mysql.require_tls", "needs mysql.tls.cert_file and key_file")
		}
		if c.MySQL.MaxPacketBytes < 64<<10 {
			v.add("mysql.max_packet_bytes", "must be at least 64KiB")
		}
	}
	if c.Postgres != nil {
		v.address("postgres.address", c.Postgres.Address)
		if c.Postgres.TLS != nil {
			v.tlsPair("postgres.tls", c.Postgres.TLS.CertFile, c.Postgres.TLS.KeyFile)
		} else if c.Postgres.RequireTLS {
			v.add("postgres.require_tls", "needs postgres.tls.cert_file and key_file")
		}
		if c.Postgres.MaxMessageBytes < 1024 {
			v.add("postgres.max_message_bytes", "must be at least 1KiB")
		}
		if c.Postgres.AuthTimeout <= 0 {
			v.add("postgres.auth_timeout", "must be > 0")
		}
		if n := c.Postgres.EventLoops; n != nil && (*n < 0 || *n > 256) {
			v.add("postgres.event_loops", fmt.Sprintf("%d is out of range: use 0 (goroutine relay) to 256, or leave it unset", *n))
		}
	}
	if c.SSH != nil {
		v.address("ssh.address", c.SSH.Address)
	}
	if m := c.Metrics; m != nil && m.MaxUploadLag != nil {
		if lag := *m.MaxUploadLag; lag != 0 && lag < 2*c.Upload.Interval {
			v.add("metrics.max_upload_lag", fmt.Sprintf("%s would report a healthy gateway not ready between two uploads: use 0 (no bound) or at least twice upload.interval (%s)", lag.D(), (2*c.Upload.Interval).D()))
		}
	}
	if p := c.Gateway.GCPercent; p != 0 && (p < 25 || p > 10000) {
		v.add("gateway.gc_percent", fmt.Sprintf("%d is out of range 25..10000", c.Gateway.GCPercent))
	}
	oneOf(v, "spool.fsync", c.Spool.Fsync, spool.FsyncAlways, spool.FsyncInterval, spool.FsyncNone)
	oneOf(v, "spool.overflow", c.Spool.Overflow, spool.OverflowRefuse, spool.OverflowDropOldest)
	if c.Spool.Dir == "" {
		v.add("spool.dir", "required")
	}
	if c.Spool.KeyFile == "" && c.Spool.KeyEnv == "" {
		v.add("spool.key_file", "set key_file (made by pamtrail keygen) or key_env")
	}
	// The spool writes in the background at this period under every fsync
	// policy (see spool.Options.FsyncInterval).
	if c.Spool.FsyncInterval <= 0 {
		v.add("spool.fsync_interval", "must be > 0")
	}
	// The spool keeps whole segments; a full spool must have a sealed one
	// to drop or drain, and a segment must hold the largest record.
	if c.Spool.SegmentBytes < minSegmentBytes {
		v.add("spool.segment_bytes", fmt.Sprintf("must be at least %dMiB (the largest record is %dMiB)", minSegmentBytes>>20, SpoolMaxRecordBytes>>20))
	}
	if c.Spool.MaxBytes != 0 && c.Spool.MaxBytes < 2*c.Spool.SegmentBytes {
		v.add("spool.max_bytes", fmt.Sprintf("must be 0 (unlimited) or at least twice spool.segment_bytes (%d bytes)", 2*c.Spool.SegmentBytes))
	}
	if c.Upload.Endpoint == "" {
		v.add("upload.endpoint", "required (host:port or dns:///name:port)")
	} else if err := uploader.ValidateEndpoint(c.Upload.Endpoint); err != nil {
		v.add("upload.endpoint", err.Error())
	}
	if c.Upload.Interval <= 0 {
		v.add("upload.interval", "must be > 0")
	}
	if c.Upload.Timeout <= 0 {
		v.add("upload.timeout", "must be > 0")
	}
	v.oneOf("upload.compression", c.Upload.Compression, "gzip", "none")
	if c.Upload.BatchRecords < 1 {
		v.add("upload.batch_records", "must be >= 1")
	}
	if c.Upload.MaxInFlight < 1 {
		v.add("upload.max_in_flight", "must be >= 1")
	}
	if c.Upload.Insecure && c.Upload.TLS.Enabled {
		v.add("upload.insecure", "conflicts with upload.tls.enabled")
	}
	v.policy("recording", c.Recording.RecordingPolicy())
	if c.Recording.PreviewRows < 0 {
		v.add("recording.preview_rows", "must be >= 0")
	}
	if c.Recording.PreviewBytes < 1 {
		v.add("recording.preview_bytes", "must be > 0")
	}
	if c.Recording.MaxParamBytes < 1 {
		v.add("recording.max_param_bytes", "must be > 0")
	}
	if c.Recording.MaxTextBytes < 1 {
		v.add("recording.max_text_bytes", "must be > 0")
	}
	for i, r := range c.Redaction {
		if _, err := regexp.Compile(r.Pattern); err != nil {
			v.add(fmt.Sprintf("redaction[%d].pattern", i), "not a valid regular expression: "+err.Error())
		}
	}
	users := v.users(c.Users)
	policies := v.policies(c.Policies)
	accounts := v.accounts(c, policies)
	v.admin(c.Admin)
	for i, g := range c.Grants {
		f := fmt.Sprintf("grants[%d]", i)
		if _, ok := users[g.User]; !ok {
			v.add(f+".user", fmt.Sprintf("unknown user %q", g.User))
		}
		if len(g.Accounts) == 0 {
			v.add(f+".accounts", "must list at least one account")
		}
		for j, a := range g.Accounts {
			if _, ok := accounts[a]; !ok {
				v.add(fmt.Sprintf("%s.accounts[%d]", f, j), fmt.Sprintf("unknown account %q", a))
			}
		}
	}
	return v.err()
}

func (v *validator) users(users []User) map[string]bool {
	seen := map[string]bool{}
	for i, u := range users {
		f := fmt.Sprintf("users[%d]", i)
		v.uniqueName(f+".name", "user", u.Name, seen)
		if u.PostgresSCRAM == "" && len(u.SSHAuthorizedKeys) == 0 {
			v.add(f, "needs postgres_scram or ssh_authorized_keys to be able to log in")
		}
		if u.MySQLNativePassword != "" && !mysqlNativePattern.MatchString(u.MySQLNativePassword) {
			v.add(f+".mysql_native_password", `must be "*" and 40 hex digits (pamtrail passwd --mysql-native), never a password`)
		}
		if u.PostgresSCRAM != "" {
			if _, err := scram.ParseVerifier(u.PostgresSCRAM); err != nil {
				v.add(f+".postgres_scram", err.Error())
			}
		}
		for j, k := range u.SSHAuthorizedKeys {
			if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
				v.add(fmt.Sprintf("%s.ssh_authorized_keys[%d]", f, j), "not an authorized_keys line: "+err.Error())
			}
		}
	}
	return seen
}

func (v *validator) accounts(c *Config, policies map[string]bool) map[string]bool {
	seen := map[string]bool{}
	for i, a := range c.Accounts {
		f := fmt.Sprintf("accounts[%d]", i)
		v.uniqueName(f+".name", "account", a.Name, seen)
		v.oneOf(f+".type", a.Type, "postgres", "mysql", "ssh")
		if a.Host == "" {
			v.add(f+".host", "required")
		}
		if a.Port < 1 || a.Port > 65535 {
			v.add(f+".port", "must be 1-65535")
		}
		if a.User == "" {
			v.add(f+".user", "required")
		}
		switch a.Type {
		case "postgres":
			if a.Database == "" {
				v.add(f+".database", "required for postgres accounts")
			}
			if c.Postgres == nil {
				v.add(f+".type", "postgres account but no postgres listener configured")
			}
			// trust needs no secret; anything else does, checked at connect time.
			if !a.Secret.IsZero() {
				if err := a.Secret.validate(); err != nil {
					v.add(f+".secret", err.Error())
				}
			}
		case "mysql":
			if c.MySQL == nil {
				v.add(f+".type", "mysql account but no mysql listener configured")
			}
			if !a.Secret.IsZero() {
				if err := a.Secret.validate(); err != nil {
					v.add(f+".secret", err.Error())
				}
			}
		case "ssh":
			if err := a.Secret.validate(); err != nil {
				v.add(f+".secret", err.Error())
			}
			v.oneOf(f+".secret_kind", a.SecretKind, "private_key", "password")
			if a.KnownHosts == "" {
				v.add(f+".known_hosts", "required: pin the target's host key (no trust on first use)")
			} else if _, _, _, _, _, err := ssh.ParseKnownHosts([]byte(a.KnownHosts)); err != nil {
				v.add(f+".known_hosts", "not a known_hosts line: "+err.Error())
			}
			if c.SSH == nil {
				v.add(f+".type", "ssh account but no ssh listener configured")
			}
		}
		v.policy(f, a.RecordingPolicy())
		if a.IdleTimeout < 0 {
			v.add(f+".idle_timeout", "must be >= 0")
		}
		if a.MaxDuration < 0 {
			v.add(f+".max_duration", "must be >= 0")
		}
		if a.Policy != "" && !policies[a.Policy] {
			v.add(f+".policy", fmt.Sprintf("unknown policy %q", a.Policy))
		}
	}
	return seen
}

type validator struct{ errs []*FieldError }

// uniqueName checks a name's syntax and that seen does not have it yet,
// then adds it.
func (v *validator) uniqueName(field, kind, name string, seen map[string]bool) {
	if !namePattern.MatchString(name) {
		v.add(field, "must be 1-63 letters, digits or ._@- characters")
	}
	if seen[name] {
		v.add(field, fmt.Sprintf("duplicate %s %q", kind, name))
	}
	seen[name] = true
}

func (v *validator) add(field, reason string) {
	v.errs = append(v.errs, &FieldError{Field: field, Reason: reason})
}

func (v *validator) oneOf(field, value string, allowed ...string) { oneOf(v, field, value, allowed...) }

// oneOf checks a value against the constants of its type.
func oneOf[T ~string](v *validator, field string, value T, allowed ...T) {
	if slices.Contains(allowed, value) {
		return
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	v.add(field, fmt.Sprintf("%q is not one of %s", value, strings.Join(names, ", ")))
}

func (v *validator) policy(field string, p RecordingPolicy) {
	oneOf(v, field+".failure_policy", p.FailurePolicy, FailOpen, FailClosed)
	oneOf(v, field+".mode", p.Mode, ModeAsync, ModeStrict)
}

func (v *validator) address(field, addr string) {
	if addr == "" {
		v.add(field, "required (host:port)")
		return
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		v.add(field, fmt.Sprintf("%q is not host:port", addr))
	}
}

func (v *validator) tlsPair(field, cert, key string) {
	if cert == "" {
		v.add(field+".cert_file", "required")
	}
	if key == "" {
		v.add(field+".key_file", "required")
	}
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.errs}
}

// ErrUnknownAccount and ErrNoGrant are returned by Authorize.
var (
	ErrUnknownAccount = errors.New("unknown account")
	ErrNoGrant        = errors.New("user has no grant for this account")
)
