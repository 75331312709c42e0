// Package config is the gateway's YAML configuration: the model, its
// defaults, and validation whose errors name the offending field.
// CONFIG.md beside this file is the reference.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pamtrail/pamtrail/gateway/spool"
)

// Config is the whole gateway configuration.
type Config struct {
	Gateway   Gateway          `yaml:"gateway"`
	Postgres  *PostgresListen  `yaml:"postgres"`
	SSH       *SSHListen       `yaml:"ssh"`
	MySQL     *MySQLListen     `yaml:"mysql"`
	Spool     Spool            `yaml:"spool"`
	Upload    Upload           `yaml:"upload"`
	Recording Recording        `yaml:"recording"`
	Users     []User           `yaml:"users"`
	Accounts  []Account        `yaml:"accounts"`
	Grants    []Grant          `yaml:"grants"`
	Redaction []RedactionRule  `yaml:"redaction"`
	Metrics   *MetricsEndpoint `yaml:"metrics"`
	Policies  []Policy         `yaml:"policies"`
	Admin     *Admin           `yaml:"admin"`

	// Dir is the directory of the config file; relative paths in the file
	// are resolved against it so a config works from any working directory.
	Dir string `yaml:"-"`
}

// Gateway holds process-wide settings.
type Gateway struct {
	ID       string `yaml:"id"`        // defaults to the host name
	LogLevel string `yaml:"log_level"` // debug, info, warn, error
	// GCPercent is the Go garbage collector's target (GOGC), unless the
	// GOGC environment variable is set. Relaying SSH makes about one byte
	// of garbage per byte relayed (golang.org/x/crypto/ssh copies every
	// packet), so collecting less often saves CPU; the live heap is small.
	GCPercent int `yaml:"gc_percent"`
}

// DefaultGCPercent is gateway.gc_percent's default.
const DefaultGCPercent = 400

// ServerTLS is a listener's TLS material.
type ServerTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"` // optional: require client certificates
}

// ClientTLS configures an outgoing TLS connection.
type ClientTLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// PostgresListen is the client-facing PostgreSQL listener.
type PostgresListen struct {
	Address         string     `yaml:"address"`
	TLS             *ServerTLS `yaml:"tls"`
	RequireTLS      bool       `yaml:"require_tls"`
	MaxMessageBytes ByteSize   `yaml:"max_message_bytes"`
	AuthTimeout     Duration   `yaml:"auth_timeout"`
	// EventLoops is how many epoll event loops (Linux) relay plaintext
	// sessions whose recording never waits for the disk; 0 relays every
	// session with two goroutines.
	// Unset means one loop per four CPUs, at least one.
	EventLoops *int `yaml:"event_loops"`
}

// MySQLListen is the client-facing MySQL/MariaDB listener.
type MySQLListen struct {
	Address    string     `yaml:"address"`
	TLS        *ServerTLS `yaml:"tls"`
	RequireTLS bool       `yaml:"require_tls"`
	// MaxPacketBytes bounds how much of one command or row the gateway
	// holds to record it; larger payloads are relayed whole and recorded
	// cut. It is not a limit on what clients may send.
	MaxPacketBytes ByteSize `yaml:"max_packet_bytes"`
	AuthTimeout    Duration `yaml:"auth_timeout"`
}

// SSHListen is the client-facing SSH listener.
type SSHListen struct {
	Address     string `yaml:"address"`
	HostKeyFile string `yaml:"host_key_file"` // generated on first start
	UserCAFile  string `yaml:"user_ca_file"`  // optional trusted SSH user CA
}

// Spool is the encrypted on-disk queue.
type Spool struct {
	Dir           string               `yaml:"dir"`
	KeyFile       string               `yaml:"key_file"`
	KeyEnv        string               `yaml:"key_env"`
	Fsync         spool.FsyncPolicy    `yaml:"fsync"`
	FsyncInterval Duration             `yaml:"fsync_interval"`
	MaxBytes      ByteSize             `yaml:"max_bytes"`
	Overflow      spool.OverflowPolicy `yaml:"overflow"`
	SegmentBytes  ByteSize             `yaml:"segment_bytes"`
}

// Upload is the spool → collector OTLP/gRPC uploader.
type Upload struct {
	Endpoint     string            `yaml:"endpoint"`
	Interval     Duration          `yaml:"interval"`
	Timeout      Duration          `yaml:"timeout"`
	Insecure     bool              `yaml:"insecure"`
	TLS          ClientTLS         `yaml:"tls"`
	Compression  string            `yaml:"compression"` // gzip, none
	Headers      map[string]string `yaml:"headers"`
	BatchRecords int               `yaml:"batch_records"`
	BatchBytes   ByteSize          `yaml:"batch_bytes"`
	MaxInFlight  int               `yaml:"max_in_flight"`
}

// Recording controls what is captured and how recording failures are handled.
type Recording struct {
	// FailurePolicy and Mode are every account's default (see RecordingPolicy).
	FailurePolicy FailurePolicy `yaml:"failure_policy"`
	Mode          RecordingMode `yaml:"mode"`
	PreviewRows   int           `yaml:"preview_rows"`
	PreviewBytes  ByteSize      `yaml:"preview_bytes"`
	MaxParamBytes ByteSize      `yaml:"max_param_bytes"`
	MaxTextBytes  ByteSize      `yaml:"max_text_bytes"`
	Enabled       *bool         `yaml:"enabled"` // false only for benchmarks
	// SensitiveFunctions are SQL functions whose literal arguments are
	// secrets, added to the built-in pgcrypto list (redacted before spooling).
	SensitiveFunctions []string `yaml:"sensitive_functions"`
	// SigningKeyFile is the Ed25519 signing keyring (pamtrail keygen
	// --signing) that signs each session's chain checkpoints.
	SigningKeyFile string `yaml:"signing_key_file"`
}

// RecordingPolicy is how a session reacts to the recorder: what it does
// when its events cannot be spooled, and when a response is released.
type RecordingPolicy struct {
	FailurePolicy FailurePolicy
	Mode          RecordingMode
}

// RecordingPolicy is the recording defaults' policy.
func (r Recording) RecordingPolicy() RecordingPolicy {
	return RecordingPolicy{FailurePolicy: r.FailurePolicy, Mode: r.Mode}
}

// FailurePolicy is recording.failure_policy.
type FailurePolicy string

const (
	// FailOpen keeps the session; the failure is counted and logged.
	FailOpen FailurePolicy = "fail-open"
	// FailClosed ends the session.
	FailClosed FailurePolicy = "fail-closed"
)

// RecordingMode is recording.mode.
type RecordingMode string

const (
	// ModeAsync releases responses as they stream.
	ModeAsync RecordingMode = "async"
	// ModeStrict holds each response until its event is durable, and
	// implies fail-closed.
	ModeStrict RecordingMode = "strict"
)

// Strict reports whether responses wait for their events to be durable.
func (p RecordingPolicy) Strict() bool { return p.Mode == ModeStrict }

// FailsClosed reports whether a recording failure ends the session.
func (p RecordingPolicy) FailsClosed() bool { return p.FailurePolicy == FailClosed || p.Strict() }

// RecordingEnabled reports whether events are recorded at all.
func (r Recording) RecordingEnabled() bool { return r.Enabled == nil || *r.Enabled }

// MetricsEndpoint exposes gateway metrics and the readiness check.
type MetricsEndpoint struct {
	Address string `yaml:"address"` // Prometheus text endpoint, e.g. 127.0.0.1:9464
	// MaxUploadLag bounds the age of the oldest record not yet acknowledged
	// by the collector; beyond it /healthz reports the gateway not ready.
	// Unset means DefaultMaxUploadLag; 0 turns the check off.
	MaxUploadLag *Duration `yaml:"max_upload_lag"`
}

// DefaultMaxUploadLag is metrics.max_upload_lag's default: long enough for
// an upload cycle, the collector's batching and a few retries, short enough
// that a gateway cut off from its collector leaves the load balancer soon.
const DefaultMaxUploadLag = Duration(5 * time.Minute)

// User is a gateway identity.
type User struct {
	Name string `yaml:"name"`
	// PostgresSCRAM is a SCRAM-SHA-256 verifier (pamtrail passwd), never a password.
	PostgresSCRAM     string   `yaml:"postgres_scram"`
	SSHAuthorizedKeys []string `yaml:"ssh_authorized_keys"`
	// MySQLNativePassword is MySQL's stored form of a password for
	// mysql_native_password ("*" and 40 hex digits of SHA1(SHA1(password)),
	// pamtrail passwd --mysql-native), for clients that cannot use
	// caching_sha2_password. Unsalted, so only set it where needed.
	MySQLNativePassword string `yaml:"mysql_native_password"`
	// SSHAuthorizedKeysFile is an authorized_keys file whose lines are
	// added to SSHAuthorizedKeys at load time.
	SSHAuthorizedKeysFile string `yaml:"ssh_authorized_keys_file"`
}

// Account is a target and the credentials pamtrail uses for it.
type Account struct {
	Name     string    `yaml:"name"`
	Type     string    `yaml:"type"` // postgres, ssh
	Host     string    `yaml:"host"`
	Port     int       `yaml:"port"`
	Database string    `yaml:"database"` // postgres
	User     string    `yaml:"user"`
	Secret   SecretRef `yaml:"secret"` // password (postgres, ssh) or private key (ssh)
	// SecretKind says what Secret holds for ssh: password or private_key.
	SecretKind string     `yaml:"secret_kind"`
	TLS        *ClientTLS `yaml:"tls"`
	KnownHosts string     `yaml:"known_hosts"` // ssh: pinned host key line(s)
	// KnownHostsFile is read into KnownHosts at load time.
	KnownHostsFile string   `yaml:"known_hosts_file"`
	IdleTimeout    Duration `yaml:"idle_timeout"`
	MaxDuration    Duration `yaml:"max_duration"`
	// FailurePolicy and Mode override the recording defaults for this
	// account (see RecordingPolicy).
	FailurePolicy    FailurePolicy `yaml:"failure_policy"`
	Mode             RecordingMode `yaml:"mode"`
	AllowPortForward bool          `yaml:"allow_port_forwarding"`
	EnvAllow         []string      `yaml:"env_allow"`
	// AllowLocalInfile lets mysql sessions run LOAD DATA LOCAL INFILE,
	// which reads a file of the client's machine into the server.
	AllowLocalInfile bool `yaml:"allow_local_infile"`
	// Policy names the policies[] entry that guards this account.
	Policy string `yaml:"policy"`
}

// RecordingPolicy is the account's recording policy.
func (a *Account) RecordingPolicy() RecordingPolicy {
	return RecordingPolicy{FailurePolicy: a.FailurePolicy, Mode: a.Mode}
}

// Grant lets a user use accounts.
type Grant struct {
	User     string   `yaml:"user"`
	Accounts []string `yaml:"accounts"`
}

// RedactionRule is an extra secret pattern, applied before anything is spooled.
type RedactionRule struct {
	Name    string `yaml:"name"`
	Pattern string `yaml:"pattern"`
}

// Load reads, defaults and validates a config file.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(raw, filepath.Dir(abs))
}

// Parse decodes YAML, rejecting unknown keys, then applies defaults,
// resolves relative paths against dir and validates.
func Parse(raw []byte, dir string) (*Config, error) {
	cfg := Default()
	raw, err := expandEnv(raw)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config: file is empty")
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg.Dir = dir
	cfg.applyDefaults()
	cfg.resolvePaths()
	if err := cfg.loadReferencedFiles(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Default returns the defaults; Parse overlays the file on them.
func Default() *Config {
	return &Config{
		Gateway: Gateway{LogLevel: "info", GCPercent: DefaultGCPercent},
		Spool: Spool{
			Dir:           "spool",
			Fsync:         spool.FsyncInterval,
			FsyncInterval: Duration(100 * time.Millisecond),
			MaxBytes:      1 << 30,
			Overflow:      spool.OverflowRefuse,
			SegmentBytes:  64 << 20,
		},
		Upload: Upload{
			Endpoint: "127.0.0.1:4317",
			Interval: Duration(10 * time.Second),
			// The collector answers once a request is in its persistent
			// queue (milliseconds); when Elasticsearch is behind and that
			// queue is full it blocks, and a request that times out is
			// sent again.
			Timeout:      Duration(30 * time.Second),
			Compression:  "gzip",
			BatchRecords: 2000,
			BatchBytes:   4 << 20,
			MaxInFlight:  4,
		},
		Recording: Recording{
			FailurePolicy: FailOpen,
			Mode:          ModeAsync,
			PreviewRows:   10,
			PreviewBytes:  4 << 10,
			MaxParamBytes: 1 << 10,
			MaxTextBytes:  64 << 10,
		},
	}
}

func (c *Config) applyDefaults() {
	if c.Gateway.ID == "" {
		if h, err := os.Hostname(); err == nil {
			c.Gateway.ID = h
		} else {
			c.Gateway.ID = "pamtrail-gateway"
		}
	}
	if c.Postgres != nil {
		if c.Postgres.MaxMessageBytes == 0 {
			c.Postgres.MaxMessageBytes = 64 << 20
		}
		if c.Postgres.AuthTimeout == 0 {
			c.Postgres.AuthTimeout = Duration(30 * time.Second)
		}
	}
	if c.Metrics != nil && c.Metrics.MaxUploadLag == nil {
		lag := DefaultMaxUploadLag
		c.Metrics.MaxUploadLag = &lag
	}
	if c.MySQL != nil {
		if c.MySQL.MaxPacketBytes == 0 {
			c.MySQL.MaxPacketBytes = 1 << 20
		}
		if c.MySQL.AuthTimeout == 0 {
			c.MySQL.AuthTimeout = Duration(30 * time.Second)
		}
	}
	if c.Admin != nil && c.Admin.LocksFile == "" {
		c.Admin.LocksFile = "locks.json"
	}
	for i := range c.Policies {
		for j := range c.Policies[i].Files {
			if len(c.Policies[i].Files[j].Operations) == 0 {
				c.Policies[i].Files[j].Operations = []string{"upload"}
			}
		}
	}
	if c.SSH != nil && c.SSH.HostKeyFile == "" {
		c.SSH.HostKeyFile = "ssh_host_ed25519_key"
	}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		if a.Port == 0 {
			switch a.Type {
			case "postgres":
				a.Port = 5432
			case "ssh":
				a.Port = 22
			case "mysql":
				a.Port = 3306
			}
		}
		if a.Type == "ssh" && a.SecretKind == "" {
			a.SecretKind = "private_key"
		}
		if a.FailurePolicy == "" {
			a.FailurePolicy = c.Recording.FailurePolicy
		}
		if a.Mode == "" {
			a.Mode = c.Recording.Mode
		}
	}
}

// resolvePaths makes every file path absolute relative to the config's dir.
func (c *Config) resolvePaths() {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(c.Dir, *p)
		}
	}
	abs(&c.Spool.Dir)
	abs(&c.Spool.KeyFile)
	abs(&c.Recording.SigningKeyFile)
	abs(&c.Upload.TLS.CAFile)
	abs(&c.Upload.TLS.CertFile)
	abs(&c.Upload.TLS.KeyFile)
	if c.Postgres != nil && c.Postgres.TLS != nil {
		abs(&c.Postgres.TLS.CertFile)
		abs(&c.Postgres.TLS.KeyFile)
		abs(&c.Postgres.TLS.ClientCAFile)
	}
	for i := range c.Users {
		abs(&c.Users[i].SSHAuthorizedKeysFile)
	}
	if c.MySQL != nil && c.MySQL.TLS != nil {
		abs(&c.MySQL.TLS.CertFile)
		abs(&c.MySQL.TLS.KeyFile)
		abs(&c.MySQL.TLS.ClientCAFile)
	}
	if c.Admin != nil {
		abs(&c.Admin.LocksFile)
		if c.Admin.TLS != nil {
			abs(&c.Admin.TLS.CertFile)
			abs(&c.Admin.TLS.KeyFile)
			abs(&c.Admin.TLS.ClientCAFile)
		}
	}
	if c.SSH != nil {
		abs(&c.SSH.HostKeyFile)
		abs(&c.SSH.UserCAFile)
	}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		abs(&a.Secret.File)
		abs(&a.KnownHostsFile)
		if a.TLS != nil {
			abs(&a.TLS.CAFile)
			abs(&a.TLS.CertFile)
			abs(&a.TLS.KeyFile)
		}
	}
}

// loadReferencedFiles reads the public-key and known_hosts files the config
// points at, so validation sees their content.
func (c *Config) loadReferencedFiles() error {
	v := &validator{}
	for i := range c.Users {
		u := &c.Users[i]
		if u.SSHAuthorizedKeysFile == "" {
			continue
		}
		b, err := os.ReadFile(u.SSHAuthorizedKeysFile)
		if err != nil {
			v.add(fmt.Sprintf("users[%d].ssh_authorized_keys_file", i), err.Error())
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				u.SSHAuthorizedKeys = append(u.SSHAuthorizedKeys, line)
			}
		}
	}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		if a.KnownHostsFile == "" {
			continue
		}
		b, err := os.ReadFile(a.KnownHostsFile)
		if err != nil {
			v.add(fmt.Sprintf("accounts[%d].known_hosts_file", i), err.Error())
			continue
		}
		a.KnownHosts = strings.TrimSpace(a.KnownHosts + "\n" + string(b))
	}
	return v.err()
}
